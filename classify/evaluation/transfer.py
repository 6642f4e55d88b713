"""The cross-lingual checks: models trained on English posts only, scored on Russian posts and on
Russian translations of held-out English posts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..errors import InputError
from ..learners.base import Model, gold_targets
from . import metrics as M
from .crossval import HEADLINE, OOF, post_groups, task_stat
from .splits import group_folds, stacked_targets

DEFAULT_TRANSLATIONS = Path("labels/translations_ru.jsonl")
"""Russian translations of the English gold posts, paragraph for paragraph (see labels/README.md)."""



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
            se, sr = task_stat(task, truth[task], en, codebook), task_stat(task, truth[task], ru, codebook)
            m[task] = {"en": {"mean": se(np.ones(len(any_en))), **M.bootstrap(se, weights)},
                       "ru": {"mean": sr(np.ones(len(any_en))), **M.bootstrap(sr, weights)},
                       "ru_minus_en": M.paired_difference(sr, se, weights)}
        out["models"][kind] = m
    kinds = list(transfer)
    for a_i, a in enumerate(kinds):
        for b in kinds[a_i + 1:]:
            out["paired_ru"][f"{a} - {b}"] = {
                task: M.paired_difference(task_stat(task, truth[task], transfer[a][1], codebook),
                                          task_stat(task, truth[task], transfer[b][1], codebook), weights)
                for task in HEADLINE}
    return out

