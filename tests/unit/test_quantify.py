"""The correction: QuaPy's estimates reproduced by the batched code, unbiased on synthetic data with known
error rates, intervals that cover the truth, labels refused when the gold cannot support them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classify.reporting import quantify as Q
from classify.reporting.goldcheck import crossfit, shipped_check
from classify.reporting.heldout import HeldOut


def held_out(gold: np.ndarray, pred: np.ndarray, p: np.ndarray | None = None, protocol: str = "loso",
             sources: np.ndarray | None = None) -> HeldOut:
    """A one-target HeldOut (or several: 2-D arrays) from arrays."""
    gold, pred = np.atleast_2d(gold.T).T, np.atleast_2d(pred.T).T
    p = np.where(pred, 0.9, 0.1) if p is None else np.atleast_2d(p.T).T
    m, K = gold.shape
    ids = np.array([f"h{i}" for i in range(m)])
    return HeldOut(Path("x"), protocol, {protocol: m}, tuple(f"t{k}" for k in range(K)), ids,
                   sources if sources is not None else np.array(["s1", "s2"] * (m // 2) + ["s1"] * (m % 2)),
                   np.array(["en"] * m), gold.astype(bool), pred.astype(bool), p.astype(float), np.ones((m, K), bool), ids)


def draw(rng, n: int, prevalence: float, tpr: float, fpr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True labels, decisions with the given error rates, and probabilities consistent with them."""
    y = rng.random(n) < prevalence
    pred = np.where(y, rng.random(n) < tpr, rng.random(n) < fpr)
    p = np.clip(np.where(pred, 0.8, 0.2) + rng.normal(0, 0.05, n), 0, 1)
    return y, pred, p


@pytest.mark.parametrize("method", ["acc", "pacc"])
def test_batched_error_matrices_equal_quapys(method):
    rng = np.random.default_rng(1)
    gold = rng.random((200, 3)) < [0.1, 0.5, 0.0]          # the last target has no positives: QuaPy's identity column
    pred = rng.random((200, 3)) < 0.3
    p = rng.random((200, 3))
    out = p if method == "pacc" else pred.astype(float)
    batched = Q.binary_error_matrices(gold, out, np.ones(gold.shape, bool))
    for k in range(3):
        one = Q.error_matrix(method, gold[:, k].astype(int), Q.binary_outputs(method, pred[:, k], p[:, k]), 2)
        np.testing.assert_allclose(batched[k], one, atol=1e-12)


@pytest.mark.parametrize("method", ["acc", "pacc"])
def test_batched_adjustment_equals_quapys_aggregate(method):
    """``adjust`` over many cells gives what QuaPy's own ``aggregate`` gives for each cell."""
    rng = np.random.default_rng(2)
    y, pred, p = draw(rng, 400, 0.3, 0.7, 0.1)
    q = Q.quantifier(method)
    q.aggregation_fit(Q.binary_outputs(method, pred, p), y.astype(int))
    for share in (0.05, 0.3, 0.6, 0.95):
        _, cp, pp = draw(rng, 300, share, 0.7, 0.1)
        outputs = Q.binary_outputs(method, cp, pp)
        stat = pp.mean() if method == "pacc" else cp.mean()
        batched = Q.adjust(q.Pte_cond_estim_, np.array([[1 - stat, stat]]))[0]
        np.testing.assert_allclose(batched, q.aggregate(outputs), atol=1e-9)


@pytest.mark.parametrize("method", ["acc", "pacc"])
def test_corrected_share_is_unbiased_when_error_rates_hold(method):
    rng = np.random.default_rng(3)
    y, pred, p = draw(rng, 20000, 0.3, 0.6, 0.1)
    cor = Q.fit_correction(held_out(y, pred, p), method, n_boot=100)
    _, cp, pp = draw(rng, 50000, 0.5, 0.6, 0.1)
    n, raw, stat, var = Q.cell_stats(method, np.zeros(len(cp), int), cp[:, None], pp[:, None])
    est = Q.correct(cor, n, raw, stat, var, rng)
    assert abs(raw[0, 0] - 0.5) > 0.1                   # the model's count is far off: 0.5 * 0.6 + 0.5 * 0.1 = 0.35
    assert abs(est.corr[0, 0] - 0.5) < 0.02
    assert est.lo[0, 0] <= 0.5 <= est.hi[0, 0]


def test_cells_are_corrected_independently():
    rng = np.random.default_rng(4)
    y, pred, p = draw(rng, 5000, 0.3, 0.8, 0.05)
    cor = Q.fit_correction(held_out(y, pred, p), "acc", n_boot=100)
    parts = [draw(rng, 20000, share, 0.8, 0.05)[1] for share in (0.1, 0.6)]
    member = np.repeat([0, 1], 20000)
    Y = np.concatenate(parts)[:, None]
    n, raw, stat, var = Q.cell_stats("acc", member, Y, Y.astype(float))
    est = Q.correct(cor, n, raw, stat, var, rng)
    np.testing.assert_allclose(est.corr[:, 0], [0.1, 0.6], atol=0.03)
    assert list(n) == [20000, 20000]


def test_a_label_with_few_gold_positives_is_not_corrected():
    rng = np.random.default_rng(5)
    y = np.zeros(300, bool)
    y[:4] = True
    pred = y | (rng.random(300) < 0.05)
    cor = Q.fit_correction(held_out(y, pred), "acc", n_boot=50)
    assert not cor.ok[0] and "4 held-out gold post(s) with it" in cor.why_not[0]
    n, raw, stat, var = Q.cell_stats("acc", np.zeros(100, int), pred[:100, None], pred[:100, None].astype(float))
    est = Q.correct(cor, n, raw, stat, var, rng)
    assert np.isnan(est.corr[0, 0]) and not np.isnan(est.raw[0, 0])


def test_a_label_the_model_cannot_separate_is_not_corrected():
    rng = np.random.default_rng(6)
    y = rng.random(400) < 0.4
    pred = rng.random(400) < 0.3                        # unrelated to the truth
    cor = Q.fit_correction(held_out(y, pred), "acc", n_boot=50)
    assert not cor.ok[0] and "barely tells it apart" in cor.why_not[0]


def test_a_share_below_the_false_positive_rate_is_flagged():
    rng = np.random.default_rng(7)
    y, pred, p = draw(rng, 2000, 0.3, 0.7, 0.2)
    cor = Q.fit_correction(held_out(y, pred, p), "acc", n_boot=50)
    cp = np.zeros(500, bool)
    cp[:25] = True                                      # 5% labelled, under the 20% false-positive rate
    n, raw, stat, var = Q.cell_stats("acc", np.zeros(500, int), cp[:, None], cp[:, None].astype(float))
    est = Q.correct(cor, n, raw, stat, var, rng)
    assert est.outside[0, 0] and est.corr[0, 0] == 0.0


def test_crossfitted_gold_check_beats_raw_when_the_model_is_biased():
    rng = np.random.default_rng(8)
    gold = rng.random((600, 2)) < [0.2, 0.4]
    pred = np.where(gold, rng.random((600, 2)) < 0.6, rng.random((600, 2)) < 0.15)
    ho = held_out(gold, pred)
    for by in ("group", "source"):
        gc = crossfit(ho, "acc", by=by)
        s = gc.summary()
        assert s["abs_corrected"] < s["abs_raw"], (by, s)
    assert shipped_check(ho, ho, "acc") is None            # the same rows: nothing to check


@pytest.mark.slow
@pytest.mark.parametrize("method", ["acc", "pacc"])
def test_interval_covers_the_true_prevalence_and_not_the_raw_share(method):
    """Over repeated draws of gold and corpus with known error rates, the 95% interval covers the true
    share at least 90% of the time and leaves the raw share (biased by the errors) out at least 90%."""
    rng = np.random.default_rng(9)
    truth, tpr, fpr, draws = 0.6, 0.7, 0.1, 400
    covered = raw_out = 0
    for r in range(draws):
        y, pred, p = draw(rng, 400, 0.3, tpr, fpr)
        cor = Q.fit_correction(held_out(y, pred, p), method, n_boot=Q.N_BOOT, seed=r)
        _, cp, pp = draw(rng, 5000, truth, tpr, fpr)
        n, raw, stat, var = Q.cell_stats(method, np.zeros(len(cp), int), cp[:, None], pp[:, None])
        est = Q.correct(cor, n, raw, stat, var, rng)
        covered += est.lo[0, 0] <= truth <= est.hi[0, 0]
        raw_out += not est.lo[0, 0] <= raw[0, 0] <= est.hi[0, 0]
    print(f"{method}: interval covers the truth in {covered}/{draws} draws, leaves the raw share out in {raw_out}/{draws}")
    assert covered / draws >= 0.90
    assert raw_out / draws >= 0.90
