"""Scores on posts a model never saw from sources it never saw: leave-one-source-out and the random test.

``loso``: for each source of the train split, a model fit on the other sources' train posts scores that
source's train posts. ``test``: a model fit on the whole train split (the shipped model) scores the
random test rounds, which nothing trains, tunes or chooses on. Both reuse the cross-validation
outputs' shape (``OOF`` with one repeat), so every metric and interval is computed the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..learners.base import Model, gold_targets
from . import metrics as M
from .crossval import OOF, fit_folds, post_groups, task_stat
from .scores import model_metrics

PROTOCOLS = ("cv", "loso", "test")


def predict_splits(gold: pd.DataFrame, factory: Callable[[], Model], codebook: Codebook,
                   splits: Sequence[tuple[np.ndarray, np.ndarray]], keep_model: int | None = None) -> tuple[OOF, Model | None]:
    """Fit a fresh model on each ``train`` index set and keep its outputs on the matching ``test`` set.

    Returns the outputs and the fitted model of split number ``keep_model`` (``None`` when not asked for)."""
    n, T, F, S = len(gold), len(codebook.topics), len(codebook.frames), len(codebook.stances)
    oof = OOF(np.zeros((1, n, T)), np.zeros((1, n, F)), np.zeros((1, n, S)), np.zeros((1, n, T), bool),
              np.zeros((1, n, F), bool), np.zeros((1, n), int), np.zeros((1, n, F), int), np.full((1, n), -1))
    kept = None
    for k, ((_, te), out) in enumerate(zip(splits, fit_folds(gold, factory, list(splits), keep_model=keep_model))):
        if k == keep_model:
            kept = out.model
        oof.fit_seconds.append(out.fit_seconds)
        oof.topics_p[0, te], oof.frames_p[0, te], oof.stance_p[0, te] = out.topics_p, out.frames_p, out.stance_p
        oof.topics_y[0, te], oof.frames_y[0, te], oof.stance_y[0, te] = out.topics_y, out.frames_y, out.stance_y
        oof.evidence[0, te] = out.evidence
        oof.fold[0, te] = k
    return oof, kept


def loso_splits(train: pd.DataFrame) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(source, train indices, held-out indices)`` per source; empty with fewer than two sources."""
    sources = sorted(train["source"].astype(str).unique())
    if len(sources) < 2:
        return []
    src = train["source"].astype(str).to_numpy()
    return [(s, np.flatnonzero(src != s), np.flatnonzero(src == s)) for s in sources]


def subset(oof: OOF, idx: np.ndarray) -> OOF:
    """The outputs of the posts ``idx`` (fold scores recomputed by the caller when needed)."""
    return OOF(oof.topics_p[:, idx], oof.frames_p[:, idx], oof.stance_p[:, idx], oof.topics_y[:, idx], oof.frames_y[:, idx],
               oof.stance_y[:, idx], oof.evidence[:, idx], oof.fold[:, idx], [], list(oof.fit_seconds))


def slice_metrics(gold: pd.DataFrame, oof: OOF, codebook: Codebook, n_boot: int, seed: int) -> dict[str, Any]:
    """Headline scores with 95% group-bootstrap intervals for the posts of ``gold`` (one ``OOF`` repeat)."""
    gold = gold.reset_index(drop=True)
    weights = M.group_weights(post_groups(gold), n_boot, seed)
    Yt, Yf, ys = gold_targets(gold, codebook)
    oof.fold_scores = [{"topics": M.multilabel_f1(Yt, oof.topics_y[0])["micro_f1"],
                        "frames": M.multilabel_f1(Yf, oof.frames_y[0], cols=Yf.sum(0) > 0)["macro_f1"],
                        "stance_west": M.stance_f1(ys, oof.stance_y[0], codebook.stances)["macro_f1"]}]
    return {"n": len(gold), **model_metrics(gold, oof, codebook, weights)}


def paired(gold: pd.DataFrame, a: OOF, b: OOF, codebook: Codebook, n_boot: int, seed: int) -> dict[str, Any]:
    """Paired bootstrap difference ``a - b`` per task on the same posts."""
    gold = gold.reset_index(drop=True)
    weights = M.group_weights(post_groups(gold), n_boot, seed)
    Yt, Yf, ys = gold_targets(gold, codebook)
    truth = {"topics": Yt, "frames": Yf, "stance_west": ys}
    return {task: M.paired_difference(task_stat(task, truth[task], a, codebook), task_stat(task, truth[task], b, codebook), weights)
            for task in ("topics", "frames", "stance_west")}


def heldout_frame(gold: pd.DataFrame, oof: OOF, codebook: Codebook, protocol: str) -> pd.DataFrame:
    """One row per post of ``gold``: gold labels and held-out probabilities and decisions (first repeat)."""
    gold = gold.reset_index(drop=True)
    Yt, Yf, ys = gold_targets(gold, codebook)
    out: dict[str, Any] = {"post_id": gold["post_id"].astype(str), "source": gold["source"].astype(str),
                           "lang": gold["lang"].astype(str), "split": gold["split"].astype(str), "protocol": protocol}
    for ids, Y, P, D in ((codebook.topics, Yt, oof.topics_p[0], oof.topics_y[0]), (codebook.frames, Yf, oof.frames_p[0], oof.frames_y[0])):
        for j, lab in enumerate(ids):
            out[f"gold_{lab}"], out[f"p_{lab}"], out[f"pred_{lab}"] = Y[:, j].astype(bool), P[:, j].astype(float), D[:, j].astype(bool)
    out["gold_stance"] = [codebook.stances[i] for i in ys]
    out["pred_stance"] = [codebook.stances[i] for i in oof.stance_y[0]]
    for k, s in enumerate(codebook.stances):
        out[f"p_stance_{s}"] = oof.stance_p[0][:, k].astype(float)
    return pd.DataFrame(out)
