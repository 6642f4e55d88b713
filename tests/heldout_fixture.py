"""Test helper: a ``heldout.parquet`` of the training contract, made from a model factory on a gold frame.

The lead's training writes this file beside each model; the report is built against the contract,
so tests (and the demo script) make one themselves: out-of-fold predictions within the train split
(``cv``), predictions of a model trained without the post's source (``loso``) and of a model fitted
on the train split for the test split (``test``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from classify.codebook import Codebook
from classify.evaluation.crossval import post_groups
from classify.evaluation.splits import group_folds, stacked_targets
from classify.learners.base import gold_targets


def _rows(model, part: pd.DataFrame, protocol: str, cb: Codebook) -> pd.DataFrame:
    pr = model.predict_proba(part)
    Yt, Yf, ys = gold_targets(part, cb)
    out = {"post_id": part["post_id"].astype(str).tolist(), "source": part["source"].astype(str).tolist(),
           "lang": part["lang"].astype(str).tolist(), "split": part["split"].astype(str).tolist(),
           "protocol": [protocol] * len(part)}
    th = {"topics": model.threshold_vector("topics"), "frames": model.threshold_vector("frames")}
    for task, P, Y in (("topics", pr.topics, Yt), ("frames", pr.frames, Yf)):
        for j, lab in enumerate(cb.labels(task)):
            out[f"gold_{lab}"] = Y[:, j].astype(bool)
            out[f"p_{lab}"] = P[:, j].astype(float)
            out[f"pred_{lab}"] = P[:, j] >= th[task][j]
    out["gold_stance"] = [cb.stances[k] for k in ys]
    out["pred_stance"] = [cb.stances[k] for k in pr.stance.argmax(1)]
    for k, s in enumerate(cb.stances):
        out[f"p_stance_{s}"] = pr.stance[:, k].astype(float)
    return pd.DataFrame(out)


def heldout_frame(gold: pd.DataFrame, factory: Callable, cb: Codebook | None = None, *, folds: int = 5, seed: int = 0,
                  protocols: tuple[str, ...] = ("cv", "loso", "test")) -> pd.DataFrame:
    """Rows of the heldout contract for ``gold`` (needs ``source`` and ``split``; defaults added if absent)."""
    cb = cb or Codebook.load()
    gold = gold.reset_index(drop=True).copy()
    if "split" not in gold:
        gold["split"] = "train"
    if "source" not in gold:
        gold["source"] = "unknown"
    parts = []
    train = gold[gold["split"] == "train"].reset_index(drop=True)
    if "cv" in protocols and len(train):
        Yt, Yf, ys = gold_targets(train, cb)
        groups = post_groups(train)
        for tr, te in group_folds(stacked_targets(Yt, Yf, ys, len(cb.stances)), groups, n_splits=folds, seed=seed):
            model = factory().fit(train.iloc[tr], train.iloc[tr].reset_index(drop=True))
            parts.append(_rows(model, train.iloc[te], "cv", cb))
    if "loso" in protocols and gold["source"].nunique() > 1:
        for src in gold["source"].unique():
            rest = gold[gold["source"] != src].reset_index(drop=True)
            model = factory().fit(rest, rest)
            parts.append(_rows(model, gold[gold["source"] == src], "loso", cb))
    test = gold[gold["split"] == "test"]
    if "test" in protocols and len(test) and len(train):
        model = factory().fit(train, train)
        parts.append(_rows(model, test, "test", cb))
    return pd.concat(parts, ignore_index=True)


def write_heldout(model_dir: str | Path, frame: pd.DataFrame) -> Path:
    path = Path(model_dir) / "heldout.parquet"
    frame.to_parquet(path, index=False)
    return path


def synthetic_heldout(cb: Codebook, n: int = 300, seed: int = 0, tpr: float = 0.8, fpr: float = 0.05,
                      prevalence: float = 0.3, protocol: str = "loso") -> pd.DataFrame:
    """Held-out rows with known error rates for every label (crisp and probabilistic outputs agree)."""
    rng = np.random.default_rng(seed)
    out: dict = {"post_id": [f"h{i}" for i in range(n)], "source": ["s1" if i % 2 else "s2" for i in range(n)],
                 "lang": ["en"] * n, "split": ["train"] * n, "protocol": [protocol] * n}
    for lab in (*cb.topics, *cb.frames):
        y = rng.random(n) < prevalence
        pred = np.where(y, rng.random(n) < tpr, rng.random(n) < fpr)
        out[f"gold_{lab}"] = y
        out[f"p_{lab}"] = np.where(pred, 0.9, 0.1)
        out[f"pred_{lab}"] = pred
    stance = rng.choice(list(cb.stances), size=n, p=[0.3, 0.1, 0.6])
    out["gold_stance"] = stance
    out["pred_stance"] = stance
    for s in cb.stances:
        out[f"p_stance_{s}"] = (stance == s).astype(float)
    return pd.DataFrame(out)
