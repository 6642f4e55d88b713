"""Prevalence corrected for the model's errors: adjusted classify-and-count with bootstrap intervals.

The share of posts a classifier labels is a biased estimate of how many posts carry the label: a
label found with recall 0.6 is undercounted, one with many false positives overcounted. Adjusted
counting (Forman 2008, ACC; Bella et al. 2010, PACC with probabilities) inverts the error rates
measured on held-out gold: q = M p, with M[i, j] = P(predicted i | true j). Every topic and frame is
its own binary problem, and so is each stance class against the rest (a three-class inversion
would lean on the few ``favor`` posts of the gold for every class). QuaPy fits M from the
saved held-out predictions (``aggregation_fit`` on precomputed outputs, no classifier retrained) and
its own ``solve_adjustment`` and ``normalize_prevalence`` (exact solve, clip to [0, 1]) apply it,
batched over every cell (label x channel x period), so the cost grows with the cells, not the posts.

Intervals follow QuaPy's aggregative bootstrap (Moreo & Salvati 2025): M is refitted on resamples of
the held-out gold (by duplicate/translation group; the same estimate as QuaPy's, vectorised), each paired with a resample of the cell's
posts, drawn from its sampling distribution (binomial count for ACC, normal mean of probabilities
for PACC) instead of by copying rows; the 2.5 and 97.5 percentiles give the 95% interval. With few
gold positives these intervals are wide, as they should be.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..errors import ConfigError
from .heldout import HeldOut

METHODS = ("acc", "pacc")


MIN_CLASS = 10
"""Held-out gold posts a label needs on each side (with and without it) before it is corrected."""


MIN_GAP = 0.2
"""Smallest true-positive minus false-positive rate worth inverting: below it, noise is amplified 5x or more."""


N_BOOT = 500



class HeldOutOutputs(ClassifierMixin, BaseEstimator):
    """A fitted stand-in for the classifier whose outputs QuaPy aggregates: it only carries ``classes_``.

    QuaPy's aggregative quantifiers built with ``fit_classifier=False`` need a fitted classifier
    object; the outputs themselves are the saved held-out predictions, so nothing is ever predicted.
    """

    def __init__(self, n_classes: int = 2) -> None:
        self.n_classes = n_classes
        self.classes_ = np.arange(n_classes)

    def fit(self, X, y):  # pragma: no cover - never called (fit_classifier=False)
        return self


def quantifier(method: str, n_classes: int = 2):
    """A QuaPy ACC or PACC over precomputed outputs: exact solve, CC when singular, clip to the simplex."""
    import warnings

    from quapy.method.aggregative import ACC, PACC

    if method not in METHODS:
        raise ConfigError(f"unknown correction method {method!r}; choose one of {', '.join(METHODS)}")
    cls = PACC if method == "pacc" else ACC
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(HeldOutOutputs(n_classes), fit_classifier=False, val_split=None, solver="exact-cc", norm="clip", n_jobs=1)


def error_matrix(method: str, gold: np.ndarray, outputs: np.ndarray, n_classes: int) -> np.ndarray:
    """QuaPy's estimate of M[i, j] = P(output i | true j) from held-out outputs (labels or probabilities)."""
    q = quantifier(method, n_classes)
    q.aggregation_fit(outputs, gold)
    return q.Pte_cond_estim_


def adjust(M: np.ndarray, unadjusted: np.ndarray) -> np.ndarray:
    """Corrected prevalence vectors (C, k) from unadjusted ones (C, k): QuaPy's ACC/PACC ``aggregate``, batched."""
    import quapy.functional as F
    from quapy.method.aggregative import ACC

    est = ACC.solve_adjustment(M, unadjusted.T, method="inversion", solver="exact-cc")
    return F.normalize_prevalence(np.asarray(est).T, method="clip")


def binary_error_matrices(gold: np.ndarray, out: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(K, 2, 2) error matrices of K binary targets at once: QuaPy's ``getPteCondEstim`` in numpy.

    ``out``: decisions (ACC) or probabilities (PACC) of the positive class. Column j of a matrix is
    the mean output given true class j (a class without posts gets the identity column, as in QuaPy).
    Used for the bootstrap refits, where one QuaPy call per refit and target would dominate the
    report's time; the tests check it equals ``error_matrix`` on the same rows.
    """
    g = gold & valid
    ng = (~gold) & valid
    n_pos, n_neg = g.sum(0), ng.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.where(n_pos > 0, (out * g).sum(0) / n_pos, 1.0)
        fpr = np.where(n_neg > 0, (out * ng).sum(0) / n_neg, 0.0)
    M = np.empty((gold.shape[1], 2, 2))
    M[:, 0, 0], M[:, 1, 0], M[:, 0, 1], M[:, 1, 1] = 1 - fpr, fpr, 1 - tpr, tpr
    return M


def binary_outputs(method: str, pred: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.column_stack([1.0 - p, p]) if method == "pacc" else pred.astype(int)


@dataclass
class Correction:
    """Fitted error matrices of every binary target (topics, frames, each stance class), point and bootstrap."""

    method: str
    protocol: str
    n_rows: int
    n_groups: int
    targets: tuple[str, ...]
    n_gold: np.ndarray    # (K,) held-out rows with a gold value for the target
    n_pos: np.ndarray     # (K,) of which with the target
    M: np.ndarray         # (K, 2, 2): M[k, i, j] = P(output i | true j)
    M_boot: np.ndarray    # (B, K, 2, 2)
    ok: np.ndarray        # (K,) bool: corrected
    why_not: list[str]    # reason per target ("" when corrected)
    seed: int = 0

    @property
    def tpr(self) -> np.ndarray:
        """True-positive rate (PACC: mean probability on gold positives)."""
        return self.M[:, 1, 1]

    @property
    def fpr(self) -> np.ndarray:
        """False-positive rate (PACC: mean probability on gold negatives)."""
        return self.M[:, 1, 0]


def group_resamples(groups: np.ndarray, n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row indices of ``n_boot`` resamples of whole groups (copies and translations stay together)."""
    uniq, inv = np.unique(groups, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
    members = [order[starts[g]:starts[g + 1]] for g in range(len(uniq))]
    return [np.concatenate([members[g] for g in rng.integers(0, len(uniq), len(uniq))]) for _ in range(n_boot)]


def fit_correction(ho: HeldOut, method: str = "acc", n_boot: int = N_BOOT, seed: int = 0) -> Correction:
    """Error matrices from the held-out rows, and ``n_boot`` bootstrap refits (see the module docstring)."""
    rng = np.random.default_rng(seed)
    K = len(ho.targets)
    M = np.zeros((K, 2, 2))
    n_gold = ho.valid.sum(0).astype(int)
    n_pos = (ho.gold & ho.valid).sum(0).astype(int)
    why = []
    for k in range(K):
        v = ho.valid[:, k]
        M[k] = error_matrix(method, ho.gold[v, k].astype(int), binary_outputs(method, ho.pred[v, k], ho.p[v, k]), 2)
        gap = M[k, 1, 1] - M[k, 1, 0]
        if min(n_pos[k], n_gold[k] - n_pos[k]) < MIN_CLASS:
            side = "with" if n_pos[k] < MIN_CLASS else "without"
            why.append(f"{min(n_pos[k], n_gold[k] - n_pos[k])} held-out gold post(s) {side} it (needs {MIN_CLASS})")
        elif gap < MIN_GAP:
            why.append(f"the model barely tells it apart on gold (true minus false positive rate {gap:.3f} < {MIN_GAP})")
        else:
            why.append("")
    M_boot = np.zeros((n_boot, K, 2, 2))
    out = ho.p if method == "pacc" else ho.pred.astype(float)
    for b, idx in enumerate(group_resamples(ho.groups, n_boot, rng)):
        M_boot[b] = binary_error_matrices(ho.gold[idx], out[idx], ho.valid[idx])
    return Correction(method, ho.protocol, ho.n, len(np.unique(ho.groups)), ho.targets, n_gold, n_pos, M, M_boot,
                      np.array([w == "" for w in why], bool), why, seed)


@dataclass
class Estimates:
    """Per cell (rows) and target (columns): posts, raw share, corrected share and its 95% interval.

    ``outside``: the cell's unadjusted statistic lies outside [false, true positive rate] measured on
    gold, so the correction had to clip: the model behaves here unlike on the held-out gold.
    """

    n: np.ndarray        # (C,)
    raw: np.ndarray      # (C, K)
    corr: np.ndarray     # (C, K), NaN where not corrected
    lo: np.ndarray
    hi: np.ndarray
    outside: np.ndarray  # (C, K) bool


def cell_stats(method: str, member: np.ndarray, Y: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, ...]:
    """Posts, raw share, the method's unadjusted statistic and its per-post variance, per cell.

    ``member``: (n,) cell index per post (-1: in no cell); ``Y`` (n, K) decisions; ``P`` (n, K) probabilities.
    """
    keep = member >= 0
    m = member[keep]
    C = int(m.max()) + 1 if len(m) else 0
    n = np.bincount(m, minlength=C).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = _sum_by(m, Y[keep].astype(float), C) / n[:, None]
        if method == "acc":
            return n, raw, raw, raw * (1 - raw)
        mean = _sum_by(m, P[keep].astype(float), C) / n[:, None]
        var = np.maximum(_sum_by(m, P[keep].astype(float) ** 2, C) / n[:, None] - mean**2, 0.0)
    return n, raw, mean, var


def _sum_by(m: np.ndarray, X: np.ndarray, C: int) -> np.ndarray:
    out = np.zeros((C, X.shape[1]))
    np.add.at(out, m, X)
    return out


def correct(cor: Correction, n: np.ndarray, raw: np.ndarray, stat: np.ndarray, var: np.ndarray,
            rng: np.random.Generator) -> Estimates:
    """Corrected shares per cell and target with bootstrap intervals (targets not ``ok`` stay NaN)."""
    C, K = raw.shape
    corr = np.full((C, K), np.nan)
    lo, hi = corr.copy(), corr.copy()
    outside = np.zeros((C, K), bool)
    live = n > 0
    if not live.any():
        return Estimates(n, raw, corr, lo, hi, outside)
    nl = n[live]
    B = cor.M_boot.shape[0]
    for k in np.flatnonzero(cor.ok):
        q = stat[live, k]
        corr[live, k] = adjust(cor.M[k], np.column_stack([1 - q, q]))[:, 1]
        outside[live, k] = (q < cor.fpr[k]) | (q > cor.tpr[k])
        qb = _resample_stat(cor.method, q, var[live, k], nl, B, rng)         # (B, C')
        draws = np.empty_like(qb)
        for b in range(B):
            draws[b] = adjust(cor.M_boot[b, k], np.column_stack([1 - qb[b], qb[b]]))[:, 1]
        lo[live, k], hi[live, k] = np.percentile(draws, [2.5, 97.5], axis=0)
    return Estimates(n, raw, corr, lo, hi, outside)


def _resample_stat(method: str, q: np.ndarray, var: np.ndarray, n: np.ndarray, B: int, rng: np.random.Generator) -> np.ndarray:
    """The cell statistic of ``B`` resamples of the cell's posts, drawn from its sampling distribution."""
    if method == "acc":
        return rng.binomial(n.astype(np.int64), np.clip(q, 0, 1), size=(B, len(q))) / n
    return np.clip(q + rng.standard_normal((B, len(q))) * np.sqrt(var / n), 0.0, 1.0)
