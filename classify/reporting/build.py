"""Compute every number of the corpus report once: corrected prevalence per cell, checks, evidence.

``build_report`` reads the tag outputs, the model's held-out gold predictions and the gold file,
and returns a ``ReportData``; ``classify.reporting.render`` only lays it out. The tag output does
not say which model made it, so the model directory is given (default: the one ``classify.tag``
uses by default), and the report checks that the tags agree with that model's thresholds.
The random draws (bootstrap, text sample) are seeded: the same inputs give the same report.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..errors import ClassifyError, ModelError
from ..io.options import ReadOptions
from ..learners.card import read_card
from .corpus import Corpus, load_corpus
from .drift import Check, cue_check, far_check, language_check, no_label_check, range_check
from .evidence import Quote, cooccurrence, top_quotes
from .goldcheck import GoldCheck, crossfit, shipped_check
from .heldout import HELDOUT_FILE, HeldOut, load_heldout, target_names
from .quantify import N_BOOT, Correction, Estimates, cell_stats, correct, fit_correction
from .texts import TEXT_SAMPLE, TextSample, sample_texts

BREAKDOWNS = ("overall", "channel", "period", "channel_period")



@dataclass
class Cells:
    """One breakdown of the corpus: a key row per cell (``channel``, ``period``) and its estimates."""

    keys: pd.DataFrame
    est: Estimates


@dataclass
class ReportData:
    """Everything the report shows, computed (see the module docstring)."""

    corpus: Corpus
    targets: tuple[str, ...]
    model_dir: Path | None
    card: dict
    model_note: str
    consistency: float | None              # share of tagged posts whose labels the model's thresholds do not give
    heldout: HeldOut | None
    correction: Correction | None
    cells: dict[str, Cells]
    goldchecks: dict[str, GoldCheck]
    checks: list[Check]
    lang_table: pd.DataFrame
    quotes: dict[str, list[Quote]]
    cooc: tuple[np.ndarray, np.ndarray]
    sample: TextSample
    inputs: list[str]
    skipped: Counter | None
    gold_path: Path | None
    train_langs: Counter
    seconds: dict[str, float] = field(default_factory=dict)


def build_report(tags: list[Path], *, model_dir: Path | None = None, model_given: bool = False, inputs: list[Path] | None = None,
                 gold_path: Path | None = Path("labels/gold.jsonl"), method: str = "acc", protocol: str | None = None,
                 n_boot: int = N_BOOT, text_sample: int = TEXT_SAMPLE, seed: int = 0, opts: ReadOptions | None = None,
                 skipped: Counter | None = None) -> ReportData:
    """Read the tags and compute the report (see the module docstring).

    ``inputs``: the files that were tagged, for the checks that need post text (default: the tag
    rows' ``source`` names looked up in the current directory). ``model_given``: the user named the
    model, so a missing directory is an error rather than a plain "uncorrected" note.
    """
    t0 = time.perf_counter()
    cb = Codebook.load()
    seconds: dict[str, float] = {}
    corpus = load_corpus(list(tags), cb)
    seconds["read tags"] = time.perf_counter() - t0
    targets = target_names(cb)
    gold = _load_gold(gold_path, cb)
    groups = dict(zip(gold["post_id"], gold["group"])) if gold is not None else None
    card, ho, note = {}, None, ""
    if model_dir is not None and (Path(model_dir) / "card.json").exists():
        card = read_card(Path(model_dir))
        ho = load_heldout(model_dir, cb, protocol, groups)
        if ho is None:
            note = (f"{Path(model_dir) / HELDOUT_FILE} does not exist (a model saved before training wrote held-out "
                    "predictions): the shares below are the model's raw counts, not corrected for its errors. "
                    "Retrain with `python -m classify.train` to get corrected shares.")
    elif model_given:
        raise ModelError(f"{model_dir}: no such model directory (no card.json); give the --model the tags were made with")
    else:
        note = (f"No model directory at {model_dir} (the tag output does not record its model): the shares below are the "
                "model's raw counts, not corrected for its errors. Pass --model DIR, the model the tags were made with.")
    consistency = _consistency(corpus, card) if card else None
    t = time.perf_counter()
    cor = fit_correction(ho, method, n_boot, seed) if ho is not None else None
    seconds["fit correction"] = time.perf_counter() - t
    t = time.perf_counter()
    cells = _all_cells(corpus, cor, method, seed)
    seconds["correct cells"] = time.perf_counter() - t
    t = time.perf_counter()
    goldchecks = {}
    if ho is not None:
        for by in ("group", "source"):
            gc = crossfit(ho, method, by=by, seed=seed)
            if gc is not None:
                goldchecks[by] = gc
        if ho.protocols_present.get("test") and ho.protocol != "test":
            gc = shipped_check(ho, load_heldout(model_dir, cb, "test", groups), method)
            if gc is not None:
                goldchecks["shipped"] = gc
    seconds["gold checks"] = time.perf_counter() - t
    t = time.perf_counter()
    if inputs is None:
        inputs = [Path(s) for s in sorted({s for f in corpus.files for s in f.sources})]
    sample = sample_texts(corpus, list(inputs), text_sample, seed, opts)
    seconds["read texts"] = time.perf_counter() - t
    t = time.perf_counter()
    train_langs = Counter(gold.loc[gold["split"] == "train", "lang"]) if gold is not None else Counter()
    lang, lang_table = language_check(corpus, ho, train_langs)
    checks = [lang]
    ref_texts, ref_groups, ref_name, ref_pred = _reference(gold, ho)
    checks.append(far_check(sample, ref_texts, ref_groups, ref_name))
    checks.append(cue_check(corpus, sample, cb, ref_pred))
    checks.append(no_label_check(corpus, ho))
    if cor is not None:
        est = cells["overall"].est
        stat = _overall_stat(corpus, method)
        checks.append(range_check(targets, est.outside[0], stat, cor.fpr, cor.tpr, cor.ok))
    seconds["drift checks"] = time.perf_counter() - t
    t = time.perf_counter()
    quotes = top_quotes(corpus, cb)
    cooc = cooccurrence(corpus)
    seconds["evidence"] = time.perf_counter() - t
    return ReportData(corpus, targets, Path(model_dir) if model_dir else None, card, note, consistency, ho, cor, cells,
                      goldchecks, checks, lang_table, quotes, cooc, sample, [str(p) for p in inputs], skipped,
                      gold_path if gold is not None else None, train_langs, seconds)


def _load_gold(path: Path | None, cb: Codebook) -> pd.DataFrame | None:
    from ..gold.files import load_gold

    if path is None or not Path(path).exists():
        return None
    try:
        return load_gold(path, cb)
    except ClassifyError:
        return None


def _reference(gold: pd.DataFrame | None, ho: HeldOut | None):
    """Texts and groups of the gold posts the error rates came from (else the training gold), and
    the held-out decisions with their texts for the cue-rule reference."""
    if gold is None:
        return [], [], "gold", None
    by_id = gold.set_index("post_id")
    if ho is not None:
        ids = [pid for pid in dict.fromkeys(ho.post_ids.tolist()) if pid in by_id.index]
        name = f"held-out gold ({ho.protocol})"
        rows = [i for i, pid in enumerate(ho.post_ids) if pid in by_id.index]
        ref_pred = (ho.pred[rows], [list(by_id.at[ho.post_ids[i], "paragraphs"]) for i in rows])
    else:
        ids = gold.loc[gold["split"] == "train", "post_id"].tolist()
        name, ref_pred = "training gold", None
    texts = [str(by_id.at[pid, "text"]) for pid in ids]
    groups = [str(by_id.at[pid, "group"]) for pid in ids]
    return texts, groups, name, ref_pred


def targets_matrix(corpus: Corpus) -> tuple[np.ndarray, np.ndarray]:
    """Decisions and probabilities of every target: topics, frames, then each stance class (one-hot / its probability)."""
    S = len(corpus.stances)
    onehot = np.eye(S, dtype=bool)[corpus.stance] if corpus.n else np.zeros((0, S), bool)
    return np.hstack([corpus.Y, onehot]), np.hstack([corpus.P, corpus.SP])


def _overall_stat(corpus: Corpus, method: str) -> np.ndarray:
    Y, P = targets_matrix(corpus)
    return (P if method == "pacc" else Y).mean(0) if corpus.n else np.zeros(Y.shape[1])


def _all_cells(corpus: Corpus, cor: Correction | None, method: str, seed: int) -> dict[str, Cells]:
    """Estimates per breakdown; cells ordered by channel size, then time."""
    rng = np.random.default_rng(seed)
    Y, P = targets_matrix(corpus)
    rows = corpus.rows
    ch_order = rows["channel"].value_counts().index.tolist()
    ch_code = pd.Categorical(rows["channel"], categories=ch_order).codes.astype(int)
    members: dict[str, tuple[np.ndarray, pd.DataFrame]] = {
        "overall": (np.zeros(corpus.n, int), pd.DataFrame({"channel": ["all"], "period": [pd.NaT]})),
        "channel": (ch_code, pd.DataFrame({"channel": ch_order, "period": [pd.NaT] * len(ch_order)})),
    }
    if corpus.period_kind:
        periods = sorted(rows["period"].dropna().unique())
        p_code = pd.Categorical(rows["period"], categories=periods).codes.astype(int)
        members["period"] = (p_code, pd.DataFrame({"channel": ["all"] * len(periods), "period": periods}))
        both = np.where(p_code >= 0, ch_code * len(periods) + p_code, -1)
        used, inv = np.unique(both[both >= 0], return_inverse=True)
        code = np.full(corpus.n, -1)
        code[both >= 0] = inv
        members["channel_period"] = (code, pd.DataFrame({"channel": [ch_order[u // len(periods)] for u in used],
                                                         "period": [periods[u % len(periods)] for u in used]}))
    out = {}
    for name, (member, keys) in members.items():
        n, raw, stat, var = cell_stats(method, member, Y, P)
        n = np.pad(n, (0, len(keys) - len(n)))
        if cor is not None:
            est = correct(cor, n, _pad(raw, len(keys)), _pad(stat, len(keys)), _pad(var, len(keys)), rng)
        else:
            nan = np.full((len(keys), Y.shape[1]), np.nan)
            est = Estimates(n, _pad(raw, len(keys)), nan, nan.copy(), nan.copy(), np.zeros(nan.shape, bool))
        out[name] = Cells(keys, est)
    return out


def _pad(a: np.ndarray, C: int) -> np.ndarray:
    return a if len(a) == C else np.vstack([a, np.full((C - len(a), a.shape[1]), np.nan)])


def _consistency(corpus: Corpus, card: dict) -> float | None:
    """Share of tagged posts whose topics/frames differ from the card's thresholds applied to their scores."""
    th = card.get("thresholds") or {}
    nt = corpus.n_topics
    vec = []
    for task, ids in (("topics", corpus.labels[:nt]), ("frames", corpus.labels[nt:])):
        t = th.get(task, 0.5)
        vec += [float(t.get(i, 0.5)) if isinstance(t, dict) else float(t) for i in ids]
    if not corpus.n:
        return None
    tv = np.array(vec)
    near = np.abs(corpus.P - tv) < 1e-5           # scores are stored rounded to 6 decimals
    differ = ((tv <= corpus.P) != corpus.Y) & ~near
    return float(differ.any(1).mean())


def model_summary(card: dict) -> str:
    """One line on the model: kind, when trained, on how many gold posts."""
    if not card:
        return "unknown model"
    return (f"{card.get('kind', '?')} model trained {str(card.get('date', '?'))[:10]} on {card.get('n_posts', '?')} gold posts "
            f"(codebook {card.get('codebook_version', '?')})")


def check_model_dir(model_dir: Path | None) -> None:
    if model_dir is not None and Path(model_dir).exists() and not Path(model_dir).is_dir():
        raise ModelError(f"{model_dir}: is a file; --model takes a model directory")
