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
