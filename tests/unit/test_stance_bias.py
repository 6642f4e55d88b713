"""Stance log-offsets chosen on out-of-fold probabilities (``thresholds.best_stance_bias``)."""

from __future__ import annotations

import numpy as np

from classify.evaluation.metrics import stance_f1
from classify.learners.thresholds import best_stance_bias

CLASSES = ["against", "favor", "none"]


def test_offset_lifts_a_class_the_argmax_never_picks():
    # favor posts score 0.4 favor / 0.6 none: the plain argmax never predicts favor
    ys = np.array([1] * 10 + [2] * 30 + [0] * 10)
    S = np.array([[0.0, 0.4, 0.6]] * 10 + [[0.0, 0.1, 0.9]] * 30 + [[0.8, 0.0, 0.2]] * 10) + 1e-3
    S /= S.sum(axis=1, keepdims=True)
    b = best_stance_bias(ys, S, CLASSES, keep=2)
    assert b[2] == 0.0 and b[1] > 0
    before = stance_f1(ys, S.argmax(1), CLASSES)["macro_f1"]
    after = stance_f1(ys, (np.log(S) + b).argmax(1), CLASSES)["macro_f1"]
    assert before < 0.7 and after == 1.0


def test_no_offset_when_the_argmax_is_already_right():
    ys = np.array([0, 1, 2, 2, 1, 0])
    S = np.eye(3)[ys] * 0.7 + 0.1
    assert best_stance_bias(ys, S, CLASSES, keep=2) == [0.0, 0.0, 0.0]
