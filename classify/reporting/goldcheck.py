"""Does the correction work? Checked on the held-out gold itself, without using a post's labels to correct it.

Cross-fitting: the held-out rows are split into folds (by duplicate/translation group, repeated with
new splits, or one fold per source); each fold's prevalence is corrected with error rates fitted on
the other folds only and compared with the fold's gold prevalence. Correcting a set with its own
error rates would return its gold prevalence exactly, which proves nothing; the per-source split is
the harder case, the one a new corpus puts the correction in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .heldout import HeldOut
from .quantify import adjust, fit_correction


@dataclass
class GoldCheck:
    """Per target: gold prevalence, raw share and cross-fitted corrected share of the held-out rows,
    and the mean absolute error of fold estimates (raw and corrected) against the folds' gold."""

    scheme: str
    targets: tuple[str, ...]
    n: np.ndarray
    gold: np.ndarray
    raw: np.ndarray
    corrected: np.ndarray
    mae_raw: np.ndarray
    mae_corr: np.ndarray
    corrected_share: np.ndarray   # (K,) share of fold estimates that were corrected (else raw stood in)

    def summary(self) -> dict[str, float]:
        """Mean over targets of the absolute gap to gold: whole set (raw, corrected) and per fold."""
        return {"abs_raw": float(np.nanmean(np.abs(self.raw - self.gold))),
                "abs_corrected": float(np.nanmean(np.abs(self.corrected - self.gold))),
                "mae_raw": float(np.nanmean(self.mae_raw)), "mae_corrected": float(np.nanmean(self.mae_corr))}


def crossfit(ho: HeldOut, method: str, *, by: str = "group", folds: int = 5, repeats: int = 10, seed: int = 0) -> GoldCheck | None:
    """Cross-fitted check of the correction (see the module docstring); ``None`` when it cannot split."""
    rng = np.random.default_rng(seed)
    if by == "source":
        keys, fold_of = np.unique(ho.sources, return_inverse=True)
        if len(keys) < 2:
            return None
        splits = [fold_of]
        scheme = f"one fold per source ({len(keys)} sources: {', '.join(map(str, keys))})"
    else:
        uniq, inv = np.unique(ho.groups, return_inverse=True)
        folds = min(folds, len(uniq))
        if folds < 2:
            return None
        splits = [rng.permutation(len(uniq))[inv] % folds for _ in range(repeats)]
        scheme = f"{folds} folds over duplicate/translation groups, {repeats} random splits"
    K = len(ho.targets)
    est_sum = np.zeros(K)
    err_raw, err_corr, n_corr, n_fold = np.zeros(K), np.zeros(K), np.zeros(K), np.zeros(K)
    for fold_of in splits:
        wsum, wn = np.zeros(K), np.zeros(K)
        for f in np.unique(fold_of):
            test = fold_of == f
            cor = fit_correction(ho.subset(~test), method, n_boot=0)
            t = ho.subset(test)
            for k in range(K):
                v = t.valid[:, k]
                if not v.any():
                    continue
                g = t.gold[v, k].mean()
                raw = t.pred[v, k].mean()
                stat = t.p[v, k].mean() if method == "pacc" else raw
                est = adjust(cor.M[k], np.array([[1 - stat, stat]]))[0, 1] if cor.ok[k] else raw
                n_corr[k] += cor.ok[k]
                n_fold[k] += 1
                err_raw[k] += abs(raw - g)
                err_corr[k] += abs(est - g)
                wsum[k] += est * v.sum()
                wn[k] += v.sum()
        est_sum += np.where(wn > 0, wsum / np.maximum(wn, 1), np.nan)
    v = ho.valid
    with np.errstate(invalid="ignore", divide="ignore"):
        gold = (ho.gold & v).sum(0) / v.sum(0)
        raw = (ho.pred & v).sum(0) / v.sum(0)
        return GoldCheck(scheme, ho.targets, v.sum(0), gold, raw, est_sum / len(splits), err_raw / n_fold,
                         err_corr / n_fold, n_corr / n_fold)


def shipped_check(rates: HeldOut, test: HeldOut, method: str) -> GoldCheck | None:
    """The shipped model's predictions on the test split, corrected with ``rates``' error rates, against their gold.

    The error rates of ``loso``/``cv`` rows come from other models (trained without the post's
    source, or on part of the training split) than the one that tagged the corpus; this says whether
    they still correct the shipped model, on gold it never saw. ``None`` when the rows are the same.
    """
    if rates.protocol == test.protocol or test.n == 0:
        return None
    cor = fit_correction(rates, method, n_boot=0)
    K = len(test.targets)
    gold, raw, est = np.full(K, np.nan), np.full(K, np.nan), np.full(K, np.nan)
    for k in range(K):
        v = test.valid[:, k]
        if not v.any():
            continue
        gold[k] = test.gold[v, k].mean()
        raw[k] = test.pred[v, k].mean()
        stat = test.p[v, k].mean() if method == "pacc" else raw[k]
        est[k] = adjust(cor.M[k], np.array([[1 - stat, stat]]))[0, 1] if cor.ok[k] else raw[k]
    scheme = (f"the tagging model's predictions on the {test.n} test-split gold posts, corrected with the error rates of "
              f"the {rates.n} `{rates.protocol}` rows")
    return GoldCheck(scheme, test.targets, test.valid.sum(0), gold, raw, est, np.abs(raw - gold), np.abs(est - gold),
                     cor.ok.astype(float))
