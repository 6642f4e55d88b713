"""classify.stacking: the cue stacker, shared or per label, and stackers saved before per-label rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classify.errors import ModelError
from classify.evaluation.metrics import multilabel_f1
from classify.learners.stacking import apply_stacker, fit_stacker, label_rows


def _task(seed: int = 0, n: int = 200):
    """Two labels: label 0's truth follows its cue hits, label 1's follows its model score."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, 2)) < 0.3).astype(int)
    H = np.column_stack([Y[:, 0] * rng.integers(1, 3, n), rng.integers(0, 2, n)])  # label 1's cues are noise
    P = np.column_stack([rng.uniform(0.2, 0.8, n), np.where(Y[:, 1], rng.uniform(0.55, 0.95, n), rng.uniform(0.05, 0.6, n))])
    return P, H, Y


def test_shared_stacker_has_equal_rows_and_per_label_rows_follow_each_labels_signal():
    P, H, Y = _task()
    shared = fit_stacker(P, H, Y)
    assert shared.shape == (2, 3) and np.allclose(shared[0], shared[1])
    own = fit_stacker(P, H, Y, per_label=True)
    assert own.shape == (2, 3)
    assert own[0, 1] > own[1, 1]  # label 0 leans on its cues more than label 1 does
    assert own[1, 0] > own[0, 0]  # and label 1 on its score
    f1 = [multilabel_f1(Y, apply_stacker(w, P, H) >= 0.5)["micro_f1"] for w in (shared, own)]
    assert f1[1] > f1[0]


def test_stacker_of_a_task_without_both_classes_is_the_identity():
    P, H, _ = _task()
    for per_label in (False, True):
        w = fit_stacker(P, H, np.zeros_like(P, dtype=int), per_label=per_label)
        np.testing.assert_allclose(apply_stacker(w, P, H), P, atol=1e-6)


def test_label_rows_expands_a_per_task_stacker_saved_before_per_label_rows():
    old = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    rows = label_rows(old, 4, 10, Path("m/weights.safetensors"))
    assert rows.shape == (14, 3) and (rows[:4] == old[0]).all() and (rows[4:] == old[1]).all()
    assert label_rows(None, 4, 10, Path("m/weights.safetensors")) is None
    np.testing.assert_array_equal(label_rows(rows, 4, 10, Path("m/weights.safetensors")), rows)
    with pytest.raises(ModelError, match="m/weights.safetensors: stackers of shape \\(5, 3\\), expected \\(14, 3\\)"):
        label_rows(np.zeros((5, 3)), 4, 10, Path("m/weights.safetensors"))
