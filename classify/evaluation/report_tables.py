"""The evaluation report's tables: one ``Table`` per view of the metrics dict (summary, paired
differences, per language, per label, errors, evidence, timings); no metric is computed here."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from ..render.document import DASH, Cell, Table, f2, f3, fci, is_missing, md_escape, md_table, txt, usertext

TASKS = ("topics", "frames", "stance_west")


TASK_NAMES = {"topics": "topics", "frames": "framing cues", "stance_west": "stance toward the West"}


METRIC_NAMES = {"micro_f1": "micro-F1", "macro_f1": "macro-F1", "samples_f1": "samples-F1",
                "f_avg": "SemEval F_avg (mean F1 of favor and against)", "accuracy": "accuracy"}


REFERENCE = "cue_rule"



def model_name(kind: str) -> str:
    """Display name of a model kind (the cue rule is the reference system)."""
    return "cue rule (reference)" if kind == REFERENCE else kind


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric)


def model_order(result: dict[str, Any]) -> list[str]:
    """Learned models best first (``result['ranking']``), then any others, the reference last."""
    kinds = list(result.get("models", {}))
    ranked = [k for k in result.get("ranking", []) if k in kinds and k != REFERENCE]
    rest = [k for k in kinds if k not in ranked and k != REFERENCE]
    return ranked + rest + ([REFERENCE] if REFERENCE in kinds else [])


def task_labels(result: dict[str, Any], task: str, kinds: Sequence[str]) -> list[str]:
    """Label ids of ``task`` in codebook order, plus any label only a model reports."""
    key = {"stance_west": "stances"}.get(task, task)
    ids = list(result.get("codebook", {}).get(key, []))
    for k in kinds:
        ids += [lid for lid in result["models"][k].get("per_label", {}).get(task, {}) if lid not in ids]
    return ids


def headline(result: dict[str, Any], kinds: Sequence[str]) -> dict[str, str]:
    """Display metric of each task, as the models' summaries name it."""
    out = {}
    for task in TASKS:
        metric = next((result["models"][k]["summary"][task]["metric"] for k in kinds
                       if task in result["models"][k].get("summary", {})), "")
        out[task] = metric_name(metric)
    return out


def summary_table(result: dict[str, Any]) -> Table:
    """Task x model: headline score [95% CI] and fold-to-fold sd."""
    kinds = model_order(result)
    head = headline(result, kinds)
    rows = []
    for task in TASKS:
        row = [txt(f"{TASK_NAMES[task]} ({head[task]})")]
        for k in kinds:
            s = result["models"][k].get("summary", {}).get(task)
            if not s:
                row.append(txt(DASH))
                continue
            ci, sd = fci(s.get("ci")), f2(s.get("fold_sd"))
            row.append(Cell(f"{f3(s['mean'])} {ci} · sd {sd}",
                            f'<strong>{f3(s["mean"])}</strong> <span class="ci">{ci}</span><br>'
                            f'<span class="sd">fold sd {sd} (range {f2(s.get("fold_min"))}\u2013{f2(s.get("fold_max"))})</span>'))
        rows.append(row)
    return Table(["task (metric)"] + [model_name(k) for k in kinds], rows, "l" + "r" * len(kinds), anchor="summary",
                 widths={0: "30%"})


SUMMARY_NOTE = ("Score [95% CI] · sd: score = mean over repeats of the score of the pooled out-of-fold predictions; "
                "95% CI from a bootstrap over duplicate/translation groups; sd = standard deviation of the per-fold "
                "scores.")


SUMMARY_NOTE_HTML = ("Score = mean over repeats of the score of the pooled out-of-fold predictions; [95% CI] from a "
                     "bootstrap over duplicate/translation groups; fold sd = standard deviation of the per-fold scores "
                     "(range = lowest and highest fold score).")


def summary_markdown(result: dict[str, Any], *, note: bool = True) -> str:
    """The summary table (task x model, score [95% CI] · fold sd) in Markdown, e.g. for the README.

    Parameters
    ----------
    result : dict
        The metrics dict of :func:`classify.evaluate.evaluate` (or a loaded ``metrics.json``).
    note : bool, default=True
        Add the one-line explanation of the cells under the table.
    """
    out = md_table(summary_table(result))
    return out + ("\n\n" + SUMMARY_NOTE if note else "")


def paired_table(result: dict[str, Any], key: str = "paired") -> Table | None:
    """Paired differences a − b per task: ``result[key]`` maps ``"a - b"`` to per-task differences."""
    paired = result.get(key) or {}
    if not paired:
        return None
    rows, breaks = _paired_rows(paired, headline(result, model_order(result)))
    return Table(["models (a − b)", "task", "difference", "95% CI", "P(not better)"], rows, "llrrr",
                 anchor="paired", breaks=breaks)


def loso_paired_table(result: dict[str, Any]) -> Table | None:
    """The same per left-out source (``result["heldout_paired_loso"]``: source -> pairs)."""
    by_source = result.get("heldout_paired_loso") or {}
    head = headline(result, model_order(result))
    rows, breaks = [], set()
    for source, pairs in sorted(by_source.items()):
        r, b = _paired_rows(pairs, head, f", left out: {source}")
        breaks |= {len(rows) + i for i in b}
        rows += r
    if not rows:
        return None
    return Table(["models (a − b)", "task", "difference", "95% CI", "P(not better)"], rows, "llrrr",
                 anchor="paired-loso", breaks=breaks)


def _paired_rows(paired: dict[str, Any], head: dict[str, str], suffix: str = "") -> tuple[list, set]:
    rows, breaks = [], set()
    for pair, tasks in paired.items():
        breaks.add(len(rows))
        a, _, b = pair.partition(" - ")
        label = (f"{model_name(a)} − {model_name(b)}" if b else pair) + suffix
        for i, task in enumerate(t for t in TASKS if t in tasks):
            d = tasks[task]
            rows.append([txt(f"**{label}**" if i == 0 else ""), txt(f"{TASK_NAMES[task]} ({head[task]})"),
                         txt(f"{d['diff']:+.3f}" if not is_missing(d.get("diff")) else DASH), txt(fci(d.get("ci")) or DASH),
                         txt(f2(d.get("p_not_better")))])
    return rows, breaks


def heldout_table(result: dict[str, Any]) -> Table | None:
    """Headline scores per model on each held-out source (leave-one-source-out) and on the random test split."""
    held = result.get("heldout") or {}
    kinds = [k for k in model_order(result) if k in held]
    if not kinds:
        return None
    head = headline(result, kinds)
    rows, breaks = [], set()
    for proto, name in (("loso", "left-out source (train split)"), ("test", "random test split")):
        slices = sorted({s for k in kinds for s in held[k].get(proto, {})}, key=lambda s: (s == "all", s))
        for sl in slices:
            breaks.add(len(rows))
            for i, task in enumerate(TASKS):
                cells = []
                for k in kinds:
                    m = held[k].get(proto, {}).get(sl, {}).get(task)
                    cells.append(txt(f"{m['mean']:.3f} {fci(m.get('ci'))}" if m else DASH))
                rows.append([txt(f"**{name}: {sl}**" if i == 0 else ""), txt(f"{TASK_NAMES[task]} ({head[task]})"), *cells])
    return Table(["posts scored", "task", *[model_name(k) for k in kinds]], rows, "ll" + "r" * len(kinds),
                 anchor="heldout", breaks=breaks)


TRANSLATION_NOTE = "made by a language-model helper session, paragraph for paragraph, see labels/README.md"


def transfer_table(result: dict[str, Any]) -> Table | None:
    """English-only training scored on the English originals and their Russian translations."""
    tt = result.get("translated_transfer") or {}
    if not tt.get("models"):
        return None
    head = headline(result, model_order(result))
    kinds = [k for k in model_order(result) if k in tt["models"]] + [k for k in tt["models"] if k not in result.get("models", {})]
    rows, breaks = [], set()
    for k in kinds:
        breaks.add(len(rows))
        for i, task in enumerate(TASKS):
            m = tt["models"][k][task]
            d = m["ru_minus_en"]
            rows.append([txt(f"**{model_name(k)}**" if i == 0 else ""), txt(f"{TASK_NAMES[task]} ({head[task]})"),
                         txt(f"{f3(m['en']['mean'])} {fci(m['en'].get('ci'))}"), txt(f"{f3(m['ru']['mean'])} {fci(m['ru'].get('ci'))}"),
                         txt(f"{d['diff']:+.3f} {fci(d.get('ci'))}")])
    for pair, tasks in (tt.get("paired_ru") or {}).items():
        breaks.add(len(rows))
        a, _, b = pair.partition(" - ")
        for i, task in enumerate(TASKS):
            d = tasks[task]
            rows.append([txt(f"**{model_name(a)} − {model_name(b)}, Russian**" if i == 0 else ""), txt(f"{TASK_NAMES[task]} ({head[task]})"),
                         txt(""), txt(f"{d['diff']:+.3f} {fci(d.get('ci'))}"), txt(f"P(not better) {f2(d.get('p_not_better'))}")])
    return Table(["model", "task", "English originals [95% CI]", "Russian translations [95% CI]", "Russian − English"], rows,
                 "llrrr", anchor="translated-transfer", breaks=breaks)


def cross_lingual_table(result: dict[str, Any]) -> Table | None:
    cl = result.get("cross_lingual") or {}
    if not cl:
        return None
    kinds = [k for k in model_order(result) if k in cl] + [k for k in cl if k not in result.get("models", {})]
    head = headline(result, model_order(result))
    slices = {"ru": "Russian (ru)", "non_en": "all non-English"}
    rows, breaks = [], set()
    for k in kinds:
        breaks.add(len(rows))
        for i, (sl, part) in enumerate(cl[k].items()):
            rows.append([txt(model_name(k) if i == 0 else ""), txt(slices.get(sl, sl)), txt(part.get("n", 0))]
                        + [txt(f3(part.get(t))) for t in TASKS])
    return Table(["model", "scored on", "n"] + [f"{TASK_NAMES[t]} ({head[t]})" for t in TASKS], rows, "llrrrr",
                 anchor="cross-lingual", breaks=breaks)


def per_language_table(result: dict[str, Any]) -> Table | None:
    kinds = model_order(result)
    langs: dict[str, int] = {}
    for k in kinds:
        for lang, v in result["models"][k].get("per_language", {}).items():
            langs.setdefault(lang, v.get("n", 0))
    if not langs:
        return None
    head = headline(result, kinds)
    rows, breaks = [], set()
    for lang in sorted(langs, key=lambda x: (-langs[x], x)):
        breaks.add(len(rows))
        for i, k in enumerate(kinds):
            v = result["models"][k].get("per_language", {}).get(lang, {})
            rows.append([usertext(lang if i == 0 else ""), txt(langs[lang] if i == 0 else ""), txt(model_name(k))]
                        + [txt(f3(v.get(t))) for t in TASKS])
    return Table(["language", "n posts", "model"] + [f"{TASK_NAMES[t]} ({head[t]})" for t in TASKS], rows, "lrlrrr",
                 anchor="per-language", breaks=breaks)


def per_label_table(result: dict[str, Any], task: str) -> Table | None:
    """Label x (support, then P, R, F1 [CI] for each model side by side)."""
    kinds = [k for k in model_order(result) if task in result["models"][k].get("per_label", {})]
    if not kinds:
        return None
    absent = set(result.get("data", {}).get("absent_labels", []))
    rows = []
    for lid in task_labels(result, task, kinds):
        first = next((result["models"][k]["per_label"][task][lid] for k in kinds
                      if lid in result["models"][k]["per_label"][task]), {})
        name = Cell(f"`{lid}`" + (" (absent from gold)" if lid in absent else ""),
                    f"<code>{html.escape(lid)}</code>" + ('<br><span class="absent">absent from gold</span>'
                                                          if lid in absent else ""))
        row = [name, txt(first.get("support", DASH))]
        for k in kinds:
            v = result["models"][k]["per_label"][task].get(lid)
            if v is None:
                row += [txt(DASH)] * 3
                continue
            ci = fci(v.get("ci"))
            row += [txt(f2(v.get("precision"))), txt(f2(v.get("recall"))),
                    Cell(f"{f2(v.get('f1'))} {ci}".strip(),
                         f'<strong>{f2(v.get("f1"))}</strong>' + (f'<br><span class="ci sm">{ci}</span>' if ci else ""))]
        rows.append(row)
    groups = [("", 2)] + [(model_name(k), 3) for k in kinds]
    f1_head = "F1 [95% CI]" if any("ci" in v for k in kinds for v in result["models"][k]["per_label"][task].values()) else "F1"
    header = ["label", "support"] + ["P", "R", f1_head] * len(kinds)
    return Table(header, rows, "lr" + "rrr" * len(kinds), anchor=f"labels-{task}", groups=groups)


def averages_table(result: dict[str, Any], task: str) -> Table | None:
    """Secondary averages of ``task`` (micro, macro, samples F1; for stance F_avg and accuracy)."""
    kinds = [k for k in model_order(result) if "averages" in result["models"][k].get("summary", {}).get(task, {})]
    if not kinds:
        return None
    keys: list[str] = []
    for k in kinds:
        keys += [m for m in result["models"][k]["summary"][task]["averages"] if m not in keys]
    rows = [[txt(metric_name(m))] + [txt(f3(result["models"][k]["summary"][task]["averages"].get(m))) for k in kinds]
            for m in keys]
    return Table(["average"] + [model_name(k) for k in kinds], rows, "l" + "r" * len(kinds), anchor=f"averages-{task}")


def errors_tables(result: dict[str, Any]) -> list[tuple[str, Table]]:
    """Per model: the posts with the most wrong labels, opening text, gold vs predicted."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for e in result.get("errors", []):
        by_model.setdefault(e.get("model", "?"), []).append(e)
    order = [k for k in model_order(result) if k in by_model] + [k for k in by_model if k not in result.get("models", {})]
    out = []
    for k in order:
        rows = []
        for e in by_model[k]:
            gold, pred = e.get("gold", {}), e.get("predicted", {})
            post = usertext(e.get("post_id", ""))
            meta = f"{e.get('lang', '?')} · {e.get('n_errors', '?')} wrong"
            rows.append([Cell(f"{post.md} ({md_escape(meta)})", f"<code>{post.html}</code><br>{html.escape(meta)}"),
                         usertext(e.get("opening", "")), _labels_cell(gold, pred), _labels_cell(pred, gold)])
        out.append((k, Table(["post", "opening", "gold", "predicted"], rows, "llll", anchor=f"errors-{k}",
                             widths={0: "11%", 1: "45%", 2: "22%", 3: "22%"})))
    return out


def _labels_cell(mine: dict[str, Any], other: dict[str, Any]) -> Cell:
    """Labels of one side; labels the other side lacks (a miss or a false alarm) in bold."""
    md_parts, html_parts = [], []
    for task, short in (("topics", "T"), ("frames", "F"), ("stance_west", "S")):
        if task not in mine:
            continue
        vals = mine[task] if isinstance(mine[task], list) else [mine[task]]
        others = other.get(task, [])
        others = others if isinstance(others, list) else [others]
        md_items, html_items = [], []
        for v in vals:
            wrong = v not in others
            md_items.append(f"**{md_escape(str(v))}**" if wrong else md_escape(str(v)))
            html_items.append(f'<span class="wrong">{html.escape(str(v))}</span>' if wrong else html.escape(str(v)))
        md_parts.append(f"{short}: " + (", ".join(md_items) or DASH))
        html_parts.append(f"<b>{short}</b>: " + (", ".join(html_items) or DASH))
    return Cell("; ".join(md_parts), "<br>".join(html_parts))


def evidence_table(result: dict[str, Any]) -> Table | None:
    kinds = [k for k in model_order(result) if "evidence" in result["models"][k]]
    if not kinds:
        return None
    rows = []
    for k in kinds:
        ev = result["models"][k]["evidence"]
        share = ev.get("top_paragraph_in_gold")
        rows.append([txt(model_name(k)), txt(f"{ev.get('n_frames_correct', 0):.1f}" if not is_missing(ev.get("n_frames_correct")) else DASH),
                     txt(DASH if is_missing(share) else f"{share:.1%}")])
    return Table(["model", "frames predicted correctly, with gold evidence (per repeat)",
                  "top-scoring paragraph is a gold evidence paragraph"], rows, "lrr", anchor="evidence-table",
                 widths={1: "30%", 2: "30%"})


TIMING_NAMES = {"cv_seconds": "cross-validation, all folds and repeats (s)", "fit_seconds_mean": "mean fit per fold (s)"}


def timings_table(result: dict[str, Any]) -> Table | None:
    timings = result.get("timings") or {}
    if not timings:
        return None
    kinds = [k for k in model_order(result) if k in timings] + [k for k in timings if k not in result.get("models", {})]
    keys: list[str] = []
    for k in kinds:
        keys += [m for m in timings[k] if m not in keys]
    rows = [[txt(model_name(k))] + [txt(_num(timings[k].get(m))) for m in keys] for k in kinds]
    return Table(["model"] + [TIMING_NAMES.get(m, m) for m in keys], rows, "l" + "r" * len(keys), anchor="timings-table")


def _num(x: Any) -> str:
    if is_missing(x):
        return DASH
    return f"{x:,.2f}" if isinstance(x, float) else str(x)

