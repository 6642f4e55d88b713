"""Counts of a tagging run, for the closing summary, and a small HTML page of label prevalence."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .._cli import atomic_write
from ..io.readers.base import Skipped
from .rows import read_tags


@dataclass
class TagSummary:
    """Counts for the closing summary."""

    n_posts: int = 0
    n_tagged: int = 0
    n_resumed: int = 0
    status: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    stance: Counter = field(default_factory=Counter)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    jobs: int = 1

    def count(self, rows: list[dict]) -> None:
        """Add a batch of rows (``tag_batch``'s) to the counts."""
        for r in rows:
            self.status[r["status"]] += 1
            self.labels.update(r["labels"])
            if r["stance_west"]:
                self.stance[r["stance_west"]] += 1
        self.n_tagged += len(rows)

    def text(self) -> str:
        rate = self.n_tagged / self.seconds if self.seconds > 0 else float("nan")
        workers = f", {self.jobs} worker processes" if self.jobs > 1 else ""
        lines = [f"posts: {self.n_posts} rows written ({self.n_resumed} from a previous run), {self.n_tagged} tagged now in {self.seconds:.1f} s ({rate:,.0f} posts/s{workers})",
                 "status: " + (", ".join(f"{k} {v}" for k, v in self.status.most_common()) or "-")]
        if self.labels:
            lines.append("labels: " + ", ".join(f"{k} {v}" for k, v in self.labels.most_common()))
        if self.stance:
            lines.append("stance_west: " + ", ".join(f"{k} {v}" for k, v in self.stance.most_common()))
        if self.skipped:
            lines.append(f"skipped input items (not posts, or unreadable): {len(self.skipped)}")
            for reason, n in Counter(s.reason.split(" (")[0] for s in self.skipped).most_common():
                lines.append(f"  {n} x {reason}")
        return "\n".join(lines)


def summary_html(tags_path: Path, out: Path) -> Path:
    """A small report: label prevalence by week (posts with dates), as a plot, plus counts."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = read_tags(tags_path)
    ok = df[df["status"] == "ok"].copy()
    ok["when"] = pd.to_datetime(ok["date"], errors="coerce", utc=True)
    dated = ok.dropna(subset=["when"])
    parts = [f"<h1>classify: tagging summary</h1><p>{len(df)} posts, {len(ok)} tagged, source file {tags_path.name}.</p>"]
    counts = Counter(lbl for row in ok["topics"].tolist() + ok["frames"].tolist() for lbl in row)
    parts.append("<table><tr><th>label</th><th>posts</th><th>share</th></tr>" + "".join(
        f"<tr><td>{k}</td><td>{v}</td><td>{v / max(len(ok), 1):.1%}</td></tr>" for k, v in counts.most_common()) + "</table>")
    if len(dated):
        dated["week"] = dated["when"].dt.tz_convert(None).dt.to_period("W").dt.start_time
        labels = [k for k, _ in counts.most_common(8)]
        table = pd.DataFrame({lbl: dated.apply(lambda r, lbl=lbl: lbl in r["topics"] or lbl in r["frames"], axis=1) for lbl in labels})
        table["week"] = dated["week"].values
        prev = table.groupby("week").mean()
        fig, ax = plt.subplots(figsize=(9, 4), dpi=110)
        prev.plot(ax=ax, marker="o")
        ax.set_ylabel("share of posts")
        ax.set_title("Label prevalence by week")
        ax.legend(fontsize=9, ncol=2)
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png")
        plt.close(fig)
        parts.append(f'<img alt="prevalence by week" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">')
    else:
        parts.append("<p>No post in the input has a date (web-view copies carry none), so there is no plot over time.</p>")
    html = "<!doctype html><meta charset='utf-8'><title>classify tagging summary</title><style>body{font-family:sans-serif;max-width:1000px;margin:auto}td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style>" + "".join(parts)
    atomic_write(out, lambda p: p.write_text(html, encoding="utf-8"))
    return out

