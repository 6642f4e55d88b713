"""Counts of a tagging run, for the closing summary (the corpus report is ``classify.report``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..io.readers.base import Skipped


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
    too_long: list[str] = field(default_factory=list)
    seconds: float = 0.0
    jobs: int = 1

    def count(self, rows: list[dict]) -> None:
        """Add a batch of rows (``tag_batch``'s) to the counts."""
        for r in rows:
            self.status[r["status"]] += 1
            if r["status"] == "too_long":
                self.too_long.append(f"{r['source']}:{r['locator']}")
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
        if self.too_long:
            shown = ", ".join(self.too_long[:10]) + (f", ... ({len(self.too_long) - 10} more)" if len(self.too_long) > 10 else "")
            lines.append(f"too long to tag (over the length limit; rows with status too_long): {len(self.too_long)}: {shown}")
        if self.skipped:
            lines.append(f"skipped input items (not posts, or unreadable): {len(self.skipped)}")
            for reason, n in Counter(s.reason.split(" (")[0] for s in self.skipped).most_common():
                lines.append(f"  {n} x {reason}")
        return "\n".join(lines)
