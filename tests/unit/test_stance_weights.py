"""Stance loss weights of the transformer (``training.stance_weights``)."""

from __future__ import annotations

import numpy as np
import pytest

from classify.errors import ConfigError
from classify.learners.transformer.config import TransformerConfig
from classify.learners.transformer.training import stance_weights


def test_weights_by_kind():
    ys = np.array([0] * 10 + [1] * 2 + [2] * 28)  # against 10, favor 2, none 28
    bal = stance_weights(ys, 3, "balanced")
    np.testing.assert_allclose(bal, [40 / 30, 40 / 6, 40 / 84], rtol=1e-6)
    np.testing.assert_allclose(stance_weights(ys, 3, "sqrt"), np.sqrt(bal), rtol=1e-6)
    np.testing.assert_array_equal(stance_weights(ys, 3, "none"), [1, 1, 1])


def test_absent_class_gets_no_weight_and_bad_kind_is_refused():
    ys = np.array([0, 0, 2])
    assert all(stance_weights(ys, 3, kind)[1] == 0 for kind in ("balanced", "sqrt", "none"))
    with pytest.raises(ConfigError, match="stance_class_weight"):
        TransformerConfig(stance_class_weight="inverse")
