"""The evaluation report's plots (per-label F1 with intervals, stance confusions, calibration), each
drawn once as a PNG from numbers already in the metrics dict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..render.document import DPI, FIG_WIDTH, PALETTE, RC, is_missing, png
from .report_tables import REFERENCE, TASK_NAMES, model_name, model_order, task_labels

REFERENCE_COLOUR = "#8C8C8C"


MARKERS = ("o", "s", "^", "D", "v", "P", "X")



def _colours(kinds: Sequence[str]) -> dict[str, str]:
    learned = [k for k in kinds if k != REFERENCE]
    out = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(learned)}
    out[REFERENCE] = REFERENCE_COLOUR
    return out


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
    labels = {t: task_labels(result, t, kinds) for t in tasks}
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
        return png(fig)


def _ci_part(v: dict[str, Any] | None, i: int) -> float:
    if not v or not v.get("ci") or is_missing(v["ci"][i]):
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
        return png(fig)


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
        return png(fig)

