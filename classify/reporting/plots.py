"""The corpus report's plots, each drawn once as a PNG from numbers already computed (``build``).

Corrected shares are solid with their 95% interval as a band or bar; raw shares (the model's own
counts) are grey and dashed or hollow, so the two are never confused. Points of fewer than
``MIN_PLOT_POSTS`` posts are left out of the plots over time (they are in the tables and the CSV).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..render.document import DPI, FIG_WIDTH, PALETTE, RC, png
from .build import ReportData
from .corpus import PERIODS

RAW = "#8C8C8C"


MIN_PLOT_POSTS = 20


TOP_CHANNELS = 6


HEAT_CHANNELS = 15



def _pct(ax, axis: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=None))


def plot_overall(d: ReportData, names: dict[str, str]) -> bytes:
    """Whole corpus: raw (hollow grey) and corrected (filled, 95% interval) share per topic and frame."""
    import matplotlib
    from matplotlib.figure import Figure

    est = d.cells["overall"].est
    K = len(d.corpus.labels)              # stance has its own section
    y = np.arange(K)[::-1]
    c, lo, hi = est.corr[0, :K], est.lo[0, :K], est.hi[0, :K]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(FIG_WIDTH, 1.4 + 0.3 * K), dpi=DPI, layout="constrained")
        ax = fig.subplots()
        ax.scatter(est.raw[0, :K], y, facecolors="none", edgecolors=RAW, s=40, label="raw (the model's count)", zorder=3)
        ok = ~np.isnan(c)
        err = np.clip(np.vstack([c - lo, hi - c])[:, ok], 0, None)
        ax.errorbar(c[ok], y[ok], xerr=err, fmt="o", color=PALETTE[0], ms=6, capsize=3, label="corrected, 95% interval", zorder=4)
        ax.set_yticks(y, [names[t] for t in d.targets[:K]])
        ax.set_xlim(0, max(0.05, float(np.nanmax(np.r_[est.raw[0, :K], hi, 0.0])) * 1.08))
        _pct(ax, "x")
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel("share of tagged posts")
        fig.legend(loc="outside upper center", ncol=2, frameon=False)
    return png(fig)


def timeline(d: ReportData) -> tuple[list[pd.Timestamp], np.ndarray]:
    """The periods with posts, in order, and whether a calendar gap (periods without posts) precedes each."""
    code = dict(PERIODS)[d.corpus.period_kind]
    periods = [pd.Timestamp(p) for p in d.cells["period"].keys["period"]]
    gap = np.array([i > 0 and (pd.Period(periods[i - 1], code) + 1).start_time != p for i, p in enumerate(periods)], bool)
    return periods, gap


def _series(d: ReportData, name: str, k: int, channel: str | None = None):
    """Position in the timeline, raw, corrected, low and high of one target, for cells with enough posts."""
    cells = d.cells[name]
    mask = np.ones(len(cells.keys), bool) if channel is None else (cells.keys["channel"] == channel).to_numpy()
    mask = mask & (cells.est.n >= MIN_PLOT_POSTS)
    periods, _ = timeline(d)
    pos = {p: i for i, p in enumerate(periods)}
    x = np.array([pos[pd.Timestamp(p)] for p in cells.keys["period"][mask]], float)
    e = cells.est
    return x, e.raw[mask, k], e.corr[mask, k], e.lo[mask, k], e.hi[mask, k]


def _broken(x: np.ndarray, gap: np.ndarray, *ys: np.ndarray) -> tuple[np.ndarray, ...]:
    """A NaN point wherever two plotted points are not consecutive periods, so lines do not bridge gaps."""
    if len(x) < 2:
        return (x, *ys)
    xi = x.astype(int)
    at = np.flatnonzero((np.diff(xi) != 1) | gap[xi[1:]]) + 1
    return (np.insert(x, at, x[at] - 0.5), *(np.insert(y.astype(float), at, np.nan) for y in ys))


def _line(ax, d: ReportData, x, raw, corr, lo, hi, colour, label=None, band=True) -> None:
    if len(x) == 0:
        return
    x, raw, corr, lo, hi = _broken(x, timeline(d)[1], raw, corr, lo, hi)
    if not np.all(np.isnan(corr)):
        if band:
            ax.fill_between(x, lo, hi, color=colour, alpha=0.18, linewidth=0)
        ax.plot(x, corr, "-o", color=colour, ms=3, lw=1.6, label=label)
        ax.plot(x, raw, "--", color=colour, lw=1, alpha=0.6)
    else:
        ax.plot(x, raw, "--o", color=colour, ms=3, lw=1.2, alpha=0.8, label=(label + " (raw)") if label else None)


def short_label(ts: pd.Timestamp, kind: str) -> str:
    return {"day": f"{ts:%m-%d}", "week": f"{ts:%Y-%m-%d}", "month": f"{ts:%Y-%m}"}.get(kind, f"{ts.year}Q{(ts.month - 1) // 3 + 1}")


def _time_axis(ax, d: ReportData, used: np.ndarray | None = None) -> None:
    """Periods with posts as evenly spaced positions, a few labelled; a dotted line where the corpus has a gap."""
    periods, gap = timeline(d)
    lo, hi = (0, len(periods) - 1) if used is None or not len(used) else (int(used.min()), int(used.max()))
    ax.set_xlim(lo - 0.5, hi + 0.5)
    ticks = np.unique(np.linspace(lo, hi, min(3, hi - lo + 1)).round().astype(int))
    ax.set_xticks(ticks, [short_label(periods[t], d.corpus.period_kind) for t in ticks], fontsize=7.5)
    for i in np.flatnonzero(gap):
        if lo < i <= hi:
            ax.axvline(i - 0.5, color="#999999", ls=":", lw=1)


def _panel(ax, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_ylim(bottom=0)
    _pct(ax)
    ax.tick_params(axis="y", labelsize=8.5)


def plot_time(d: ReportData, names: dict[str, str]) -> bytes | None:
    """Over time, one panel per topic and frame: corrected share with band, raw dashed."""
    import matplotlib
    from matplotlib.figure import Figure

    if "period" not in d.cells or not (d.cells["period"].est.n >= MIN_PLOT_POSTS).any():
        return None
    L = len(d.corpus.labels)
    cols = 4
    rows = -(-L // cols)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(FIG_WIDTH, 1.9 * rows + 0.4), dpi=DPI, layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for k in range(L):
            _line(axes[k], d, *_series(d, "period", k), PALETTE[0] if k < d.corpus.n_topics else PALETTE[2])
            _panel(axes[k], names[d.targets[k]])
            _time_axis(axes[k], d)
        for ax in axes[L:]:
            ax.set_visible(False)
    return png(fig)


def _channel_panels(d: ReportData, chans: list[str], targets: list[int], names: dict[str, str], band: bool) -> bytes:
    """One panel per channel over its own stretch of the timeline, one line per target."""
    import matplotlib
    from matplotlib.figure import Figure

    cols = min(3, len(chans))
    rows = -(-len(chans) // cols)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(FIG_WIDTH, 2.3 * rows + 0.5), dpi=DPI, layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, ch in zip(axes, chans):
            used = []
            for c, k in enumerate(targets):
                series = _series(d, "channel_period", k, ch)
                used.append(series[0])
                colour = PALETTE[(5, 0, 2)[c]] if band else PALETTE[c % len(PALETTE)]
                _line(ax, d, *series, colour, names[d.targets[k]], band=band)
            _panel(ax, ch)
            _time_axis(ax, d, np.concatenate(used))
        for ax in axes[len(chans):]:
            ax.set_visible(False)
        _legend(fig, axes)
    return png(fig)


def top_channels(d: ReportData, k: int) -> list[str]:
    keys, n = d.cells["channel"].keys, d.cells["channel"].est.n
    return [c for c, m in zip(keys["channel"], n) if m > 0][:k]


def plot_channels(d: ReportData, names: dict[str, str]) -> bytes | None:
    """Heat map: the largest channels x labels, corrected share (raw in brackets where it cannot be corrected)."""
    import matplotlib
    from matplotlib.figure import Figure

    chans = top_channels(d, HEAT_CHANNELS)
    if len(chans) < 2:
        return None
    e = d.cells["channel"].est
    L = len(d.corpus.labels)
    idx = [list(d.cells["channel"].keys["channel"]).index(c) for c in chans]
    V = np.where(np.isnan(e.corr[idx, :L]), e.raw[idx, :L], e.corr[idx, :L])
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(FIG_WIDTH, 1.9 + 0.36 * len(chans)), dpi=DPI, layout="constrained")
        ax = fig.subplots()
        im = ax.imshow(V, cmap="Blues", vmin=0, vmax=max(0.05, float(np.nanmax(V))), aspect="auto")
        for i in range(len(chans)):
            for j in range(L):
                txt = f"{100 * V[i, j]:.0f}"
                txt = f"({txt})" if np.isnan(e.corr[idx[i], j]) else txt
                ax.text(j, i, txt, ha="center", va="center", fontsize=8,
                        color="white" if V[i, j] > 0.6 * np.nanmax(V) else "#1d1d1d")
        ax.set_xticks(range(L), [names[t] for t in d.targets[:L]], rotation=40, ha="right", fontsize=9)
        ax.set_yticks(range(len(chans)), [f"{c} ({int(e.n[i]):,})" for c, i in zip(chans, idx)], fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8, format=lambda v, _: f"{100 * v:.0f}%")
    return png(fig)


def plot_stance(d: ReportData, names: dict[str, str]) -> bytes | None:
    """Stance toward the West per channel: over time when dated (one panel per channel), else one dot per channel."""
    import matplotlib
    from matplotlib.figure import Figure

    L = len(d.corpus.labels)
    classes = [k for k in range(L, len(d.targets)) if d.targets[k] != "stance:none"]
    if "channel_period" in d.cells:
        return _channel_panels(d, top_channels(d, TOP_CHANNELS), classes, names, band=True)
    with matplotlib.rc_context(RC):
        chans = top_channels(d, HEAT_CHANNELS)
        e = d.cells["channel"].est
        idx = [list(d.cells["channel"].keys["channel"]).index(c) for c in chans]
        fig = Figure(figsize=(FIG_WIDTH, 1.3 + 0.32 * len(chans) * len(classes)), dpi=DPI, layout="constrained")
        ax = fig.subplots()
        y = np.arange(len(chans))[::-1]
        for c, k in enumerate(classes):
            yy = y + (0.18 if c == 0 else -0.18)
            colour = PALETTE[(5, 0, 2)[c % 3]]
            ax.scatter(e.raw[idx, k], yy, facecolors="none", edgecolors=colour, s=32, alpha=0.7)
            ok = ~np.isnan(e.corr[idx, k])
            err = np.clip(np.vstack([e.corr[idx, k] - e.lo[idx, k], e.hi[idx, k] - e.corr[idx, k]])[:, ok], 0, None)
            ax.errorbar(e.corr[idx, k][ok], yy[ok], xerr=err, fmt="o", color=colour, capsize=3, label=names[d.targets[k]])
        ax.set_yticks(y, chans)
        _pct(ax, "x")
        ax.set_xlabel("share of the channel's tagged posts (hollow: raw)")
        ax.legend(frameon=False, loc="lower right")
    return png(fig)


def plot_channel_frames(d: ReportData, names: dict[str, str], n_frames: int = 4) -> bytes | None:
    """The most frequent frames over time in the largest channels (corrected where possible)."""

    if "channel_period" not in d.cells:
        return None
    nt, L = d.corpus.n_topics, len(d.corpus.labels)
    overall = d.cells["overall"].est
    share = np.where(np.isnan(overall.corr[0, nt:L]), overall.raw[0, nt:L], overall.corr[0, nt:L])
    frames = [nt + j for j in np.argsort(-np.nan_to_num(share))[:n_frames]]
    return _channel_panels(d, top_channels(d, TOP_CHANNELS), frames, names, band=False)


def _legend(fig, axes) -> None:
    """One legend for all panels (a panel may lack a line the others have)."""
    seen: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=len(seen), frameon=False)
