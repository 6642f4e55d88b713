"""Stacking a model's label scores with the codebook's cue hits (shared by both models).

On ~60 training posts neither a learned score nor the cue counts alone are reliable; a tiny
logistic regression per task, ``p' = sigmoid(a * logit(p) + b * log1p(hits) + c)``, fitted on
*inner out-of-fold* predictions, learns how much weight each deserves. By default one ``[a, b, c]``
is shared by all labels of a task: there are too few positives to fit one per label freely. With
``per_label=True`` each label gets its own ``[a_j, b_j, c_j]`` as the shared weights plus a
deviation, fitted jointly with the L2 penalty on the deviations (feature augmentation, as in
Daume's "frustratingly easy" domain adaptation): a label moves away from the shared weights only as
far as its own positives insist, so a label whose cues are reliable can lean on them. Both models
have it as an option (``stack_cues``), off by default since their features carry multilingual
sentence vectors (eval/SELECTION.md); earlier measurements are in docs/EXPERIMENTS.md.
Weights are one row per label, ``(n_labels, 3)``. The map is monotone in the score, so paragraph
evidence (the argmax over a post's paragraphs) is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import expit

from ..errors import ModelError
from .cues import CueMatcher


def logit(P: np.ndarray) -> np.ndarray:
    """Log-odds, clipped so that probabilities of 0 or 1 stay finite."""
    P = np.clip(P, 1e-6, 1 - 1e-6)
    return np.log(P / (1 - P))


def fit_stacker(P: np.ndarray, H: np.ndarray, Y: np.ndarray, per_label: bool = False) -> np.ndarray:
    """``[w_score, w_cue, bias]`` per label (rows) of one task from out-of-fold scores ``P``, cue hits
    ``H`` and truth ``Y`` (all posts x labels); the rows are equal unless ``per_label``."""
    L = P.shape[1]
    X = np.column_stack([logit(P).ravel(), np.log1p(H).ravel()])
    y = Y.ravel()
    if len(np.unique(y)) < 2:
        return np.tile([1.0, 0.0, 0.0], (L, 1))
    from sklearn.linear_model import LogisticRegression  # training only: tagging needs no sklearn import

    if not per_label:
        lr = LogisticRegression(C=1.0).fit(X, y)
        return np.tile([lr.coef_[0, 0], lr.coef_[0, 1], lr.intercept_[0]], (L, 1))
    onehot = np.tile(np.eye(L), (P.shape[0], 1))  # row i * L + j of the ravelled arrays is label j
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(np.hstack([X, X[:, :1] * onehot, X[:, 1:] * onehot, onehot]), y)
    c = lr.coef_[0]
    return np.column_stack([c[0] + c[2:2 + L], c[1] + c[2 + L:2 + 2 * L], lr.intercept_[0] + c[2 + 2 * L:]])


def apply_stacker(w: np.ndarray, P: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Stacked probabilities of one task (``w``: its rows of :func:`fit_stacker`)."""
    return expit(w[:, 0] * logit(P) + w[:, 1] * np.log1p(H) + w[:, 2])


def label_rows(stackers: np.ndarray | None, n_topics: int, n_frames: int, source: Path) -> np.ndarray | None:
    """Stackers as saved in ``source``, one row per label; a model saved before per-label rows has one
    row per task. A shape that fits neither is a corrupt file (:class:`ModelError` naming it)."""
    if stackers is None:
        return None
    stackers = np.asarray(stackers, dtype=float)
    if stackers.shape == (2, 3):
        return np.vstack([np.tile(stackers[0], (n_topics, 1)), np.tile(stackers[1], (n_frames, 1))])
    if stackers.shape != (n_topics + n_frames, 3):
        raise ModelError(f"{source}: stackers of shape {stackers.shape}, expected ({n_topics + n_frames}, 3); "
                         f"the model is corrupt or tampered, retrain it")
    return stackers


def post_hits(matcher: CueMatcher, posts: list[list[str]]) -> np.ndarray:
    """Cue hits per post (sum over its paragraphs; cues never span a line break)."""
    return np.array([matcher.paragraph_hits(p).sum(axis=0) for p in posts], dtype=float).reshape(len(posts), -1)
