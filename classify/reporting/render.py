"""The corpus report as document blocks (``classify.render.document``), then HTML, Markdown and a CSV.

Nothing here computes a share or a check: every number comes from ``ReportData`` (``build``). The
HTML page is self-contained (inline CSS, plots embedded, no scripts or external resources); the
Markdown links its plots in ``<stem>_plots/``; ``<stem>.cells.csv`` holds every cell (channel x
period x label: posts, raw share, corrected share and interval) for analysts' own tools.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .._cli import atomic_write, atomic_write_text
from .._version import __version__
from ..codebook import Codebook
from ..render.document import (
    Block,
    Cell,
    Figure,
    Heading,
    Para,
    Table,
    md_escape,
    png_width,
    render_html,
    render_markdown,
    txt,
    usertext,
)
from .build import ReportData, model_summary
from .corpus import period_label
from .evidence import Quote
from .plots import plot_channel_frames, plot_channels, plot_overall, plot_stance, plot_time, top_channels
from .quantify import MIN_CLASS, MIN_GAP

MAX_CHANNEL_ROWS = 25


def pct(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.1f}%"


def share_cell(raw: float, corr: float, lo: float, hi: float, n: float, compact: bool = False) -> Cell:
    """A share as the table shows it: corrected with its interval (and raw), or raw in brackets when uncorrected."""
    if n == 0 or np.isnan(raw):
        return Cell("", "")
    if np.isnan(corr):
        return Cell(f"({100 * raw:.1f})", f'<span class="absent">({100 * raw:.1f})</span>')
    if compact:
        return Cell(f"{100 * corr:.1f} [{100 * lo:.1f}–{100 * hi:.1f}] raw {100 * raw:.1f}",
                    f'{100 * corr:.1f}<br><span class="ci">{100 * lo:.1f}–{100 * hi:.1f}</span>'
                    f'<br><span class="sd">raw {100 * raw:.1f}</span>')
    return Cell(f"{pct(corr)} [{100 * lo:.1f}, {100 * hi:.1f}]", f'{pct(corr)} <span class="ci">[{100 * lo:.1f}, {100 * hi:.1f}]</span>')


def wrap_id(label: str) -> str:
    """A label id that may wrap after its underscores in a narrow table header (zero-width spaces)."""
    return label.replace("_", "_\u200b")


def names_of(targets: tuple[str, ...]) -> dict[str, str]:
    return {t: t.replace("stance:", "stance: ") for t in targets}


def highlighted(q: Quote) -> Cell:
    """The paragraph with its cue phrases marked (HTML ``<mark>``, Markdown bold); text escaped."""
    spans = sorted(q.spans)
    md, out, pos = [], [], 0
    for a, b in spans:
        if a < pos:
            continue
        md += [md_escape(q.text[pos:a]), "**" + md_escape(q.text[a:b]) + "**"]
        out += [html.escape(q.text[pos:a]), "<mark>" + html.escape(q.text[a:b]) + "</mark>"]
        pos = b
    md.append(md_escape(q.text[pos:]))
    out.append(html.escape(q.text[pos:]))
    return Cell(" ".join("".join(md).split()), "".join(out))


# ============================================================================ sections
def _intro(d: ReportData) -> list[Block]:
    c = d.corpus
    files = ", ".join(f"`{Path(f.path).name}`" for f in c.files)
    b: list[Block] = [Heading("classify: corpus report", 1, "top"),
                      Para(f"{c.n_rows:,} posts in {files}; {c.n:,} tagged. Model: {model_summary(d.card)}"
                           f"{f' (`{d.model_dir}`)' if d.model_dir else ''}. classify {__version__}.", cls="meta")]
    if c.period_kind:
        dated = c.rows["when"].dropna()
        when = (f"Posts from {dated.min():%Y-%m-%d} to {dated.max():%Y-%m-%d}: shares per {c.period_kind}"
                + (f"; {c.n_undated:,} tagged posts have no date and count only in the totals." if c.n_undated else "."))
    else:
        when = ("**No post has a date** (text copied from Telegram's web view carries none), so this report has no time "
                "axis: shares are for the whole corpus and per channel only.")
    if d.correction is not None:
        cor = d.correction
        how = (f"Corrected shares undo the model's errors as measured on **{cor.n_rows} held-out gold posts** "
               f"(protocol `{cor.protocol}`; {cor.method.upper()}, QuaPy); {int(cor.ok.sum())} of {len(cor.targets)} labels "
               "could be corrected. Raw shares are the model's own counts.")
    else:
        how = "**Shares are not corrected.** " + d.model_note
    if "shipped" in d.goldchecks:
        how += " " + shipped_verdict(d) + " See [the check](#goldcheck)."
    warns = [ch.name for ch in d.checks if ch.warn]
    trust = (f"**{len(warns)} of {len(d.checks)} drift checks warn** ({', '.join(warns)}): see [trust](#trust)." if warns else
             f"None of the {len(d.checks)} drift checks warns (see [trust](#trust)).")
    b += [Para(when), Para(how), Para(trust),
          Para("Sections: [what was read](#read) · [prevalence](#prevalence) · [over time](#time) · [by channel](#channels) · "
               "[stance](#stance) · [trust](#trust) · [correction](#correction) · [frames and topics](#cooccurrence) · "
               "[evidence](#evidence)", cls="note")]
    return b


def _read(d: ReportData) -> list[Block]:
    rows = []
    for f in d.corpus.files:
        src = ", ".join(f"{s} ({n:,})" for s, n in f.sources.items())
        rows.append([usertext(Path(f.path).name), txt(f"{f.rows:,}"), txt(f"{f.status.get('ok', 0):,}"),
                     txt(f"{f.status.get('empty', 0):,}"), txt(f"{f.status.get('media_only', 0):,}"), usertext(src)])
    b: list[Block] = [Heading("What was read", 2, "read"),
                      Table(["tag file", "posts", "tagged", "empty", "media only", "from input files (posts)"], rows, "lrrrrl")]
    if d.skipped is not None:
        n = sum(d.skipped.values())
        b.append(Para(f"The tagger skipped {n:,} input item(s) that are not posts or could not be read"
                      + (": " + "; ".join(f"{k} {v}" for k, v in d.skipped.most_common()) if n else "") + "."))
    else:
        b.append(Para("Input items the tagger skipped (service messages, unreadable items) are not in the tag output; "
                      "`classify.tag` lists them in its closing summary.", cls="note"))
    s = d.sample
    b.append(Para(f"Post text for the checks that need it: {s.n:,} of {s.n_wanted:,} randomly sampled tagged posts read back from "
                  f"the input files" + (f"; {s.n_changed} had changed since tagging and were left out" if s.n_changed else "")
                  + (f"; input files not found: {', '.join(s.missing_sources)} (pass them with --inputs)" if s.missing_sources else "")
                  + ".", cls="note"))
    return b


def _trust(d: ReportData) -> list[Block]:
    rows = []
    for ch in d.checks:
        val = ch.value_text or ("—" if ch.value is None else
                                (pct(ch.value) + (f" [{100 * ch.ci[0]:.1f}, {100 * ch.ci[1]:.1f}]" if ch.ci else "")))
        flag = Cell("not computed", '<span class="absent">not computed</span>') if ch.warn is None else (
            Cell("**warning**", '<span class="warn">warning</span>') if ch.warn else Cell("ok", '<span class="okay">ok</span>'))
        meaning = " ".join([ch.meaning, *ch.detail])
        rows.append([txt(ch.name), txt(val), txt(ch.reference), flag, Cell(md_escape(meaning), html.escape(meaning))])
    b: list[Block] = [Heading("Can these numbers be trusted? Drift warnings", 2, "trust"),
                      Para("The correction assumes the model errs on this corpus as it did on the held-out gold. Each check "
                           "compares the corpus with that gold and says what a difference means."),
                      Table(["check", "here [95%]", "on the gold", "", "what it means for trust"], rows, "lrlll", widths={4: "50%"}),
                      Heading("Language mix", 3, "languages")]
    lt = d.lang_table
    b.append(Table(["language", "tagged posts", "share", "training gold", "held-out gold"],
                   [[usertext(r["lang"]), txt(f"{r['posts']:,}"), txt(pct(r["share"])), txt(str(r["training gold"])),
                     txt(str(r["held-out gold"]))] for _, r in lt.iterrows()], "lrrrr"))
    if d.consistency is not None:
        if d.consistency > 0.01:
            b.append(Para(f"**Warning:** for {pct(d.consistency)} of tagged posts the labels are not what the thresholds of "
                          f"`{d.model_dir}` give for their scores: the tags were probably made by another model, and the "
                          "correction uses this one's error rates. Pass the right --model."))
        else:
            b.append(Para(f"The tags agree with the thresholds of `{d.model_dir}` on {pct(1 - d.consistency)} of tagged posts: "
                          "they were made by this model (or one with the same thresholds).", cls="note"))
    return b


def _correction(d: ReportData, names: dict[str, str]) -> list[Block]:
    b: list[Block] = [Heading("How the shares are corrected", 2, "correction")]
    cor = d.correction
    if cor is None:
        return b + [Para(d.model_note)]
    ho = d.heldout
    present = ", ".join(f"{k} {v}" for k, v in ho.protocols_present.items())
    what = {"loso": "each predicted by a model trained without the post's source (an unseen source, like a new corpus)",
            "cv": "each predicted out-of-fold within the training split",
            "test": "each predicted by the shipped model on the random test split"}[cor.protocol]
    stat = "the mean probability" if cor.method == "pacc" else "the share of posts labelled"
    b.append(Para(f"Error rates come from **{cor.n_rows} held-out gold posts** of protocol `{cor.protocol}` ({what}; "
                  f"{cor.n_groups} duplicate/translation groups; `{ho.path}` holds {present}). A label's share in a set of "
                  f"posts, as {stat}, is q = FPR + p (TPR − FPR) for true share p, so p = (q − FPR) / (TPR − FPR), clipped to "
                  f"[0, 1] ({cor.method.upper()}: QuaPy's adjusted counting on the saved held-out outputs). Intervals: "
                  f"{cor.M_boot.shape[0]} bootstrap refits over gold groups, each with a resample of the cell's posts. "
                  f"A label is corrected only with {MIN_CLASS}+ held-out gold posts with and without it and TPR − FPR ≥ "
                  f"{MIN_GAP}; stance classes are corrected one against the rest."))
    rows = []
    for k, t in enumerate(cor.targets):
        why = cor.why_not[k]
        rows.append([txt(f"`{names[t]}`"), txt(f"{cor.n_pos[k]} / {cor.n_gold[k] - cor.n_pos[k]}"),
                     txt(f"{cor.tpr[k]:.2f}"), txt(f"{cor.fpr[k]:.2f}"),
                     txt("yes") if not why else Cell(md_escape("no: " + why), f'<span class="absent">no: {html.escape(why)}</span>')])
    b.append(Table(["label", "gold with / without", "TPR", "FPR", "corrected"], rows, "lrrrl"))
    b += _goldcheck(d, names)
    return b


def _goldcheck(d: ReportData, names: dict[str, str]) -> list[Block]:
    gcs = d.goldchecks
    if not gcs:
        return []
    b: list[Block] = [Heading("Does the correction work? Checked on the gold", 3, "goldcheck")]
    lines = []
    for by in ("group", "source"):
        if by in gcs:
            gc, s = gcs[by], gcs[by].summary()
            lines.append(f"{'By group' if by == 'group' else 'By source'} ({gc.scheme}): corrected shares of the whole held-out "
                         f"set are off the gold by {100 * s['abs_corrected']:.1f} points on average over labels, raw shares by "
                         f"{100 * s['abs_raw']:.1f}; per fold, {100 * s['mae_corrected']:.1f} against {100 * s['mae_raw']:.1f}.")
    if lines:
        b.append(Para("Each fold of the held-out gold is corrected with error rates fitted on the other folds only, then compared "
                      "with its gold share (correcting a set with its own rates would be circular). " + " ".join(lines)
                      + " Where correcting does not beat raw across sources, corrected shares of a corpus unlike the gold "
                      "deserve the same doubt; the drift checks above say how unlike it this corpus is."))
        rows = []
        g, s = gcs.get("group"), gcs.get("source")
        for k, t in enumerate(d.targets):
            row = [txt(f"`{names[t]}`")]
            for gc in (g, s):
                row += [txt("—")] * 4 if gc is None else [
                    txt(pct(gc.gold[k])), txt(pct(gc.raw[k])), txt(pct(gc.corrected[k])),
                    txt(f"{100 * gc.mae_raw[k]:.1f} / {100 * gc.mae_corr[k]:.1f}")]
            rows.append(row)
        b.append(Table(["label", "gold", "raw", "corrected", "fold error raw / corr.", "gold", "raw", "corrected",
                        "fold error raw / corr."], rows, "lrrrrrrrr", groups=[("", 1), ("by group", 4), ("by source", 4)]))
    if "shipped" in gcs:
        gc, s = gcs["shipped"], gcs["shipped"].summary()
        b.append(Para(f"**The tagging model itself**: {gc.scheme}. Mean gap to the gold over labels: corrected "
                      f"{100 * s['abs_corrected']:.1f} points, raw {100 * s['abs_raw']:.1f}. " + shipped_verdict(d)))
        b.append(Table(["label", "gold", "raw", "corrected", "raw − gold", "corrected − gold"],
                       [[txt(f"`{names[t]}`"), txt(pct(gc.gold[k])), txt(pct(gc.raw[k])), txt(pct(gc.corrected[k])),
                         txt(f"{100 * (gc.raw[k] - gc.gold[k]):+.1f}"), txt(f"{100 * (gc.corrected[k] - gc.gold[k]):+.1f}")]
                        for k, t in enumerate(d.targets)], "lrrrrr"))
    return b


def shipped_verdict(d: ReportData) -> str:
    """What the test-split check says about reading corrected against raw shares (empty without it)."""
    gc = d.goldchecks.get("shipped")
    if gc is None:
        return ""
    s = gc.summary()
    if s["abs_corrected"] < s["abs_raw"]:
        return ("On these posts the correction brought the tagging model's shares closer to the gold.")
    return ("On these posts the correction moved the tagging model's shares **further from the gold** than its raw counts: "
            "its errors differ from those of the models behind the held-out rows. Read raw and corrected shares side by "
            "side, and prefer error rates measured on gold of the tagging model (`--protocol test`) on a corpus like its test split.")


def _prevalence(d: ReportData, names: dict[str, str], figs: list[Figure]) -> list[Block]:
    e = d.cells["overall"].est
    b: list[Block] = [Heading("Prevalence in the whole corpus", 2, "prevalence")]
    fig = _figure("overall", plot_overall(d, names), "share per label, raw and corrected",
                  "Share of tagged posts with each label: raw (hollow, the model's count) and corrected for its errors "
                  "(filled, with 95% interval). Labels without a filled dot could not be corrected (see the correction table).")
    figs.append(fig)
    b.append(fig)
    rows = []
    for k, t in enumerate(d.targets):
        note = ""
        if d.correction is not None and not d.correction.ok[k]:
            note = "not corrected: " + d.correction.why_not[k]
        elif e.outside[0, k]:
            note = "outside the gold error rates: a bound"
        count = int(round(e.raw[0, k] * e.n[0])) if e.n[0] else 0
        rows.append([txt(f"`{names[t]}`"), txt(f"{count:,}"), txt(pct(e.raw[0, k])),
                     share_cell(e.raw[0, k], e.corr[0, k], e.lo[0, k], e.hi[0, k], e.n[0]), usertext(note)])
    b.append(Table(["label", "posts labelled", "raw share", "corrected [95%]", "note"], rows, "lrrrl"))
    return b


def _wide(d: ReportData, name: str, idx: list[int], first: list[Cell], head: str) -> Table:
    e = d.cells[name].est
    L = len(d.corpus.labels)
    rows = [[first[r], txt(f"{int(e.n[i]):,}")] + [share_cell(e.raw[i, k], e.corr[i, k], e.lo[i, k], e.hi[i, k], e.n[i], True)
                                                  for k in range(L)] for r, i in enumerate(idx)]
    return Table([head, "posts", *(wrap_id(lab) for lab in d.corpus.labels)], rows, "lr" + "r" * L)


def _time(d: ReportData, names: dict[str, str], figs: list[Figure]) -> list[Block]:
    b: list[Block] = [Heading("Over time", 2, "time")]
    kind = d.corpus.period_kind
    if not kind:
        return b + [Para("No post has a date, so there is no time axis in this report.")]
    fig = _figure("time", plot_time(d, names), "share per label over time",
                  f"Share of tagged posts per {kind}: corrected (solid, band = 95% interval) and raw (dashed). "
                  f"Periods with fewer than 20 posts are left out of the plot.")
    if fig:
        figs.append(fig)
        b.append(fig)
    keys = d.cells["period"].keys
    b.append(Para(f"Per {kind}, in %: corrected share, its 95% interval and the raw share; in brackets the raw share of a label "
                  "that cannot be corrected.", cls="note"))
    b.append(_wide(d, "period", list(range(len(keys))), [txt(period_label(pd.Timestamp(p), kind)) for p in keys["period"]], kind))
    return b


def _channels(d: ReportData, names: dict[str, str], figs: list[Figure]) -> list[Block]:
    b: list[Block] = [Heading("By channel", 2, "channels")]
    fig = _figure("channels", plot_channels(d, names), "share per label and channel",
                  "Corrected share (%) per label in the largest channels (posts in brackets after the name); values in "
                  "brackets are raw shares of labels that cannot be corrected.")
    if fig:
        figs.append(fig)
        b.append(fig)
    fig = _figure("channel_frames", plot_channel_frames(d, names), "most frequent frames over time in the largest channels",
                  f"The four most frequent frames per {d.corpus.period_kind} in the largest channels: corrected (solid) and "
                  "raw (dashed), each channel over its own stretch of time.") if d.corpus.period_kind else None
    if fig:
        figs.append(fig)
        b.append(fig)
    keys = d.cells["channel"].keys
    chans = top_channels(d, MAX_CHANNEL_ROWS)
    idx = [list(keys["channel"]).index(c) for c in chans]
    rest = len(keys) - len(chans)
    b.append(Para("Per channel (the tagged file's name where the input names no channel), in %: corrected share, 95% "
                  "interval, raw share." + (f" {rest} smaller channel(s) are in the CSV." if rest > 0 else ""), cls="note"))
    b.append(_wide(d, "channel", idx, [usertext(c) for c in chans], "channel"))
    return b


def _stance(d: ReportData, names: dict[str, str], figs: list[Figure]) -> list[Block]:
    b: list[Block] = [Heading("Stance toward the West", 2, "stance")]
    L = len(d.corpus.labels)
    cls = list(range(L, len(d.targets)))
    fig = _figure("stance", plot_stance(d, names), "stance toward the West per channel",
                  "Share of the channel's tagged posts against and in favour of the West"
                  + (" over time: corrected (solid, band = 95% interval) and raw (dashed)." if d.corpus.period_kind
                     else ": corrected (filled, 95% interval) and raw (hollow)."))
    if fig:
        figs.append(fig)
        b.append(fig)
    head = [d.targets[k].split(":")[1] for k in cls]
    tables = [("channel", "channel", [usertext(c) for c in top_channels(d, MAX_CHANNEL_ROWS)],
               [list(d.cells["channel"].keys["channel"]).index(c) for c in top_channels(d, MAX_CHANNEL_ROWS)])]
    if d.corpus.period_kind:
        keys = d.cells["period"].keys
        tables.append(("period", d.corpus.period_kind, [txt(period_label(pd.Timestamp(p), d.corpus.period_kind)) for p in keys["period"]],
                       list(range(len(keys)))))
    for name, what, first, idx in tables:
        e = d.cells[name].est
        rows = [[first[r], txt(f"{int(e.n[i]):,}")] + [share_cell(e.raw[i, k], e.corr[i, k], e.lo[i, k], e.hi[i, k], e.n[i], True)
                                                      for k in cls] for r, i in enumerate(idx)]
        b.append(Para(f"Per {what}, in %: corrected share, 95% interval, raw share (in brackets: raw share of a class that "
                      "cannot be corrected)." + (" Per channel and period: in the CSV." if name != "channel" else ""), cls="note"))
        b.append(Table([what, "posts", *head], rows, "lr" + "r" * len(cls)))
    b.append(Para("Each stance class is corrected against the rest, so the three corrected shares need not sum to 100%.", cls="note"))
    return b


def _cooc(d: ReportData, cb: Codebook) -> list[Block]:
    co, per = d.cooc
    rows = []
    for j, f in enumerate(cb.frames):
        cells = [txt(f"`{f}`"), txt(f"{int(per[j]):,}")]
        for t in range(len(cb.topics)):
            cells.append(txt(f"{int(co[j, t]):,} ({co[j, t] / per[j]:.0%})" if per[j] else "0"))
        rows.append(cells)
    return [Heading("Frames and topics together", 2, "cooccurrence"),
            Para("Posts the model gave both the frame (row) and the topic (column), and their share of the frame's posts. "
                 "These are the model's labels, not corrected (the correction works on shares, not on pairs of labels)."),
            Table(["frame", "posts", *cb.topics], rows, "lr" + "r" * len(cb.topics))]


def _evidence(d: ReportData, cb: Codebook) -> list[Block]:
    b: list[Block] = [Heading("Evidence per frame", 2, "evidence"),
                      Para("For each frame, the evidence paragraphs of the posts the model scored highest (one per channel, "
                           "no text twice), with the codebook's cue phrases marked. A paragraph without a marked phrase is "
                           "evidence the model found without any cue.", cls="note")]
    for f in cb.frames:
        qs = d.quotes.get(f, [])
        b.append(Heading(f"{f}: {cb.label(f).name}", 3, f"ev-{f}"))
        if not qs:
            b.append(Para("No post got this frame.", cls="note"))
            continue
        rows = [[highlighted(q), usertext(q.channel), txt(q.date or "—"), usertext(q.where), txt(f"{q.score:.2f}")] for q in qs]
        b.append(Table(["paragraph", "channel", "date", "where (file, locator)", "score"], rows, "lllll", widths={0: "58%"}))
    return b


def _figure(name: str, data: bytes | None, alt: str, caption: str) -> Figure | None:
    return None if data is None else Figure(name, data, alt, caption, min(png_width(data), 957))


def blocks(d: ReportData) -> tuple[list[Block], list[Figure]]:
    """The report's blocks in reading order, and its figures (also written as PNG files beside the Markdown)."""
    import warnings

    cb = Codebook.load()
    names = names_of(d.targets)
    figs: list[Figure] = []
    with warnings.catch_warnings():   # channel names with emoji: DejaVu Sans lacks the glyph, the plot is still right
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        out = (_intro(d) + _read(d) + _prevalence(d, names, figs) + _time(d, names, figs) + _channels(d, names, figs)
               + _stance(d, names, figs) + _trust(d) + _correction(d, names) + _cooc(d, cb) + _evidence(d, cb))
    secs = ", ".join(f"{k} {v:.1f} s" for k, v in d.seconds.items())
    out.append(Para(f"Every cell (channel x period x label: posts, raw, corrected, interval) is in the CSV beside this report. "
                    f"Computed in: {secs}.", cls="note"))
    return out, figs


def cells_frame(d: ReportData) -> pd.DataFrame:
    """Long table of every cell: breakdown, channel, period, label, posts, raw, corrected, low, high, outside."""
    parts = []
    kind = d.corpus.period_kind
    for name, cells in d.cells.items():
        e = cells.est
        C, K = e.raw.shape
        periods = [period_label(pd.Timestamp(p), kind) if kind and not pd.isna(p) else "" for p in cells.keys["period"]]
        parts.append(pd.DataFrame({
            "breakdown": name, "channel": np.repeat(cells.keys["channel"].to_numpy(), K), "period": np.repeat(periods, K),
            "label": np.tile(np.array(d.targets), C), "posts": np.repeat(e.n.astype(int), K),
            "raw": e.raw.ravel().round(5), "corrected": e.corr.ravel().round(5), "low": e.lo.ravel().round(5),
            "high": e.hi.ravel().round(5), "outside_gold_rates": e.outside.ravel()}))
    return pd.concat(parts, ignore_index=True)


def write_report(d: ReportData, out: Path) -> list[Path]:
    """Write ``out`` (HTML), ``<stem>.md`` with ``<stem>_plots/``, and ``<stem>.cells.csv``, each atomically."""
    out = Path(out)
    stem = out.with_suffix("")
    bl, figs = blocks(d)
    plots = Path(f"{stem}_plots")
    page = render_html(bl, "classify corpus report")
    md = render_markdown(bl, plots_dir=plots.name)
    tmp = plots.with_name(f".{plots.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for f in figs:
        (tmp / f"{f.name}.png").write_bytes(f.png)
    if plots.exists():
        shutil.rmtree(plots)
    tmp.rename(plots)
    md_path, csv_path = Path(f"{stem}.md"), Path(f"{stem}.cells.csv")
    atomic_write_text(md_path, md)
    frame = cells_frame(d)
    atomic_write(csv_path, lambda p: frame.to_csv(p, index=False))
    atomic_write_text(out, page)
    return [out, md_path, plots, csv_path]
