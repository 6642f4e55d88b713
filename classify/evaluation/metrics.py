"""Metrics as plain numbers: F1 for multi-label and stance, bootstrap intervals, paired differences.

Everything here takes arrays and returns floats or dicts; rendering lives in ``classify.report``.
Zero-division policy: a precision, recall or F1 whose denominator is 0 counts as 0 (scikit-learn's
``zero_division=0``); a label with no gold and no predicted positives in a sample therefore scores 0
in the macro average, which the report states.

Bootstrap intervals resample *groups* (duplicate/translation groups), not posts, so copies of a post
move together, as they do in the folds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-12), 0.0)
        r = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1e-12), 0.0)
        f = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    return p, r, f


def multilabel_f1(Y: np.ndarray, Yhat: np.ndarray, w: np.ndarray | None = None, cols: np.ndarray | None = None) -> dict[str, float]:
    """Micro, macro and samples F1 of binary matrices (rows may be weighted by bootstrap counts).

    ``cols`` (boolean mask) restricts the macro average to labels that occur in the gold data; a
    label absent from gold has no defined F1 and is reported as absent instead. Micro and samples
    F1 keep every column, so false positives on absent labels still count as errors.
    """
    Y = Y.astype(bool)
    Yhat = Yhat.astype(bool)
    w = np.ones(len(Y)) if w is None else w
    tp = ((Y & Yhat) * w[:, None]).sum(0)
    fp = ((~Y & Yhat) * w[:, None]).sum(0)
    fn = ((Y & ~Yhat) * w[:, None]).sum(0)
    _, _, f = _prf(tp, fp, fn)
    _, _, micro = _prf(tp.sum(), fp.sum(), fn.sum())
    tps, fps, fns = (Y & Yhat).sum(1), (~Y & Yhat).sum(1), (Y & ~Yhat).sum(1)
    denom = 2 * tps + fps + fns
    samples = np.where(denom > 0, 2 * tps / np.maximum(denom, 1), 0.0)
    macro = f[cols].mean() if cols is not None and cols.any() else f.mean()
    return {"micro_f1": float(micro), "macro_f1": float(macro), "samples_f1": float((samples * w).sum() / w.sum())}


def per_label(Y: np.ndarray, Yhat: np.ndarray, ids: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per label (columns in ``ids`` order)."""
    Y = Y.astype(bool)
    Yhat = Yhat.astype(bool)
    tp, fp, fn = (Y & Yhat).sum(0), (~Y & Yhat).sum(0), (Y & ~Yhat).sum(0)
    p, r, f = _prf(tp, fp, fn)
    return {lid: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(Y[:, j].sum()),
                  "predicted": int(Yhat[:, j].sum())} for j, lid in enumerate(ids)}


def stance_f1(y: np.ndarray, yhat: np.ndarray, classes: Sequence[str], w: np.ndarray | None = None) -> dict[str, float]:
    """Macro-F1 over the classes and SemEval-2016's F_avg (mean F1 of ``favor`` and ``against``)."""
    w = np.ones(len(y)) if w is None else w
    k = len(classes)
    tp = np.array([((y == c) & (yhat == c)) @ w for c in range(k)])
    fp = np.array([((y != c) & (yhat == c)) @ w for c in range(k)])
    fn = np.array([((y == c) & (yhat != c)) @ w for c in range(k)])
    _, _, f = _prf(tp, fp, fn)
    fav = [classes.index(c) for c in ("favor", "against") if c in classes]
    return {"macro_f1": float(f.mean()), "f_avg": float(f[fav].mean()) if fav else float("nan"),
            "accuracy": float(((y == yhat) @ w) / w.sum())}


def stance_per_class(y: np.ndarray, yhat: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per stance class."""
    Y = np.eye(len(classes), dtype=bool)[y]
    Yh = np.eye(len(classes), dtype=bool)[yhat]
    return per_label(Y, Yh, classes)


def confusion(y: np.ndarray, yhat: np.ndarray, k: int) -> list[list[int]]:
    """Confusion matrix, rows gold, columns predicted."""
    m = np.zeros((k, k), dtype=int)
    np.add.at(m, (y, yhat), 1)
    return m.tolist()


def group_weights(groups: Sequence[str], n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap weights per post (n_boot x n_posts): each draw resamples groups with replacement."""
    groups = np.asarray(list(groups))
    uniq, inverse = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(uniq), size=(n_boot, len(uniq)))
    counts = np.zeros((n_boot, len(uniq)))
    for b in range(n_boot):
        counts[b] = np.bincount(draws[b], minlength=len(uniq))
    return counts[:, inverse]


def bootstrap(stat: Callable[[np.ndarray], float], weights: np.ndarray, alpha: float = 0.05) -> dict[str, float]:
    """Percentile interval of ``stat(w)`` over bootstrap weight vectors."""
    vals = np.array([stat(w) for w in weights])
    lo, hi = np.nanquantile(vals, [alpha / 2, 1 - alpha / 2])
    return {"ci": [float(lo), float(hi)], "boot_sd": float(np.nanstd(vals))}


def paired_difference(stat_a: Callable[[np.ndarray], float], stat_b: Callable[[np.ndarray], float],
                      weights: np.ndarray, alpha: float = 0.05) -> dict[str, float]:
    """Paired bootstrap of ``a - b`` on the same resamples: mean, interval, and P(a - b <= 0)."""
    full = np.ones(weights.shape[1])
    diffs = np.array([stat_a(w) - stat_b(w) for w in weights])
    lo, hi = np.nanquantile(diffs, [alpha / 2, 1 - alpha / 2])
    return {"diff": float(stat_a(full) - stat_b(full)), "ci": [float(lo), float(hi)],
            "p_not_better": float(np.mean(diffs <= 0))}
