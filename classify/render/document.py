"""A small document model (headings, paragraphs, tables of cells, figures) rendered twice: as Markdown
and as one self-contained HTML page (inline CSS, embedded PNGs, no scripts, no external resources).

Every table is built once as a ``Table`` of ``Cell`` objects that carry both spellings, so the two
renderings cannot disagree. Reports (the evaluation's, the corpus report) compute their numbers
elsewhere; this module only lays them out.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DPI = 110


FIG_WIDTH = 8.7          # inches: 957 px at DPI, inside the 1000 px page


# Okabe-Ito: distinguishable with the common colour-vision deficiencies; the reference is grey + hatched.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")


DASH = "\u2014"



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
    return Cell(md_escape(s), html.escape(s))


def _inline_html(s: str) -> str:
    out = html.escape(s)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\[([^\]]+)\]\((#[\w-]+)\)", r'<a href="\2">\1</a>', out)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)


def md_escape(s: str) -> str:
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", s)


def md_table(t: Table) -> str:
    if t.groups:
        names, i = [], 0
        for label, n in t.groups:
            names += [f"{label} {h}".strip() for h in t.header[i:i + n]]
            i += n
    else:
        names = list(t.header)
    lines = ["| " + " | ".join(md_escape(h) for h in names) + " |",
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


def render_markdown(blocks: Sequence[Block], plots_dir: str = "plots") -> str:
    """Markdown for the blocks (plots as relative links to ``<plots_dir>/<name>.png``)."""
    parts = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            parts.append(b.md)
        elif isinstance(b, Table):
            parts.append(md_table(b))
        else:
            parts.append(f"![{b.alt}]({plots_dir}/{b.name}.png)\n\n{b.caption}")
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
mark { background: #ffe08a; padding: 0 1px; border-radius: 2px; }
td.quote { font-size: 13.5px; max-width: 620px; }
.warn { color: #a33b00; font-weight: 600; }
.okay { color: #2d6a2d; }
"""


def is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def f3(x: Any) -> str:
    return DASH if is_missing(x) else f"{x:.3f}"


def f2(x: Any) -> str:
    return DASH if is_missing(x) else f"{x:.2f}"


def fci(ci: Sequence[float] | None) -> str:
    return "" if not ci or any(is_missing(v) for v in ci) else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


RC = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": 10.5,
      "ytick.labelsize": 10.5, "legend.fontsize": 10.5, "font.family": "DejaVu Sans",
      "axes.spines.top": False, "axes.spines.right": False}


def png(fig: Any) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def png_width(png: bytes) -> int:
    return int.from_bytes(png[16:20], "big")   # IHDR width

