"""Evaluation report: the metrics dict written as files, a Markdown report and a self-contained HTML page.

Compute once, render twice: ``classify.evaluation.protocol.evaluate`` builds one metrics dict and this
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

import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ..render.document import DASH, Block, Figure, Heading, Para, png_width, render_html, render_markdown
from .report_plots import plot_calibration, plot_confusions, plot_per_label_f1
from .report_tables import (
    REFERENCE,
    SUMMARY_NOTE,
    SUMMARY_NOTE_HTML,
    TASK_NAMES,
    TASKS,
    TRANSLATION_NOTE,
    averages_table,
    cross_lingual_table,
    errors_tables,
    evidence_table,
    heldout_table,
    loso_paired_table,
    model_name,
    model_order,
    paired_table,
    per_label_table,
    per_language_table,
    summary_table,
    timings_table,
    transfer_table,
)

EXCLUDED_KEYS = ("timings", "run_dir")


LATEST = "latest"



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
    append_index(out_dir / RUNS_INDEX, index_record(result, rid))
    return run_dir


RUNS_INDEX = "runs.jsonl"


def _command() -> str:
    """The command line as typed: ``python -m classify.train ...`` rather than the module's file path."""
    if not sys.argv:
        return ""
    prog = Path(sys.argv[0])
    if prog.suffix == ".py" and prog.parent.name == "classify":
        return " ".join(["python -m classify." + prog.stem, *sys.argv[1:]])
    return " ".join(sys.argv)


def index_record(result: dict[str, Any], rid: str) -> dict[str, Any]:
    """One line of the runs index: id, command, data, and each model's headline scores (CV and held out)."""
    rec: dict[str, Any] = {"run": rid, "command": _command(),
                           "n_posts": result.get("data", {}).get("n_posts"), "data_sha256": result.get("data", {}).get("sha256"),
                           "cv": {k: {t: round(v["summary"][t]["mean"], 4) for t in v["summary"]} for k, v in result.get("models", {}).items()}}
    test = {k: {t: round(m["mean"], 4) for t, m in h.get("test", {}).get("all", {}).items()} for k, h in result.get("heldout", {}).items()}
    if any(test.values()):
        rec["test"] = test
    return rec


def append_index(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line (small, so one write call; the file is an index, the run folder the record)."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")


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


def _intro(result: dict[str, Any], kinds: Sequence[str]) -> str:
    p, d, cb = result.get("protocol", {}), result.get("data", {}), result.get("codebook", {})
    names = [f"`{k}`" if k != REFERENCE else "the cue rule (`cue_rule`, reference system)" for k in kinds]
    models = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    langs = ", ".join(f"{lang} {n}" for lang, n in d.get("languages", {}).items())
    seeds = ", ".join(str(s) for s in p.get("split_seeds", []))
    text = (f"Evaluated: {models}, on the {d.get('n_posts', '?')} posts ({d.get('n_groups', '?')} duplicate/translation "
            f"groups; languages: {langs or '?'}) of `{d.get('gold', '?')}` (sha256 `{d.get('sha256', '?')}`), codebook "
            f"version {cb.get('version', '?')}. Protocol: {_times(p.get('repeats', '?'))} {p.get('folds', '?')}-fold "
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
        sel = result.get("selection", {})
        scores = ", ".join(f"{model_name(k)} {v:.3f}" for k, v in sel.items())
        text += (" Learned models ranked by the selection rule of `eval/SELECTION.md` (mean of the three headline "
                 "scores, averaged over left-out sources, averaged with cross-validation; the random test split "
                 "never enters): **" + " > ".join(ranking) + "**" + (f" (scores: {scores})" if scores else "") + ".")
    return text


HELDOUT_NOTE = ("Left-out source: for each source of the train split, a model fit on the other sources scores it. "
                "Random test split: the model fit on the whole train split (the shipped model) scores the random samples "
                "drawn and labelled before any model change. Selection rule (stated before the runs): models are ranked "
                "on cross-validation and left-out-source scores of the train split only; the random test split is "
                "reported, never used to tune, set thresholds or choose. 95% group-bootstrap intervals in brackets.")


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
    t = heldout_table(result)
    if t:
        b += [Heading("Sources and posts never trained on", 3, "heldout-heading"), t,
              Para(HELDOUT_NOTE, cls="note")]
    t = paired_table(result, "heldout_paired")
    if t:
        b += [Heading("Learned models against the cue rule on the random test split", 3, "heldout-paired-heading"), t]
    t = loso_paired_table(result)
    if t:
        b += [Heading("Learned models against the cue rule on each left-out source", 3, "loso-paired-heading"), t,
              Para("Each model fit on the other sources of the train split; differences paired on the left-out "
                   "source's posts (the same group resamples for both systems).", cls="note")]
    t = cross_lingual_table(result)
    if not t and result.get("protocol", {}).get("cross_lingual") is False:
        b.append(Para("Cross-lingual checks (models trained on English posts only) not run in this run: "
                      "`python -m classify.train --cross-lingual` adds them. The left-out Russian source above scores "
                      "models trained without Russian posts.", cls="note"))
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
            b.append(Figure(name, png, alt, caption, png_width(png)))

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


def _times(repeats: Any) -> str:
    """'one run of' / 'N repeats of' for the protocol sentence."""
    return "one run of" if repeats == 1 else f"{repeats} repeats of"
