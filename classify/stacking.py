"""Stacking a model's label scores with the codebook's cue hits (shared by both models).

On ~60 training posts neither a learned score nor the cue counts alone are reliable; a tiny
logistic regression per task, ``p' = sigmoid(a * logit(p) + b * log1p(hits) + c)``, fitted on
*inner out-of-fold* predictions, learns how much weight each deserves. One ``[a, b, c]`` is shared
by all labels of a task: there are too few positives for one per label. The map is monotone in
the score, so paragraph evidence (the argmax over a post's paragraphs) is unchanged.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .cues import CueMatcher


def logit(P: np.ndarray) -> np.ndarray:
    """Log-odds, clipped so that probabilities of 0 or 1 stay finite."""
    P = np.clip(P, 1e-6, 1 - 1e-6)
    return np.log(P / (1 - P))


def fit_stacker(P: np.ndarray, H: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``[w_score, w_cue, bias]`` of one task from out-of-fold scores ``P``, cue hits ``H``, truth ``Y``."""
    X = np.column_stack([logit(P).ravel(), np.log1p(H).ravel()])
    y = Y.ravel()
    if len(np.unique(y)) < 2:
        return np.array([1.0, 0.0, 0.0])
    from sklearn.linear_model import LogisticRegression  # training only: tagging needs no sklearn import

    lr = LogisticRegression(C=1.0).fit(X, y)
    return np.array([lr.coef_[0, 0], lr.coef_[0, 1], lr.intercept_[0]])


def apply_stacker(w: np.ndarray, P: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Stacked probabilities of one task (``w`` from :func:`fit_stacker`)."""
    return expit(w[0] * logit(P) + w[1] * np.log1p(H) + w[2])


def post_hits(matcher: CueMatcher, posts: list[list[str]]) -> np.ndarray:
    """Cue hits per post (sum over its paragraphs; cues never span a line break)."""
    return np.array([matcher.paragraph_hits(p).sum(axis=0) for p in posts], dtype=float).reshape(len(posts), -1)
