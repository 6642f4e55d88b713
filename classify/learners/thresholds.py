"""Decision thresholds for multi-label outputs, chosen on out-of-fold predictions only.

Why out-of-fold: a threshold tuned on the predictions of a model for its own training posts is
tuned on over-confident scores and on the data it will be judged on. ``fit`` therefore predicts
each training post from a model that did not see it (inner folds) and picks thresholds there.

Why one global threshold per task by default: with about 60 posts most labels have fewer than 15
positives, and a per-label threshold fitted on so few points mostly fits noise. A label gets its own
threshold only when it has at least ``per_label_min_positives`` positives.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ..evaluation.metrics import multilabel_f1, stance_f1

GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
BIAS_GRID = np.round(np.arange(-2.0, 2.001, 0.25), 2)


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


def best_stance_bias(ys: np.ndarray, S: np.ndarray, classes: Sequence[str], keep: int) -> list[float]:
    """Log-offsets per stance class, added to the log-probabilities before the argmax, that maximise
    macro-F1 on out-of-fold probabilities ``S``; class ``keep`` (no stance) stays at 0.

    Why: the argmax of a model trained on few ``favor`` posts rarely picks ``favor``, and macro-F1
    weighs that class as much as the others. Ties go to the smallest total offset (the plain argmax
    when nothing beats it).
    """
    logS = np.log(np.clip(S, 1e-9, 1.0))
    others = [k for k in range(len(classes)) if k != keep]
    best, best_key = [0.0] * len(classes), None
    for combo in itertools.product(BIAS_GRID, repeat=len(others)):
        b = np.zeros(len(classes))
        b[others] = combo
        f = stance_f1(ys, (logS + b).argmax(axis=1), list(classes))["macro_f1"]
        key = (round(f, 10), -float(np.abs(b).sum()))
        if best_key is None or key > best_key:
            best, best_key = b.tolist(), key
    return best
