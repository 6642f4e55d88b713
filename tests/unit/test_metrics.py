"""Metrics agree with scikit-learn on hand-made examples; bootstrap intervals behave."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from classify.evaluation import metrics as M

Y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0], [1, 0, 1], [0, 1, 1]])
YHAT = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 0], [0, 0, 1], [0, 1, 1]])


def test_multilabel_f1_matches_sklearn():
    got = M.multilabel_f1(Y, YHAT)
    for avg in ("micro", "macro", "samples"):
        assert got[f"{avg}_f1"] == pytest.approx(f1_score(Y, YHAT, average=avg, zero_division=0))


def test_per_label_matches_sklearn():
    p, r, f, s = precision_recall_fscore_support(Y, YHAT, zero_division=0)
    got = M.per_label(Y, YHAT, ["a", "b", "c"])
    for j, lid in enumerate("abc"):
        assert got[lid]["precision"] == pytest.approx(p[j])
        assert got[lid]["recall"] == pytest.approx(r[j])
        assert got[lid]["f1"] == pytest.approx(f[j])
        assert got[lid]["support"] == s[j]


def test_stance_macro_and_semeval_favg():
    classes = ("against", "favor", "none")
    y = np.array([0, 0, 1, 2, 2, 1, 0])
    yhat = np.array([0, 2, 1, 2, 0, 0, 0])
    got = M.stance_f1(y, yhat, classes)
    f = f1_score(y, yhat, average=None, labels=[0, 1, 2], zero_division=0)
    assert got["macro_f1"] == pytest.approx(f.mean())
    assert got["f_avg"] == pytest.approx((f[0] + f[1]) / 2)


def test_weighted_equals_duplicated_rows():
    """A bootstrap weight of 2 is the same as the row appearing twice."""
    w = np.array([2, 1, 0, 1, 1, 3], dtype=float)
    rep = np.repeat(np.arange(len(Y)), w.astype(int))
    assert M.multilabel_f1(Y, YHAT, w)["micro_f1"] == pytest.approx(f1_score(Y[rep], YHAT[rep], average="micro"))
    assert M.multilabel_f1(Y, YHAT, w)["macro_f1"] == pytest.approx(f1_score(Y[rep], YHAT[rep], average="macro", zero_division=0))


def test_bootstrap_interval_covers_point_estimate():
    rng = np.random.default_rng(0)
    Yb = rng.integers(0, 2, size=(80, 4))
    Yh = np.where(rng.random((80, 4)) < 0.8, Yb, 1 - Yb)
    groups = [str(i // 2) for i in range(80)]
    W = M.group_weights(groups, 500, seed=1)
    stat = lambda w: M.multilabel_f1(Yb, Yh, w)["micro_f1"]  # noqa: E731
    ci = M.bootstrap(stat, W)["ci"]
    point = stat(np.ones(80))
    assert ci[0] <= point <= ci[1]
    assert ci[1] - ci[0] > 0.01


def test_group_weights_move_groups_together():
    groups = ["a", "a", "b", "c", "c", "c"]
    W = M.group_weights(groups, 200, seed=0)
    assert np.all(W[:, 0] == W[:, 1])
    assert np.all(W[:, 3] == W[:, 5])
    assert np.allclose(W.sum(1) / 1, W.sum(1))


def test_paired_difference_detects_better_model():
    rng = np.random.default_rng(3)
    Yb = rng.integers(0, 2, size=(100, 3))
    good = np.where(rng.random((100, 3)) < 0.9, Yb, 1 - Yb)
    bad = np.where(rng.random((100, 3)) < 0.6, Yb, 1 - Yb)
    W = M.group_weights([str(i) for i in range(100)], 300, seed=0)
    d = M.paired_difference(lambda w: M.multilabel_f1(Yb, good, w)["micro_f1"], lambda w: M.multilabel_f1(Yb, bad, w)["micro_f1"], W)
    assert d["diff"] > 0 and d["ci"][0] > 0 and d["p_not_better"] < 0.05
