"""Cross-validation of one model kind: a fresh model per training fold, out-of-fold outputs kept.

Posts of one group (copies of a post, a post and its translation) always share a fold; each model,
its thresholds and any tuning are fitted inside the training folds only.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..learners import model_class
from ..learners.base import Model, gold_targets
from . import metrics as M
from .splits import group_folds, stacked_targets

HEADLINE = {"topics": "micro_f1", "frames": "macro_f1", "stance_west": "macro_f1"}



@dataclass
class OOF:
    """Out-of-fold outputs of one model kind over ``R`` repeats of ``n`` posts."""

    topics_p: np.ndarray   # (R, n, T)
    frames_p: np.ndarray   # (R, n, F)
    stance_p: np.ndarray   # (R, n, S)
    topics_y: np.ndarray   # (R, n, T) bool, after the model's own thresholds
    frames_y: np.ndarray   # (R, n, F) bool
    stance_y: np.ndarray   # (R, n) int
    evidence: np.ndarray   # (R, n, F) int: top paragraph per frame
    fold: np.ndarray       # (R, n) int
    fold_scores: list[dict[str, float]] = field(default_factory=list)
    fit_seconds: list[float] = field(default_factory=list)


def data_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def post_groups(gold: pd.DataFrame) -> list[str]:
    """CV group per post: ``group`` (duplicates and translations) or ``dup_group``."""
    for col in ("group", "dup_group"):
        if col in gold.columns:
            return gold[col].astype(str).tolist()
    return gold["post_id"].astype(str).tolist()


def make_factory(kind: str, configs: dict[str, dict] | None, codebook: Codebook, seed: int) -> Callable[[], Model]:
    """A function returning a fresh, unfitted model of ``kind`` (small-text's factory habit)."""
    cls = model_class(kind)
    cfg = dict((configs or {}).get(kind, {}))
    if kind == "cue_rule":
        return lambda: cls(codebook=codebook)
    cfg.setdefault("seed", seed)
    config_cls = cls.config_class()
    return lambda: cls(config_cls.from_dict(cfg), codebook=codebook)


@dataclass
class FoldOutput:
    """What one fitted model gives on its held-out posts (``OOF`` rows of one fold)."""

    topics_p: np.ndarray
    frames_p: np.ndarray
    stance_p: np.ndarray
    topics_y: np.ndarray
    frames_y: np.ndarray
    stance_y: np.ndarray
    evidence: np.ndarray
    fit_seconds: float
    model: Model | None = None
    """The fitted model itself, only when asked for (``keep_model``)."""


def fit_and_predict(factory: Callable[[], Model], train: pd.DataFrame, groups: list[str], test: pd.DataFrame,
                    keep_model: bool = False) -> FoldOutput:
    """Fit a fresh model on ``train`` and score ``test`` with its own thresholds (returning the model too
    with ``keep_model``)."""
    t0 = time.perf_counter()
    model = factory().fit(train, train.reset_index(drop=True), groups=groups)
    seconds = time.perf_counter() - t0
    pr = model.predict_proba(test)
    F = pr.frames.shape[1]
    return FoldOutput(pr.topics, pr.frames, pr.stance, pr.topics >= model.threshold_vector("topics"),
                      pr.frames >= model.threshold_vector("frames"), pr.stance.argmax(1),
                      np.array([pf.argmax(0) if len(pf) else np.zeros(F, int) for pf in pr.paragraph_frames]).reshape(len(test), F),
                      seconds, model if keep_model else None)


def fit_folds(gold: pd.DataFrame, factory: Callable[[], Model], splits: list[tuple[np.ndarray, np.ndarray]],
              progress: Callable[[int], None] | None = None, keep_model: int | None = None) -> list[FoldOutput]:
    """``fit_and_predict`` on each ``(train, test)`` index pair, in order.

    Models whose fits use one core (``Model.fits_on_one_core``) are fitted in parallel worker processes,
    one per core: each fit depends only on its posts and seed, so the outputs equal a sequential run's
    (a test checks). ``progress(k)`` is called as fold ``k`` finishes. The output of split ``keep_model``
    also holds its fitted model.
    """
    groups = post_groups(gold)
    jobs = [(factory, gold.iloc[tr], [groups[i] for i in tr], gold.iloc[te], k == keep_model) for k, (tr, te) in enumerate(splits)]
    workers = min(len(jobs), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if workers > 1 and factory().fits_on_one_core:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=workers, return_as="generator")(delayed(fit_and_predict)(*job) for job in jobs)
    else:
        results = (fit_and_predict(*job) for job in jobs)
    outputs = []
    for k, out in enumerate(results):
        outputs.append(out)
        if progress:
            progress(k)
    return outputs


def cross_validate(gold: pd.DataFrame, factory: Callable[[], Model], codebook: Codebook, *, folds: int, repeats: int,
                   seed: int, progress: Callable[[str], None] | None = None) -> OOF:
    """Fit a fresh model per training fold and collect out-of-fold outputs for every repeat."""
    Yt, Yf, ys = gold_targets(gold, codebook)
    Y = stacked_targets(Yt, Yf, ys, len(codebook.stances))
    groups = post_groups(gold)
    n, T, F, S = len(gold), len(codebook.topics), len(codebook.frames), len(codebook.stances)
    oof = OOF(np.zeros((repeats, n, T)), np.zeros((repeats, n, F)), np.zeros((repeats, n, S)),
              np.zeros((repeats, n, T), bool), np.zeros((repeats, n, F), bool), np.zeros((repeats, n), int),
              np.zeros((repeats, n, F), int), np.zeros((repeats, n), int))
    for r in range(repeats):
        splits = list(group_folds(Y, groups, n_splits=folds, seed=seed + r))
        say = (lambda k, r=r: progress(f"repeat {r + 1}/{repeats} fold {k + 1}/{folds} done")) if progress else None
        for k, ((_, te), out) in enumerate(zip(splits, fit_folds(gold, factory, splits, say))):
            oof.fit_seconds.append(out.fit_seconds)
            oof.topics_p[r, te], oof.frames_p[r, te], oof.stance_p[r, te] = out.topics_p, out.frames_p, out.stance_p
            oof.topics_y[r, te], oof.frames_y[r, te], oof.stance_y[r, te] = out.topics_y, out.frames_y, out.stance_y
            oof.evidence[r, te] = out.evidence
            oof.fold[r, te] = k
            oof.fold_scores.append({
                "topics": M.multilabel_f1(Yt[te], oof.topics_y[r, te])["micro_f1"],
                "frames": M.multilabel_f1(Yf[te], oof.frames_y[r, te], cols=Yf.sum(0) > 0)["macro_f1"],
                "stance_west": M.stance_f1(ys[te], oof.stance_y[r, te], codebook.stances)["macro_f1"],
            })
    return oof


def task_stat(task: str, Ytrue: Any, oof: OOF, codebook: Codebook, idx: np.ndarray | None = None) -> Callable[[np.ndarray], float]:
    """``w -> headline score`` averaged over repeats, on the posts in ``idx``."""
    sel = slice(None) if idx is None else idx
    cols = Ytrue.sum(0) > 0 if task == "frames" else None

    def stat(w: np.ndarray) -> float:
        ww = w[sel]
        vals = []
        for r in range(oof.topics_y.shape[0]):
            if task == "topics":
                vals.append(M.multilabel_f1(Ytrue[sel], oof.topics_y[r][sel], ww)["micro_f1"])
            elif task == "frames":
                vals.append(M.multilabel_f1(Ytrue[sel], oof.frames_y[r][sel], ww, cols=cols)["macro_f1"])
            else:
                vals.append(M.stance_f1(Ytrue[sel], oof.stance_y[r][sel], codebook.stances, ww)["macro_f1"])
        return float(np.mean(vals))

    return stat

