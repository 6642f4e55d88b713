"""Evaluation report: the metrics dict written as files, a Markdown report and a self-contained HTML page.

Compute once, render twice: :func:`classify.evaluate.evaluate` builds one metrics dict and this
module only renders it. Every table is built once as a :class:`Table` of cells, then written both
as Markdown and as HTML; every plot is drawn once as a PNG, linked from ``report.md`` and embedded
(base64) in ``report.html``. Nothing here computes a metric: plots draw numbers already in the dict.

A run folder ``<out_dir>/<run-id>/`` holds::

    metrics.json         the dict without ``timings`` and ``run_dir`` (sorted keys, indent 2), so the
                         same command twice gives the same bytes
    timings.json         wall-clock timings per model
    predictions.parquet  out-of-fold predictions, one row per model, repeat and post
    report.md            Markdown report; plots in plots/*.png
    report.html          the same report in one file: inline CSS, embedded plots, no scripts,
                         no external resources
    plots/*.png

The run id is ``<YYYYmmdd-HHMMSS>-<first 8 hex of sha256(metrics.json)>`` (UTC): the time says
when, the hash says what, so two runs with the same numbers share the hash. The folder is written
to a temporary directory and renamed into place, then copied to ``<out_dir>/latest/`` the same way,
so neither is ever seen half-written.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

TASKS = ("topics", "frames", "stance_west")
TASK_NAMES = {"topics": "topics", "frames": "framing cues", "stance_west": "stance toward the West"}
METRIC_NAMES = {"micro_f1": "micro-F1", "macro_f1": "macro-F1", "samples_f1": "samples-F1",
                "f_avg": "SemEval F_avg (mean F1 of favor and against)", "accuracy": "accuracy"}
REFERENCE = "cue_rule"
EXCLUDED_KEYS = ("timings", "run_dir")
LATEST = "latest"
DPI = 110
FIG_WIDTH = 8.7          # inches: 957 px at DPI, inside the 1000 px page
# Okabe-Ito: distinguishable with the common colour-vision deficiencies; the reference is grey + hatched.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
REFERENCE_COLOUR = "#8C8C8C"
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
DASH = "\u2014"


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

def metrics_json(result: dict[str, Any]) -> bytes:
    """``metrics.json`` bytes: ``result`` without ``timings``/``run_dir``, sorted keys, indent 2.

    Floats are written as Python writes them (``repr``), so identical numbers give identical bytes.
    """
    body = {k: v for k, v in result.items() if k not in EXCLUDED_KEYS}
    return (json.dumps(body, sort_keys=True, indent=2, ensure_ascii=False, default=_plain) + "\n").encode("utf-8")


def run_id(metrics_bytes: bytes, now: datetime | None = None) -> str:
    """``<YYYYmmdd-HHMMSS>-<sha8>``: UTC time of the run and the first 8 hex of sha256(metrics.json)."""
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is not None:
        now = now.astimezone(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{hashlib.sha256(metrics_bytes).hexdigest()[:8]}"


def write_report(result: dict[str, Any], predictions: pd.DataFrame, out_dir: Path, *,
                 now: datetime | None = None) -> Path:
    """Write ``<out_dir>/<run-id>/`` (metrics, timings, predictions, report.md/html) and ``latest/``.

    Parameters
    ----------
    result : dict
        The metrics dict of :func:`classify.evaluate.evaluate`.
    predictions : DataFrame
        Out-of-fold predictions (list columns stay lists in Parquet).
    out_dir : path
        Parent folder of the run folders and of ``latest/``; created if missing.
    now : datetime, optional
        Time used in the run id (default: the current UTC time).

    Returns
    -------
    Path
        The run folder ``<out_dir>/<run-id>``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mbytes = metrics_json(result)
    rid = run_id(mbytes, now)
    run_dir = out_dir / rid
    tmp = _fresh_dir(out_dir, rid)
    try:
        (tmp / "metrics.json").write_bytes(mbytes)
        (tmp / "timings.json").write_text(json.dumps(result.get("timings", {}), sort_keys=True, indent=2,
                                                     default=_plain) + "\n", encoding="utf-8")
        predictions.to_parquet(tmp / "predictions.parquet", index=False)
        md, page = render(result, rid, plots_dir=tmp / "plots")
        (tmp / "report.md").write_text(md, encoding="utf-8")
        (tmp / "report.html").write_text(page, encoding="utf-8")
        _replace_dir(tmp, run_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tmp = _fresh_dir(out_dir, LATEST)
    try:
        shutil.copytree(run_dir, tmp, dirs_exist_ok=True)
        _replace_dir(tmp, out_dir / LATEST)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return run_dir


def _fresh_dir(parent: Path, name: str) -> Path:
    """A new hidden folder beside the target (same file system, so renames are atomic; mode from umask)."""
    tmp = parent / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def _replace_dir(src: Path, dst: Path) -> None:
    """Put the complete folder ``src`` at ``dst`` by renames; ``dst`` is never partly written.

    A folder cannot be renamed over a non-empty one, so an existing ``dst`` is first renamed aside
    (for that instant ``dst`` is absent, never incomplete), then removed.
    """
    if not dst.exists():
        os.rename(src, dst)
        return
    old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(dst, old)
    try:
        os.rename(src, dst)
    except OSError:
        os.rename(old, dst)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _plain(o: Any) -> Any:
    """JSON fallback for numpy scalars and arrays (the dict should already hold plain types)."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


# --------------------------------------------------------------------------------------------
# Document model: built once, rendered to Markdown and HTML
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One table cell, with its Markdown and HTML spellings."""

    md: str
    html: str


@dataclass
class Table:
    """Header, rows of cells, per-column alignment (``l``/``r``) and optional model column groups."""

    header: list[str]
    rows: list[list[Cell]]
    align: str
    anchor: str | None = None
    groups: list[tuple[str, int]] | None = None   # (label, n columns); label "" = ungrouped columns
    breaks: set[int] = field(default_factory=set)  # row indices that start a new block
    widths: dict[int, str] = field(default_factory=dict)


@dataclass
class Heading:
    text: str
    level: int
    anchor: str


@dataclass
class Para:
    md: str                 # own text with `code`, **bold** and [links](#anchor) only; HTML derived from it
    cls: str = ""
    html_md: str | None = None   # a different text for the HTML page (same mini-syntax), if any


@dataclass
class Figure:
    name: str
    png: bytes
    alt: str
    caption: str
    width_px: int


Block = Heading | Para | Table | Figure


def txt(s: Any) -> Cell:
    """Cell from our own text (may use `code` and **bold**)."""
    s = str(s)
    return Cell(s, _inline_html(s))


def usertext(s: Any) -> Cell:
    """Cell from data (post text, ids): escaped for both formats, never interpreted."""
    s = " ".join(str(s).split())
    return Cell(_md_escape(s), html.escape(s))


def _inline_html(s: str) -> str:
    out = html.escape(s)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\[([^\]]+)\]\((#[\w-]+)\)", r'<a href="\2">\1</a>', out)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)


def _md_escape(s: str) -> str:
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", s)


def _md_table(t: Table) -> str:
    if t.groups:
        names, i = [], 0
        for label, n in t.groups:
            names += [f"{label} {h}".strip() for h in t.header[i:i + n]]
            i += n
    else:
        names = list(t.header)
    lines = ["| " + " | ".join(_md_escape(h) for h in names) + " |",
             "|" + "|".join("---:" if a == "r" else ":---" for a in t.align) + "|"]
    lines += ["| " + " | ".join(c.md for c in row) + " |" for row in t.rows]
    return "\n".join(lines)


def _html_table(t: Table) -> str:
    cls = ["l" if a == "l" else "r" for a in t.align]
    out = [f'<div class="tw"><table{f" id={_q(t.anchor)}" if t.anchor else ""}>']
    out.append("<thead>")
    if t.groups:
        top, bottom, i = [], [], 0
        for label, n in t.groups:
            if label:
                top.append(f'<th colspan="{n}" class="grp">{html.escape(label)}</th>')
                bottom += [f'<th class="{cls[j]}{" gs" if j == i else ""}">{html.escape(t.header[j])}</th>'
                           for j in range(i, i + n)]
            else:
                top += [f'<th rowspan="2" class="{cls[j]}">{html.escape(t.header[j])}</th>' for j in range(i, i + n)]
            i += n
        out += ["<tr>" + "".join(top) + "</tr>", "<tr>" + "".join(bottom) + "</tr>"]
    else:
        out.append("<tr>" + "".join(f'<th class="{c}"{_w(t, j)}>{html.escape(h)}</th>'
                                    for j, (c, h) in enumerate(zip(cls, t.header))) + "</tr>")
    out.append("</thead><tbody>")
    starts = _group_starts(t)
    for r, row in enumerate(t.rows):
        rc = ' class="brk"' if r in t.breaks and r > 0 else ""
        out.append(f"<tr{rc}>" + "".join(f'<td class="{cls[j]}{" gs" if j in starts else ""}"{_w(t, j)}>{c.html}</td>'
                                         for j, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _group_starts(t: Table) -> set[int]:
    starts, i = set(), 0
    for label, n in t.groups or []:
        if label:
            starts.add(i)
        i += n
    return starts


def _w(t: Table, j: int) -> str:
    return f' style="width:{t.widths[j]}"' if j in t.widths else ""


def _q(s: str) -> str:
    return '"' + html.escape(s, quote=True) + '"'


def render_markdown(blocks: Sequence[Block]) -> str:
    """Markdown for the blocks (plots as relative links to ``plots/<name>.png``)."""
    parts = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            parts.append(b.md)
        elif isinstance(b, Table):
            parts.append(_md_table(b))
        else:
            parts.append(f"![{b.alt}](plots/{b.name}.png)\n\n{b.caption}")
    return "\n\n".join(parts) + "\n"


def render_html(blocks: Sequence[Block], title: str) -> str:
    """One self-contained HTML page: inline CSS, plots as data URIs, no scripts or external links."""
    body = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level} id={_q(b.anchor)}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p{f' class={_q(b.cls)}' if b.cls else ''}>{_inline_html(b.html_md or b.md)}</p>")
        elif isinstance(b, Table):
            body.append(_html_table(b))
        else:
            data = base64.b64encode(b.png).decode("ascii")
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt={_q(b.alt)} width="{b.width_px}">'
                        f"<figcaption>{_inline_html(b.caption)}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body) + "\n</main>\n</body>\n</html>\n")


CSS = """
:root { color-scheme: light; }
body { margin: 0; background: #f6f6f4; color: #1d1d1d;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 20px 60px; background: #fff; box-sizing: border-box; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #e2e2dc; }
h3 { font-size: 16.5px; margin: 24px 0 6px; }
p { margin: 8px 0; }
p.meta { color: #555; margin-top: 0; }
p.note { color: #444; font-size: 13.5px; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; background: #f0f0ec;
  padding: 0 3px; border-radius: 3px; overflow-wrap: anywhere; }
.tw { overflow-x: auto; margin: 8px 0 14px; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 9px; border-bottom: 1px solid #e4e4e0; vertical-align: top; }
th { background: #efefea; font-weight: 600; border-bottom: 1px solid #cfcfc8; }
th.grp { text-align: center; border-left: 2px solid #fff; }
td.l, th.l { text-align: left; }
td.r, th.r { text-align: right; }
td.r { white-space: nowrap; }
td code { white-space: nowrap; overflow-wrap: normal; }
.sm { font-size: 12px; }
td.gs, th.gs { border-left: 2px solid #d6d6cf; }
tbody tr:nth-child(even) td { background: #fafaf8; }
tr.brk td { border-top: 2px solid #c9c9c2; }
table#summary { font-size: 14.5px; }
table#summary td.r { white-space: normal; }
.ci { color: #555; }
.sd { color: #666; font-size: 12.5px; }
.absent { color: #777; font-style: italic; }
.err td { font-size: 13px; }
td .wrong { font-weight: 700; background: #fbe3c9; border-radius: 2px; padding: 0 2px; }
figure { margin: 14px 0 20px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: #444; font-size: 13.5px; margin-top: 4px; }
nav { font-size: 14px; }
"""


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------

def _bad(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def f3(x: Any) -> str:
    return DASH if _bad(x) else f"{x:.3f}"


def f2(x: Any) -> str:
    return DASH if _bad(x) else f"{x:.2f}"


def fci(ci: Sequence[float] | None) -> str:
    return "" if not ci or any(_bad(v) for v in ci) else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


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


def _colours(kinds: Sequence[str]) -> dict[str, str]:
    learned = [k for k in kinds if k != REFERENCE]
    out = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(learned)}
    out[REFERENCE] = REFERENCE_COLOUR
    return out


def _task_labels(result: dict[str, Any], task: str, kinds: Sequence[str]) -> list[str]:
    """Label ids of ``task`` in codebook order, plus any label only a model reports."""
    key = {"stance_west": "stances"}.get(task, task)
    ids = list(result.get("codebook", {}).get(key, []))
    for k in kinds:
        ids += [lid for lid in result["models"][k].get("per_label", {}).get(task, {}) if lid not in ids]
    return ids


def _headline(result: dict[str, Any], kinds: Sequence[str]) -> dict[str, str]:
    """Display metric of each task, as the models' summaries name it."""
    out = {}
    for task in TASKS:
        metric = next((result["models"][k]["summary"][task]["metric"] for k in kinds
                       if task in result["models"][k].get("summary", {})), "")
        out[task] = metric_name(metric)
    return out


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

def summary_table(result: dict[str, Any]) -> Table:
    """Task x model: headline score [95% CI] and fold-to-fold sd."""
    kinds = model_order(result)
    head = _headline(result, kinds)
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
    out = _md_table(summary_table(result))
    return out + ("\n\n" + SUMMARY_NOTE if note else "")


def paired_table(result: dict[str, Any]) -> Table | None:
    paired = result.get("paired") or {}
    if not paired:
        return None
    head = _headline(result, model_order(result))
    rows, breaks = [], set()
    for pair, tasks in paired.items():
        breaks.add(len(rows))
        a, _, b = pair.partition(" - ")
        label = f"{model_name(a)} − {model_name(b)}" if b else pair
        for i, task in enumerate(t for t in TASKS if t in tasks):
            d = tasks[task]
            rows.append([txt(f"**{label}**" if i == 0 else ""), txt(f"{TASK_NAMES[task]} ({head[task]})"),
                         txt(f"{d['diff']:+.3f}" if not _bad(d.get("diff")) else DASH), txt(fci(d.get("ci")) or DASH),
                         txt(f2(d.get("p_not_better")))])
    return Table(["models (a − b)", "task", "difference", "95% CI", "P(not better)"], rows, "llrrr",
                 anchor="paired", breaks=breaks)


TRANSLATION_NOTE = "made by a language-model helper session, paragraph for paragraph, see labels/README.md"


def transfer_table(result: dict[str, Any]) -> Table | None:
    """English-only training scored on the English originals and their Russian translations."""
    tt = result.get("translated_transfer") or {}
    if not tt.get("models"):
        return None
    head = _headline(result, model_order(result))
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
    head = _headline(result, model_order(result))
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
    head = _headline(result, kinds)
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
    for lid in _task_labels(result, task, kinds):
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
            rows.append([Cell(f"{post.md} ({_md_escape(meta)})", f"<code>{post.html}</code><br>{html.escape(meta)}"),
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
            md_items.append(f"**{_md_escape(str(v))}**" if wrong else _md_escape(str(v)))
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
        rows.append([txt(model_name(k)), txt(f"{ev.get('n_frames_correct', 0):.1f}" if not _bad(ev.get("n_frames_correct")) else DASH),
                     txt(DASH if _bad(share) else f"{share:.1%}")])
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
    if _bad(x):
        return DASH
    return f"{x:,.2f}" if isinstance(x, float) else str(x)


# --------------------------------------------------------------------------------------------
# Plots (Agg canvas on a private Figure: no pyplot, no global backend switch)
# --------------------------------------------------------------------------------------------

RC = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": 10.5,
      "ytick.labelsize": 10.5, "legend.fontsize": 10.5, "font.family": "DejaVu Sans",
      "axes.spines.top": False, "axes.spines.right": False}


def _png(fig: Any) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def plot_per_label_f1(result: dict[str, Any]) -> bytes | None:
    """Grouped horizontal bars: per-label F1 with 95% CI error bars, every model, topics and frames."""
    import matplotlib
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    kinds = model_order(result)
    tasks = [t for t in ("topics", "frames") if any(t in result["models"][k].get("per_label", {}) for k in kinds)]
    if not tasks:
        return None
    labels = {t: _task_labels(result, t, kinds) for t in tasks}
    absent = set(result.get("data", {}).get("absent_labels", []))
    colours = _colours(kinds)
    n_rows = sum(len(v) for v in labels.values())
    per_label_in = 0.16 + 0.13 * len(kinds)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(FIG_WIDTH, 1.5 + n_rows * per_label_in + 0.5 * len(tasks)), dpi=DPI, layout="constrained")
        axes = fig.subplots(len(tasks), 1, gridspec_kw={"height_ratios": [max(len(labels[t]), 1) for t in tasks]},
                            squeeze=False)[:, 0]
        height = 0.8 / len(kinds)
        for ax, task in zip(axes, tasks):
            ids = labels[task]
            y0 = np.arange(len(ids))
            for i, k in enumerate(kinds):
                table = result["models"][k].get("per_label", {}).get(task, {})
                f1 = np.array([table.get(lid, {}).get("f1", np.nan) for lid in ids], float)
                lo = np.array([_ci_part(table.get(lid), 0) for lid in ids], float)
                hi = np.array([_ci_part(table.get(lid), 1) for lid in ids], float)
                err = np.vstack([np.clip(f1 - lo, 0, None), np.clip(hi - f1, 0, None)])
                err = np.nan_to_num(err)
                y = y0 - 0.4 + height * (i + 0.5)
                ax.barh(y, np.nan_to_num(f1), height=height * 0.92, color=colours[k],
                        hatch="//" if k == REFERENCE else None, edgecolor="white" if k != REFERENCE else "#555555",
                        linewidth=0.5, xerr=err, error_kw={"elinewidth": 1.0, "capsize": 2.5, "ecolor": "#222222"})
            ax.set_yticks(y0, [f"{lid} (absent)" if lid in absent else lid for lid in ids])
            for tick, lid in zip(ax.get_yticklabels(), ids):
                if lid in absent:
                    tick.set_color("#777777")
            ax.set_ylim(len(ids) - 0.5, -0.5)
            ax.set_xlim(0, 1.03)
            ax.set_xticks(np.linspace(0, 1, 6))
            ax.grid(axis="x", color="#dddddd", linewidth=0.8)
            ax.set_axisbelow(True)
            ax.set_title(TASK_NAMES[task], loc="left", fontweight="bold")
        axes[-1].set_xlabel("F1 (mean over repeats); error bars: 95% bootstrap interval")
        handles = [Patch(facecolor=colours[k], hatch="//" if k == REFERENCE else None,
                         edgecolor="#555555" if k == REFERENCE else colours[k], label=model_name(k)) for k in kinds]
        fig.legend(handles=handles, loc="outside upper center", ncols=len(kinds), frameon=False)
        return _png(fig)


def _ci_part(v: dict[str, Any] | None, i: int) -> float:
    if not v or not v.get("ci") or _bad(v["ci"][i]):
        return float("nan") if not v else v.get("f1", float("nan"))
    return float(v["ci"][i])


def plot_confusions(result: dict[str, Any]) -> bytes | None:
    """One stance confusion matrix per model (rows gold, columns predicted, counts)."""
    import matplotlib
    import numpy as np
    from matplotlib.figure import Figure

    kinds = [k for k in model_order(result) if result["models"][k].get("confusion")]
    if not kinds:
        return None
    classes = list(result.get("codebook", {}).get("stances", []))
    ncols = min(3, len(kinds))
    nrows = math.ceil(len(kinds) / ncols)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(FIG_WIDTH, 0.4 + 2.9 * nrows), dpi=DPI, layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, k in zip(axes, kinds):
            m = np.asarray(result["models"][k]["confusion"], float)
            names = classes if len(classes) == len(m) else [str(i) for i in range(len(m))]
            ax.imshow(m, cmap="Blues", vmin=0, vmax=max(m.max(), 1))
            for (r, c), v in np.ndenumerate(m):
                ax.text(c, r, f"{int(v)}", ha="center", va="center", fontsize=12,
                        color="white" if v > 0.55 * m.max() else "#111111", fontweight="bold" if r == c else "normal")
            ax.set_xticks(range(len(names)), names)
            ax.set_yticks(range(len(names)), names)
            ax.set_xlabel("predicted")
            ax.set_ylabel("gold")
            ax.set_title(model_name(k))
            ax.spines[:].set_visible(False)
        for ax in axes[len(kinds):]:
            ax.set_visible(False)
        return _png(fig)


def plot_calibration(result: dict[str, Any]) -> bytes | None:
    """Reliability diagram of topic and frame probabilities (all models, diagonal reference) and bin counts."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    kinds = [k for k in model_order(result) if result["models"][k].get("calibration", {}).get("mean_predicted")]
    if not kinds:
        return None
    colours = _colours(model_order(result))
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(FIG_WIDTH, 4.7), dpi=DPI, layout="constrained")
        rel, cnt = fig.subplots(1, 2, width_ratios=[1.15, 1])
        rel.plot([0, 1], [0, 1], ls="--", color="#666666", lw=1, label="perfectly calibrated")
        for i, k in enumerate(kinds):
            cal = result["models"][k]["calibration"]
            style = {"color": colours[k], "marker": MARKERS[i % len(MARKERS)], "lw": 1.8, "ms": 6,
                     "ls": ":" if k == REFERENCE else "-"}
            rel.plot(cal["mean_predicted"], cal["fraction_positive"], label=model_name(k), clip_on=False, **style)
            cnt.plot(cal["mean_predicted"], cal.get("count", []), **{**style, "ls": "none"}, clip_on=False,
                     markeredgecolor="white", markeredgewidth=0.6)
        rel.set_xlim(0, 1)
        rel.set_ylim(0, 1)
        rel.set_aspect("equal")
        rel.set_xlabel("mean predicted probability (bin)")
        rel.set_ylabel("fraction of positive labels")
        rel.set_title("reliability", loc="left", fontweight="bold")
        rel.grid(color="#e3e3e3", lw=0.8)
        fig.legend(*rel.get_legend_handles_labels(), loc="outside upper center", ncols=len(kinds) + 1, frameon=False)
        cnt.set_yscale("log")
        cnt.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        cnt.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        cnt.yaxis.set_minor_formatter(NullFormatter())
        cnt.set_xlim(0, 1)
        cnt.set_xlabel("mean predicted probability (bin)")
        cnt.set_ylabel("label-post pairs in bin (log)")
        cnt.set_title("bin sizes", loc="left", fontweight="bold")
        cnt.grid(color="#e3e3e3", lw=0.8)
        return _png(fig)


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------

def _intro(result: dict[str, Any], kinds: Sequence[str]) -> str:
    p, d, cb = result.get("protocol", {}), result.get("data", {}), result.get("codebook", {})
    names = [f"`{k}`" if k != REFERENCE else "the cue rule (`cue_rule`, reference system)" for k in kinds]
    models = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    langs = ", ".join(f"{lang} {n}" for lang, n in d.get("languages", {}).items())
    seeds = ", ".join(str(s) for s in p.get("split_seeds", []))
    text = (f"Evaluated: {models}, on the {d.get('n_posts', '?')} posts ({d.get('n_groups', '?')} duplicate/translation "
            f"groups; languages: {langs or '?'}) of `{d.get('gold', '?')}` (sha256 `{d.get('sha256', '?')}`), codebook "
            f"version {cb.get('version', '?')}. Protocol: {p.get('repeats', '?')} repeats of {p.get('folds', '?')}-fold "
            f"cross-validation ({p.get('splitter', '?')}; split seeds {seeds or '?'}); every model, with its thresholds "
            f"and tuning, is fitted on the training folds only and scored on out-of-fold predictions. Scores are the mean "
            f"over repeats of the pooled out-of-fold score; 95% intervals come from {p.get('n_boot', '?')} bootstrap "
            f"resamples of groups, and model differences from a paired bootstrap on the same resamples. "
            f"Zero division: a precision, recall or F1 with a zero denominator counts as {p.get('zero_division', '?')}. "
            f"Macro averages are {p.get('macro_average', 'over all labels')}.")
    absent = d.get("absent_labels") or []
    if absent:
        text += " Labels absent from gold: " + ", ".join(f"`{a}`" for a in absent) + "."
    known = {"folds", "repeats", "split_seeds", "n_boot", "splitter", "zero_division", "macro_average"}
    other = {k: v for k, v in p.items() if k not in known}
    if other:
        text += " Other settings: " + "; ".join(f"{k} = {v}" for k, v in other.items()) + "."
    ranking = [model_name(k) for k in result.get("ranking", [])]
    if ranking:
        text += (" Learned models ranked by the mean of their three headline scores: **"
                 + " > ".join(ranking) + "**.")
    return text


def build(result: dict[str, Any], run: str) -> list[Block]:
    """All blocks of the report, in reading order (summary first, details after)."""
    kinds = model_order(result)
    b: list[Block] = [Heading("classify evaluation report", 1, "top"),
                      Para(f"Run `{run}` · codebook {result.get('codebook', {}).get('version', '?')} · "
                           f"{result.get('data', {}).get('n_posts', '?')} posts", cls="meta"),
                      Para(_intro(result, kinds)),
                      Heading("Summary", 2, "summary-heading"), summary_table(result), Para(SUMMARY_NOTE, cls="note", html_md=SUMMARY_NOTE_HTML)]
    t = paired_table(result)
    if t:
        b += [Heading("Paired differences", 3, "paired-heading"), t,
              Para("Difference = a − b on the headline metric, on the full data; positive favours a. "
                   "P(not better) = share of paired bootstrap resamples (the same group resamples for both models) in "
                   "which a − b ≤ 0: a value near 0 means a is reliably better, near 1 reliably worse.", cls="note")]
    t = cross_lingual_table(result)
    if t:
        b += [Heading("Cross-lingual transfer", 3, "cross-lingual-heading"), t,
              Para("Models trained on one half of the English posts only (2 folds over groups, in each repeat of the "
                   "English-only split): the mean of their scores on the Russian posts and on all non-English posts; "
                   "point estimates without intervals.", cls="note")]
    t = transfer_table(result)
    if t:
        tt = result["translated_transfer"]
        b += [Heading("English to Russian transfer (translated posts)", 3, "translated-transfer-heading"), t,
              Para(f"{tt['n_posts']} English gold posts and their Russian translations ({TRANSLATION_NOTE}); "
                   f"{tt['protocol']}. Intervals from a bootstrap over groups; differences paired on the same resamples.",
                   cls="note")]
    t = per_language_table(result)
    if t:
        b += [Heading("By language", 3, "per-language-heading"), t,
              Para("The cross-validated out-of-fold predictions split by the post's language (the same runs as the "
                   "summary); no intervals, and small slices are noisy.", cls="note")]
    b.append(Para("Further down: [per-label results](#per-label-results) · [plots](#plots) · "
                  "[worst errors](#worst-errors) · [evidence quality](#evidence-quality) · [timings](#timings)",
                  cls="note"))

    b.append(Heading("Per-label results", 2, "per-label-results"))
    for task in TASKS:
        t = per_label_table(result, task)
        if not t:
            continue
        head = "Stance toward the West, per class" if task == "stance_west" else f"{TASK_NAMES[task].capitalize()}"
        b += [Heading(head, 3, f"labels-{task}-heading"), t]
        a = averages_table(result, task)
        if a:
            b.append(a)
    b.append(Para("P, R, F1: precision, recall and F1 of the pooled out-of-fold predictions, averaged over repeats; "
                  "support = gold posts with the label. Stance classes have no per-class interval.", cls="note"))

    b.append(Heading("Plots", 2, "plots"))
    for name, png, alt, caption in (
            ("per_label_f1", plot_per_label_f1(result), "Per-label F1 with 95% intervals, every model",
             "Per-label F1 (mean over repeats) with 95% bootstrap intervals; the cue rule is the grey hatched bar."),
            ("stance_confusion", plot_confusions(result), "Stance confusion matrices",
             "Stance confusion matrices of the first repeat's out-of-fold predictions: rows gold, columns predicted, "
             "counts of posts; the diagonal is correct."),
            ("calibration", plot_calibration(result), "Reliability diagram of topic and frame probabilities",
             "Reliability of the topic and frame probabilities pooled over labels and repeats: points on the dashed "
             "diagonal are calibrated; below it the model is over-confident. Right: how many label-post pairs fall in "
             "each bin (few pairs: a noisy point).")):
        if png:
            b.append(Figure(name, png, alt, caption, _png_width(png)))

    b.append(Heading("Worst errors", 2, "worst-errors"))
    errs = errors_tables(result)
    b.append(Para("Per model, the posts with the most wrong labels in the first repeat (T topics, F frames, S stance). "
                  "Bold: a gold label the model missed (gold column) or a label it added (predicted column).",
                  cls="note") if errs else Para("No errors recorded."))
    for k, t in errs:
        b += [Heading(model_name(k), 3, f"errors-{k}-heading"), t]

    t = evidence_table(result)
    b.append(Heading("Evidence quality", 2, "evidence-quality"))
    b += [t, Para("Among frames the model predicted correctly for posts with gold evidence paragraphs: how often the "
                  "paragraph the model scored highest is one of the gold evidence paragraphs. "
                  f"{DASH} means no such frame.", cls="note")] if t else [Para("No evidence figures recorded.")]

    t = timings_table(result)
    b.append(Heading("Timings", 2, "timings"))
    b += [t, Para("Wall-clock seconds on the machine that ran the evaluation (from `timings.json`); kept out of "
                  "`metrics.json` so that the same command gives the same `metrics.json` bytes.", cls="note")] \
        if t else [Para("No timings recorded.")]
    b += [Heading("Files", 2, "files"),
          Para("`metrics.json` (every number above) · `timings.json` · `predictions.parquet` (out-of-fold predictions, "
               "one row per model, repeat and post) · `report.md` · `report.html` · `plots/`", cls="note")]
    return b


def _png_width(png: bytes) -> int:
    return int.from_bytes(png[16:20], "big")   # IHDR width


def render(result: dict[str, Any], run: str, plots_dir: Path | None = None) -> tuple[str, str]:
    """``(report.md, report.html)`` text; writes the plots to ``plots_dir`` if given."""
    blocks = build(result, run)
    if plots_dir is not None:
        figures = [x for x in blocks if isinstance(x, Figure)]
        if figures:
            plots_dir.mkdir(parents=True, exist_ok=True)
        for fig in figures:
            (plots_dir / f"{fig.name}.png").write_bytes(fig.png)
    return render_markdown(blocks), render_html(blocks, f"classify evaluation {run}")

