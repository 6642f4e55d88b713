"""Cross-validated evaluation of every model kind, side by side, with intervals.

    python -m classify.evaluate --models baseline,transformer,cue_rule --folds 5 --repeats 3

Protocol: repeated K-fold with multi-label iterative stratification; posts of one group (copies of
a post in several dumps, a post and its translation) always share a fold. Each model, its
thresholds and any tuning are fitted inside the training folds only (a fresh model per fold), and
out-of-fold predictions are kept. Point estimates are the mean over repeats of the score of the
pooled out-of-fold predictions; the fold-to-fold spread is the standard deviation of per-fold
scores; 95% intervals come from a bootstrap over groups; model differences from a paired bootstrap
on the same resamples. The cue rule runs through the same protocol as the reference system.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import metrics as M
from ._cli import make_parser, run_main
from .codebook import Codebook
from .errors import ConfigError, InputError, check_int
from .model import Model, gold_targets, model_class
from .splits import group_folds, stacked_targets

DEFAULT_GOLD = Path("labels/gold.jsonl")
DEFAULT_TRANSLATIONS = Path("labels/translations_ru.jsonl")
"""Russian translations of the English gold posts, paragraph for paragraph (see labels/README.md)."""
N_BOOT = 1000
HEADLINE = {"topics": "micro_f1", "frames": "macro_f1", "stance_west": "macro_f1"}


@dataclass
class OOF:
    """Out-of-fold outputs of one model kind over ``R`` repeats of ``n`` posts."""

    topics_p: np.ndarray   # (R, n, T)
    frames_p: np.ndarray   # (R, n, F)
    stance_p: np.ndarray   # (R, n, S)
    topics_y: np.ndarray   # (R, n, T) bool, after the model's own thresholds
    frames_y: np.ndarray   # (R, n, F) bool
    stance_y: np.ndarray   # (R, n) int
    evidence: np.ndarray   # (R, n, F) int: top paragraph per frame
    fold: np.ndarray       # (R, n) int
    fold_scores: list[dict[str, float]] = field(default_factory=list)
    fit_seconds: list[float] = field(default_factory=list)


def data_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def post_groups(gold: pd.DataFrame) -> list[str]:
    """CV group per post: ``group`` (duplicates and translations) or ``dup_group``."""
    for col in ("group", "dup_group"):
        if col in gold.columns:
            return gold[col].astype(str).tolist()
    return gold["post_id"].astype(str).tolist()


def make_factory(kind: str, configs: dict[str, dict] | None, codebook: Codebook, seed: int) -> Callable[[], Model]:
    """A function returning a fresh, unfitted model of ``kind`` (small-text's factory habit)."""
    cls = model_class(kind)
    cfg = dict((configs or {}).get(kind, {}))
    if kind == "cue_rule":
        return lambda: cls(codebook=codebook)
    cfg.setdefault("seed", seed)
    config_cls = cls.config_class()
    return lambda: cls(config_cls.from_dict(cfg), codebook=codebook)


def cross_validate(gold: pd.DataFrame, factory: Callable[[], Model], codebook: Codebook, *, folds: int, repeats: int,
                   seed: int, progress: Callable[[str], None] | None = None) -> OOF:
    """Fit a fresh model per training fold and collect out-of-fold outputs for every repeat."""
    Yt, Yf, ys = gold_targets(gold, codebook)
    Y = stacked_targets(Yt, Yf, ys, len(codebook.stances))
    groups = post_groups(gold)
    n, T, F, S = len(gold), len(codebook.topics), len(codebook.frames), len(codebook.stances)
    oof = OOF(np.zeros((repeats, n, T)), np.zeros((repeats, n, F)), np.zeros((repeats, n, S)),
              np.zeros((repeats, n, T), bool), np.zeros((repeats, n, F), bool), np.zeros((repeats, n), int),
              np.zeros((repeats, n, F), int), np.zeros((repeats, n), int))
    for r in range(repeats):
        for k, (tr, te) in enumerate(group_folds(Y, groups, n_splits=folds, seed=seed + r)):
            if progress:
                progress(f"repeat {r + 1}/{repeats} fold {k + 1}/{folds}")
            t0 = time.perf_counter()
            model = factory().fit(gold.iloc[tr], gold.iloc[tr].reset_index(drop=True), groups=[groups[i] for i in tr])
            oof.fit_seconds.append(time.perf_counter() - t0)
            test = gold.iloc[te]
            pr = model.predict_proba(test)
            oof.topics_p[r, te], oof.frames_p[r, te], oof.stance_p[r, te] = pr.topics, pr.frames, pr.stance
            oof.topics_y[r, te] = pr.topics >= model.threshold_vector("topics")
            oof.frames_y[r, te] = pr.frames >= model.threshold_vector("frames")
            oof.stance_y[r, te] = pr.stance.argmax(1)
            oof.evidence[r, te] = np.array([pf.argmax(0) if len(pf) else np.zeros(F, int) for pf in pr.paragraph_frames])
            oof.fold[r, te] = k
            oof.fold_scores.append({
                "topics": M.multilabel_f1(Yt[te], oof.topics_y[r, te])["micro_f1"],
                "frames": M.multilabel_f1(Yf[te], oof.frames_y[r, te], cols=Yf.sum(0) > 0)["macro_f1"],
                "stance_west": M.stance_f1(ys[te], oof.stance_y[r, te], codebook.stances)["macro_f1"],
            })
    return oof


def _task_stat(task: str, Ytrue: Any, oof: OOF, codebook: Codebook, idx: np.ndarray | None = None) -> Callable[[np.ndarray], float]:
    """``w -> headline score`` averaged over repeats, on the posts in ``idx``."""
    sel = slice(None) if idx is None else idx
    cols = Ytrue.sum(0) > 0 if task == "frames" else None

    def stat(w: np.ndarray) -> float:
        ww = w[sel]
        vals = []
        for r in range(oof.topics_y.shape[0]):
            if task == "topics":
                vals.append(M.multilabel_f1(Ytrue[sel], oof.topics_y[r][sel], ww)["micro_f1"])
            elif task == "frames":
                vals.append(M.multilabel_f1(Ytrue[sel], oof.frames_y[r][sel], ww, cols=cols)["macro_f1"])
            else:
                vals.append(M.stance_f1(Ytrue[sel], oof.stance_y[r][sel], codebook.stances, ww)["macro_f1"])
        return float(np.mean(vals))

    return stat


def model_metrics(gold: pd.DataFrame, oof: OOF, codebook: Codebook, weights: np.ndarray) -> dict[str, Any]:
    """Every number for one model: headline with intervals, per label, per language, evidence, errors."""
    Yt, Yf, ys = gold_targets(gold, codebook)
    truth = {"topics": Yt, "frames": Yf, "stance_west": ys}
    out: dict[str, Any] = {"summary": {}, "per_label": {}, "per_language": {}}
    R = oof.topics_y.shape[0]
    for task in ("topics", "frames", "stance_west"):
        stat = _task_stat(task, truth[task], oof, codebook)
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
            out["per_language"][lang][task] = _task_stat(task, truth[task], oof, codebook, idx)(np.ones(len(gold)))
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


def load_translations(path: Path) -> dict[str, list[str]]:
    """``post_id -> Russian paragraphs``; an absent file gives ``{}`` (the check is then skipped)."""
    if not Path(path).exists():
        return {}
    out = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rec = json.loads(line)
                out[str(rec["post_id"])] = [str(p) for p in rec["paragraphs"]]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(f"{path}:{n}: not a translation record ({exc}); expected {{\"post_id\": ..., \"paragraphs\": [...]}}") from None
    return out


def english_only(gold: pd.DataFrame, factory: Callable[[], Model], codebook: Codebook, translations: dict[str, list[str]],
                 seed: int, repeats: int = 1) -> tuple[dict[str, Any], tuple[OOF, OOF, pd.DataFrame] | None]:
    """The cross-lingual checks: models trained on English posts only, in 2 folds over their groups,
    repeated over ``repeats`` splits (split seeds ``seed + r``, as the main cross-validation): with
    ~27 training posts per model, one split's figure moves by several posts with the model's seed.

    Each fold's model (trained on the other fold's English posts, nothing else) scores

    * the real Russian posts and all non-English posts: ``cross_lingual`` holds the mean of the two
      models' scores (point estimates; there are only a few such posts);
    * the held-out English posts that have a Russian translation, in English and in Russian. Same
      posts, same labels, same models: the difference is the cost of crossing the language. These
      out-of-fold sets (and the posts) are returned for ``transfer_metrics``, or ``None`` without
      translations.
    """
    en = gold[gold["lang"] == "en"].reset_index(drop=True)
    Yt, Yf, ys = gold_targets(en, codebook)
    groups = post_groups(en)
    has = en["post_id"].astype(str).isin(translations).to_numpy()
    sub = np.flatnonzero(has)
    n, T, F, S = len(sub), len(codebook.topics), len(codebook.frames), len(codebook.stances)

    R = repeats

    def empty() -> OOF:
        return OOF(np.zeros((R, n, T)), np.zeros((R, n, F)), np.zeros((R, n, S)), np.zeros((R, n, T), bool),
                   np.zeros((R, n, F), bool), np.zeros((R, n), int), np.zeros((R, n, F), int), np.zeros((R, n), int))

    oof = {"en": empty(), "ru": empty()}
    pos = {int(i): k for k, i in enumerate(sub)}  # row of en -> row of the translated subset
    frame_cols = gold_targets(gold, codebook)[1].sum(0) > 0
    real = {name: part for name, part in (("ru", gold[gold["lang"] == "ru"]), ("non_en", gold[gold["lang"] != "en"]))}
    scores: dict[str, list[dict[str, float]]] = {name: [] for name in real}
    splits = [(r, k, tr, te) for r in range(R)
              for k, (tr, te) in enumerate(group_folds(stacked_targets(Yt, Yf, ys, S), groups, n_splits=2, seed=seed + r))]
    for r, k, tr, te in splits:
        model = factory().fit(en.iloc[tr], en.iloc[tr].reset_index(drop=True), groups=[groups[i] for i in tr])
        for name, part in real.items():
            if not part.empty:
                pt, pf, ps = gold_targets(part, codebook)
                pr = model.predict_proba(part)
                scores[name].append({
                    "topics": M.multilabel_f1(pt, pr.topics >= model.threshold_vector("topics"))["micro_f1"],
                    "frames": M.multilabel_f1(pf, pr.frames >= model.threshold_vector("frames"), cols=frame_cols)["macro_f1"],
                    "stance_west": M.stance_f1(ps, pr.stance.argmax(1), codebook.stances)["macro_f1"]})
        te_t = [i for i in te if has[i]]
        if not te_t:
            continue
        rows = [pos[int(i)] for i in te_t]
        ru = [translations[str(pid)] for pid in en["post_id"].iloc[te_t]]
        for lang, posts in (("en", en.iloc[te_t]), ("ru", ru)):
            pr = model.predict_proba(posts)
            o = oof[lang]
            o.topics_p[r, rows], o.frames_p[r, rows], o.stance_p[r, rows] = pr.topics, pr.frames, pr.stance
            o.topics_y[r, rows] = pr.topics >= model.threshold_vector("topics")
            o.frames_y[r, rows] = pr.frames >= model.threshold_vector("frames")
            o.stance_y[r, rows] = pr.stance.argmax(1)
            o.fold[r, rows] = k
    cross = {name: ({"n": int(len(real[name])), **{t: float(np.mean([s[t] for s in scores[name]])) for t in HEADLINE}}
                    if scores[name] else {"n": 0}) for name in real}
    transfer = (oof["en"], oof["ru"], en.iloc[sub].reset_index(drop=True)) if n >= 8 else None
    return cross, transfer


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


def evaluate(gold_path: str | Path = DEFAULT_GOLD, *, models: Sequence[str] = ("baseline", "transformer", "cue_rule"),
             folds: int = 5, repeats: int = 2, seed: int = 0, configs: dict[str, dict] | None = None,
             out_dir: str | Path | None = "eval", progress: bool = False, n_boot: int = N_BOOT,
             translations_path: str | Path | None = DEFAULT_TRANSLATIONS) -> dict[str, Any]:
    """Run the protocol for every model kind and write the report; returns the metrics dict.

    Parameters
    ----------
    gold_path : path, default="labels/gold.jsonl"
    models : sequence of str
        Model kinds to compare; ``cue_rule`` is the reference system.
    folds, repeats, seed : int
        K-fold, number of repetitions with seeds ``seed .. seed+repeats-1``.
    configs : dict, optional
        Hyperparameters per kind (as in ``--config``).
    out_dir : path or None
        Where ``<run-id>/`` and ``latest/`` go; ``None`` writes nothing.
    translations_path : path or None
        Russian translations of English gold posts for the English-to-Russian transfer check
        (``english_only``); that part is skipped when ``None`` or absent.
    """
    from .labels import load_gold

    check_int("", "folds", folds, 2)
    check_int("", "repeats", repeats, 1)
    codebook = Codebook.load()
    gold = load_gold(gold_path).reset_index(drop=True)
    groups = post_groups(gold)
    weights = M.group_weights(groups, n_boot, seed)
    say = _printer(progress)
    oofs: dict[str, OOF] = {}
    transfer: dict[str, tuple[OOF, OOF, pd.DataFrame]] = {}
    translations = load_translations(translations_path) if translations_path else {}
    result: dict[str, Any] = {
        "protocol": {"folds": folds, "repeats": repeats, "split_seeds": [seed + r for r in range(repeats)], "n_boot": n_boot,
                     "splitter": "MultilabelStratifiedKFold over duplicate/translation groups", "zero_division": 0},
        "data": {"gold": str(gold_path), "sha256": data_sha256(Path(gold_path)), "n_posts": len(gold), "n_groups": len(set(groups)),
                 "languages": gold["lang"].value_counts().to_dict()},
        "codebook": {"version": codebook.version, "topics": list(codebook.topics), "frames": list(codebook.frames),
                     "stances": list(codebook.stances)},
        "models": {}, "paired": {}, "cross_lingual": {}, "errors": [], "timings": {},
    }
    Yt0, Yf0, _ = gold_targets(gold, codebook)
    result["data"]["absent_labels"] = ([t for j, t in enumerate(codebook.topics) if Yt0[:, j].sum() == 0]
                                       + [f for j, f in enumerate(codebook.frames) if Yf0[:, j].sum() == 0])
    result["protocol"]["macro_average"] = "over labels present in gold; absent labels listed in data.absent_labels"
    for kind in models:
        factory = make_factory(kind, configs, codebook, seed)
        t0 = time.perf_counter()
        oofs[kind] = cross_validate(gold, factory, codebook, folds=folds, repeats=repeats, seed=seed,
                                    progress=(lambda s, k=kind: say(f"{k}: {s}")))
        result["models"][kind] = model_metrics(gold, oofs[kind], codebook, weights)
        result["timings"][kind] = {"cv_seconds": round(time.perf_counter() - t0, 1),
                                   "fit_seconds_mean": round(float(np.mean(oofs[kind].fit_seconds)), 2)}
        say(f"{kind}: cross-lingual checks (English-only training)")
        result["cross_lingual"][kind], tt = english_only(gold, factory, codebook, translations, seed, repeats)
        if tt is not None:
            transfer[kind] = tt
        result["errors"] += worst_errors(gold, oofs[kind], codebook, kind)
    Yt, Yf, ys = gold_targets(gold, codebook)
    truth = {"topics": Yt, "frames": Yf, "stance_west": ys}
    kinds = list(oofs)
    for a_i, a in enumerate(kinds):
        for b in kinds[a_i + 1:]:
            result["paired"][f"{a} - {b}"] = {
                task: M.paired_difference(_task_stat(task, truth[task], oofs[a], codebook),
                                          _task_stat(task, truth[task], oofs[b], codebook), weights)
                for task in ("topics", "frames", "stance_west")}
    if transfer:
        result["translated_transfer"] = transfer_metrics(transfer, codebook, n_boot, seed)
    result["ranking"] = rank_models(result)
    if out_dir is not None:
        from .report import write_report

        run_dir = write_report(result, predictions_frame(gold, oofs, codebook), Path(out_dir))
        result["run_dir"] = str(run_dir)
    return result


def transfer_metrics(transfer: dict[str, tuple[OOF, OOF, pd.DataFrame]], codebook: Codebook, n_boot: int,
                     seed: int) -> dict[str, Any]:
    """Scores with 95% intervals on the English originals and the Russian translations, the
    English - Russian gap per model, and paired differences between models on the Russian side."""
    any_en = next(iter(transfer.values()))[2]
    repeats = next(iter(transfer.values()))[0].topics_y.shape[0]
    Yt, Yf, ys = gold_targets(any_en, codebook)
    truth = {"topics": Yt, "frames": Yf, "stance_west": ys}
    weights = M.group_weights(post_groups(any_en), n_boot, seed)
    out: dict[str, Any] = {"n_posts": len(any_en), "models": {}, "paired_ru": {},
                           "protocol": f"{repeats} repeat(s) of 2 folds over the English posts' groups (split seeds "
                                       f"{', '.join(str(seed + r) for r in range(repeats))}; scores are means over the "
                                       f"repeats); trained on English only; each held-out post scored in English and "
                                       f"in its Russian translation"}
    for kind, (en, ru, _) in transfer.items():
        m: dict[str, Any] = {}
        for task in HEADLINE:
            se, sr = _task_stat(task, truth[task], en, codebook), _task_stat(task, truth[task], ru, codebook)
            m[task] = {"en": {"mean": se(np.ones(len(any_en))), **M.bootstrap(se, weights)},
                       "ru": {"mean": sr(np.ones(len(any_en))), **M.bootstrap(sr, weights)},
                       "ru_minus_en": M.paired_difference(sr, se, weights)}
        out["models"][kind] = m
    kinds = list(transfer)
    for a_i, a in enumerate(kinds):
        for b in kinds[a_i + 1:]:
            out["paired_ru"][f"{a} - {b}"] = {
                task: M.paired_difference(_task_stat(task, truth[task], transfer[a][1], codebook),
                                          _task_stat(task, truth[task], transfer[b][1], codebook), weights)
                for task in HEADLINE}
    return out


def rank_models(result: dict[str, Any]) -> list[str]:
    """Learned models ranked by the mean of their three headline scores (the cue rule is a reference)."""
    learned = {k: v for k, v in result["models"].items() if k != "cue_rule"}
    score = {k: float(np.mean([v["summary"][t]["mean"] for t in HEADLINE])) for k, v in learned.items()}
    return sorted(score, key=lambda k: -score[k])


def _printer(progress: bool) -> Callable[[str], None]:
    if not progress:
        return lambda s: None
    start = time.perf_counter()
    return lambda s: print(f"[{time.perf_counter() - start:6.0f}s] {s}", file=sys.stderr, flush=True)


def summary_table(result: dict[str, Any]) -> str:
    """Plain-text table: task x model, score with 95% interval and fold spread."""
    lines = [f"{'task':<12} {'metric':<9} " + " ".join(f"{k:>30}" for k in result["models"])]
    for task in HEADLINE:
        cells = []
        for m in result["models"].values():
            s = m["summary"][task]
            cells.append(f"{s['mean']:.3f} [{s['ci'][0]:.2f},{s['ci'][1]:.2f}] sd {s['fold_sd']:.2f}")
        lines.append(f"{task:<12} {HEADLINE[task]:<9} " + " ".join(f"{c:>30}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m classify.evaluate", __doc__)
    parser.add_argument("--gold", type=Path, default=DEFAULT_GOLD, help="gold file (JSONL)")
    parser.add_argument("--models", default="baseline,transformer,cue_rule", help="comma-separated model kinds")
    parser.add_argument("--folds", type=int, default=5, help="folds per repeat")
    parser.add_argument("--repeats", type=int, default=2, help="repeats of K-fold with different split seeds")
    parser.add_argument("--seed", type=int, default=0, help="first split seed and model seed")
    parser.add_argument("--config", type=Path, default=None, help="JSON file: {kind: {hyperparameter: value}}")
    parser.add_argument("--out", type=Path, default=Path("eval"), help="report directory (run-id/ and latest/)")
    parser.add_argument("--translations", type=Path, default=DEFAULT_TRANSLATIONS,
                        help="Russian translations of English gold posts for the English-to-Russian transfer check (skipped if absent)")
    args = parser.parse_args(argv)

    def job() -> int:
        configs = load_config(args.config)
        res = evaluate(args.gold, models=[m.strip() for m in args.models.split(",") if m.strip()], folds=args.folds,
                       repeats=args.repeats, seed=args.seed, configs=configs, out_dir=args.out, progress=True,
                       translations_path=args.translations)
        print(summary_table(res))
        print(f"report: {res.get('run_dir')}")
        return 0

    return run_main(job, debug=args.debug)


def load_config(path: Path | None) -> dict[str, dict]:
    """Read ``--config`` (JSON ``{kind: {param: value}}``)."""
    if path is None:
        return {}
    try:
        cfg = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:line {exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(cfg, dict) or not all(isinstance(v, dict) for v in cfg.values()):
        raise ConfigError(f"{path}: expected a JSON object {{kind: {{parameter: value}}}}")
    return cfg


if __name__ == "__main__":
    sys.exit(main())
