"""Decision thresholds for multi-label outputs, chosen on out-of-fold predictions only.

Why out-of-fold: a threshold tuned on the predictions of a model for its own training posts is
tuned on over-confident scores and on the data it will be judged on. ``fit`` therefore predicts
each training post from a model that did not see it (inner folds) and picks thresholds there.

Why one global threshold per task by default: with about 60 posts most labels have fewer than 15
positives, and a per-label threshold fitted on so few points mostly fits noise. A label gets its own
threshold only when it has at least ``per_label_min_positives`` positives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..evaluation.metrics import multilabel_f1

GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def best_global(Y: np.ndarray, P: np.ndarray, average: str) -> float:
    """The grid threshold maximising ``average`` F1 of ``P >= t``; ties go to the one nearest 0.5."""
    Y2 = Y.reshape(len(Y), -1)
    P2 = P.reshape(len(P), -1)
    key = "micro_f1" if average in ("micro", "binary") else "macro_f1"
    cols = Y2.sum(0) > 0
    scores = np.array([multilabel_f1(Y2, t <= P2, cols=cols)[key] for t in GRID])
    best = scores.max()
    cands = GRID[np.isclose(scores, best)]
    return float(cands[np.argmin(np.abs(cands - 0.5))])


def choose(Y: np.ndarray, P: np.ndarray, ids: Sequence[str], *, average: str, per_label_min_positives: int) -> float | dict[str, float]:
    """A global threshold, or a per-label dict where some labels have enough positives."""
    glob = best_global(Y, P, average)
    pos = Y.sum(axis=0)
    if not (pos >= per_label_min_positives).any():
        return glob
    out = {}
    for j, lid in enumerate(ids):
        out[lid] = best_global(Y[:, j], P[:, j], "binary") if pos[j] >= per_label_min_positives else glob
    return out


def gate_thresholds(th: dict[str, Any], codebook: Any, Y: np.ndarray, P: np.ndarray, hits: np.ndarray) -> dict[str, Any]:
    """Add ``cue_gated``: labels whose cue matches beat the learned decisions on out-of-fold F1.

    ``Y``, ``P`` and ``hits`` hold topics then frames in codebook order. Gated labels get threshold
    0.5, as their scores become cue indicators (``apply_gate``).
    """
    from sklearn.metrics import f1_score

    labels = list(codebook.topics) + list(codebook.frames)
    tvec = np.concatenate([_vector(th["topics"], codebook.topics), _vector(th["frames"], codebook.frames)])
    gated = [lab for j, lab in enumerate(labels) if Y[:, j].any()
             and f1_score(Y[:, j], hits[:, j], zero_division=0) > f1_score(Y[:, j], P[:, j] >= tvec[j], zero_division=0)]
    out = dict(th)
    for task, ids in (("topics", codebook.topics), ("frames", codebook.frames)):
        vec = _vector(th[task], ids)
        if any(lab in gated for lab in ids):
            out[task] = {lab: 0.5 if lab in gated else float(v) for lab, v in zip(ids, vec)}
    out["cue_gated"] = gated
    return out


def _vector(th: float | dict[str, float], ids: Sequence[str]) -> np.ndarray:
    return np.array([float(th[i]) for i in ids]) if isinstance(th, dict) else np.full(len(ids), float(th))


def apply_gate(gated: Sequence[str], codebook: Any, topics: np.ndarray, frames: np.ndarray, per_para: list[np.ndarray],
               post_hits: np.ndarray, para_hits: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Replace the gated labels' scores by cue indicators (1 when a cue matches, else 0), paragraphs too."""
    nt = len(codebook.topics)
    labels = list(codebook.topics) + list(codebook.frames)
    topics, frames = topics.copy(), frames.copy()
    cols = [labels.index(g) for g in gated]
    for j in cols:
        target, col = (topics, j) if j < nt else (frames, j - nt)
        target[:, col] = (post_hits[:, j] > 0).astype(float)
    fcols = [j - nt for j in cols if j >= nt]
    if fcols:
        starts = np.cumsum([0] + [len(p) for p in per_para])
        per_para = [p.copy() for p in per_para]
        for i, p in enumerate(per_para):
            if len(p):
                p[:, fcols] = (para_hits[starts[i]:starts[i + 1], [nt + c for c in fcols]] > 0).astype(float)
    return topics, frames, per_para
