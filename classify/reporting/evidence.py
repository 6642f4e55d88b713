"""Quotable evidence per frame, with the codebook's cue phrases marked, and frame x topic co-occurrence.

For each frame the paragraphs the model gave as evidence, from the posts it scored highest, one
text once and at most ``PER_CHANNEL`` per channel (so one prolific channel does not fill the list),
each with channel, date and where to find it (message link when the input had one, else file and
locator). Cue phrases are located with the codebook's own patterns (``CueMatcher.patterns``), so a
highlighted phrase is exactly what the cue rule would match; a paragraph without one is evidence
the model found without a cue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..learners.cues import YO, CueMatcher
from .corpus import Corpus

TOP_EVIDENCE = 3


PER_CHANNEL = 1


SCAN = 400
"""Highest-scoring posts looked at per frame before giving up on variety."""



@dataclass
class Quote:
    frame: str
    score: float
    channel: str
    date: str
    where: str
    paragraph: int
    text: str
    spans: list[tuple[int, int]]      # cue matches in ``text`` (start, end)


def cue_spans(matcher: CueMatcher, label: str, text: str) -> list[tuple[int, int]]:
    """Where the label's cues match in ``text`` (ё read as е, same positions, as the cue rule does)."""
    pat = matcher.patterns.get(label)
    if pat is None:
        return []
    return [(m.start(), m.end()) for m in pat.finditer(text.translate(YO)) if m.end() > m.start()]


def locate(row: pd.Series) -> str:
    """A message link when the tag row carries one, else ``file, locator``."""
    loc = str(row["locator"])
    if loc.startswith(("http://", "https://")):
        return loc
    return f"{row['source']}, {loc}"


def top_quotes(corpus: Corpus, cb: Codebook, k: int = TOP_EVIDENCE) -> dict[str, list[Quote]]:
    """Up to ``k`` quotes per frame (see the module docstring), frames in codebook order."""
    matcher = CueMatcher(cb)
    out: dict[str, list[Quote]] = {}
    for f in cb.frames:
        j = corpus.labels.index(f)
        idx = np.flatnonzero(corpus.Y[:, j])
        order = idx[np.argsort(-corpus.P[idx, j], kind="stable")][:SCAN]
        quotes, seen, per = [], set(), {}
        for i in order:
            row = corpus.rows.iloc[i]
            ev = row["evidence"].get(f) if isinstance(row["evidence"], dict) else None
            if ev is None or (hasattr(ev, "__len__") and len(ev) == 0):
                continue
            first = ev[0] if isinstance(ev, (list, tuple, np.ndarray)) else ev
            text = str(first.get("text") or "").strip() if isinstance(first, dict) else ""
            key = " ".join(text.lower().split())
            if not text or key in seen or per.get(row["channel"], 0) >= PER_CHANNEL:
                continue
            seen.add(key)
            per[row["channel"]] = per.get(row["channel"], 0) + 1
            when = row["when"]
            quotes.append(Quote(f, float(corpus.P[i, j]), row["channel"], "" if pd.isna(when) else when.strftime("%Y-%m-%d"),
                                locate(row), int(first.get("paragraph", 0)), text, cue_spans(matcher, f, text)))
            if len(quotes) >= k:
                break
        out[f] = quotes
    return out


def cooccurrence(corpus: Corpus) -> tuple[np.ndarray, np.ndarray]:
    """(frames x topics) posts with both, and the posts per frame (model decisions, uncorrected)."""
    nt = corpus.n_topics
    T = corpus.Y[:, :nt].astype(np.int64)
    F = corpus.Y[:, nt:len(corpus.labels)].astype(np.int64)
    return F.T @ T, F.sum(0)
