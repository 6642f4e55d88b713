"""Every number of one model's out-of-fold predictions: headline scores with intervals, per label,
per language, evidence quality, calibration, worst errors, and the predictions table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..learners.base import gold_targets
from . import metrics as M
from .crossval import HEADLINE, OOF, task_stat


def model_metrics(gold: pd.DataFrame, oof: OOF, codebook: Codebook, weights: np.ndarray) -> dict[str, Any]:
    """Every number for one model: headline with intervals, per label, per language, evidence, errors."""
    Yt, Yf, ys = gold_targets(gold, codebook)
    truth = {"topics": Yt, "frames": Yf, "stance_west": ys}
    out: dict[str, Any] = {"summary": {}, "per_label": {}, "per_language": {}}
    R = oof.topics_y.shape[0]
    for task in ("topics", "frames", "stance_west"):
        stat = task_stat(task, truth[task], oof, codebook)
        folds = np.array([fs[task] for fs in oof.fold_scores])
        out["summary"][task] = {"metric": HEADLINE[task], "mean": stat(np.ones(len(gold))), **M.bootstrap(stat, weights),
                                "fold_sd": float(folds.std(ddof=1)) if len(folds) > 1 else 0.0,
                                "fold_min": float(folds.min()), "fold_max": float(folds.max())}
    # Secondary averages and per-label tables (mean over repeats of pooled OOF).
    for task, Ytrue, Yhat, ids in (("topics", Yt, oof.topics_y, codebook.topics), ("frames", Yf, oof.frames_y, codebook.frames)):
        avgs = [M.multilabel_f1(Ytrue, Yhat[r], cols=Ytrue.sum(0) > 0) for r in range(R)]
        out["summary"][task]["averages"] = {k: float(np.mean([a[k] for a in avgs])) for k in avgs[0]}
        tables = [M.per_label(Ytrue, Yhat[r], ids) for r in range(R)]
        out["per_label"][task] = {lid: {k: float(np.mean([t[lid][k] for t in tables])) for k in tables[0][lid]} for lid in ids}
        for lid in ids:
            j = ids.index(lid)
            col_stat = _label_stat(Ytrue[:, j], Yhat[:, :, j])
            out["per_label"][task][lid]["ci"] = M.bootstrap(col_stat, weights)["ci"]
    st = [M.stance_f1(ys, oof.stance_y[r], codebook.stances) for r in range(R)]
    out["summary"]["stance_west"]["averages"] = {k: float(np.mean([s[k] for s in st])) for k in st[0]}
    pcs = [M.stance_per_class(ys, oof.stance_y[r], codebook.stances) for r in range(R)]
    out["per_label"]["stance_west"] = {c: {k: float(np.mean([p[c][k] for p in pcs])) for k in pcs[0][c]} for c in codebook.stances}
    out["confusion"] = M.confusion(ys, oof.stance_y[0], len(codebook.stances))
    # Per-language slices.
    for lang, idx in gold.groupby("lang").indices.items():
        out["per_language"][lang] = {"n": int(len(idx))}
        for task in ("topics", "frames", "stance_west"):
            out["per_language"][lang][task] = task_stat(task, truth[task], oof, codebook, idx)(np.ones(len(gold)))
    out["evidence"] = evidence_quality(gold, oof, codebook)
    out["calibration"] = calibration(np.concatenate([Yt, Yf], 1), np.concatenate([oof.topics_p, oof.frames_p], 2))
    return out


def _label_stat(y: np.ndarray, yhat: np.ndarray) -> Callable[[np.ndarray], float]:
    def stat(w: np.ndarray) -> float:
        vals = []
        for r in range(yhat.shape[0]):
            tp = (y & yhat[r]) @ w
            fp = (~y.astype(bool) & yhat[r]) @ w
            fn = (y.astype(bool) & ~yhat[r]) @ w
            vals.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
        return float(np.mean(vals))

    return stat


def evidence_quality(gold: pd.DataFrame, oof: OOF, codebook: Codebook) -> dict[str, Any]:
    """Among correctly predicted frames, how often the top paragraph is a gold evidence paragraph."""
    hits = total = 0
    for r in range(oof.frames_y.shape[0]):
        for i, ev in enumerate(gold["evidence"]):
            for j, f in enumerate(codebook.frames):
                if f in ev and oof.frames_y[r, i, j]:
                    total += 1
                    hits += int(oof.evidence[r, i, j] in set(ev[f]))
    return {"top_paragraph_in_gold": hits / total if total else None, "n_frames_correct": total / max(oof.frames_y.shape[0], 1)}


def calibration(Y: np.ndarray, P: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Reliability curve of all topic and frame probabilities (pooled over repeats)."""
    y = np.tile(Y[None], (P.shape[0], 1, 1)).ravel()
    p = P.ravel()
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    mean_p, frac, count = [], [], []
    for b in range(bins):
        m = which == b
        if m.any():
            mean_p.append(float(p[m].mean()))
            frac.append(float(y[m].mean()))
            count.append(int(m.sum()))
    return {"mean_predicted": mean_p, "fraction_positive": frac, "count": count}


def worst_errors(gold: pd.DataFrame, oof: OOF, codebook: Codebook, kind: str, k: int = 8) -> list[dict[str, Any]]:
    """Posts with the most wrong labels in repeat 0, with gold and predicted labels."""
    Yt, Yf, ys = gold_targets(gold, codebook)
    errs = (Yt != oof.topics_y[0]).sum(1) + (Yf != oof.frames_y[0]).sum(1) + (ys != oof.stance_y[0])
    out = []
    for i in np.argsort(-errs, kind="stable")[:k]:
        if errs[i] == 0:
            break
        text = " ".join(gold.iloc[i]["paragraphs"])
        out.append({"model": kind, "post_id": gold.iloc[i]["post_id"], "lang": gold.iloc[i]["lang"], "n_errors": int(errs[i]),
                    "opening": text[:220], "gold": _labels(Yt[i], Yf[i], ys[i], codebook),
                    "predicted": _labels(oof.topics_y[0, i], oof.frames_y[0, i], oof.stance_y[0, i], codebook)})
    return out


def _labels(t: np.ndarray, f: np.ndarray, s: int, cb: Codebook) -> dict[str, Any]:
    return {"topics": [x for j, x in enumerate(cb.topics) if t[j]], "frames": [x for j, x in enumerate(cb.frames) if f[j]],
            "stance_west": cb.stances[int(s)]}


def predictions_frame(gold: pd.DataFrame, oofs: dict[str, OOF], codebook: Codebook) -> pd.DataFrame:
    """Out-of-fold predictions, one row per model, repeat and post."""
    rows = []
    for kind, oof in oofs.items():
        for r in range(oof.topics_y.shape[0]):
            for i in range(len(gold)):
                g = gold.iloc[i]
                row = {"model": kind, "repeat": r, "fold": int(oof.fold[r, i]), "post_id": g["post_id"], "lang": g["lang"],
                       "gold_topics": list(g["topics"]), "gold_frames": list(g["frames"]), "gold_stance": g["stance_west"],
                       "pred_topics": [t for j, t in enumerate(codebook.topics) if oof.topics_y[r, i, j]],
                       "pred_frames": [f for j, f in enumerate(codebook.frames) if oof.frames_y[r, i, j]],
                       "pred_stance": codebook.stances[int(oof.stance_y[r, i])]}
                row.update({f"p_{t}": float(oof.topics_p[r, i, j]) for j, t in enumerate(codebook.topics)})
                row.update({f"p_{f}": float(oof.frames_p[r, i, j]) for j, f in enumerate(codebook.frames)})
                row.update({f"p_stance_{s}": float(oof.stance_p[r, i, j]) for j, s in enumerate(codebook.stances)})
                rows.append(row)
    return pd.DataFrame(rows)

