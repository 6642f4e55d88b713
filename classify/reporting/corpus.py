"""A tagged corpus as arrays: decisions, probabilities, stance, channel and time bucket per tagged post.

Tag outputs are read only through ``classify.tagging.rows.read_tags`` (the row contract), so the
report reads every format and every version of the output the tagger writes. The time bucket is
chosen from how the dates spread: the finest of day, week, month and quarter that gives at most
``MAX_PERIODS`` periods with posts and ``MIN_PERIOD_POSTS`` posts in the median one, so a plot over
time has enough posts per point and not too many points (a corpus with a gap of years between two
collections gets months, not the quarters its span alone would ask for).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..errors import InputError
from ..tagging.rows import read_tags

NO_CHANNEL = "(no channel)"


PERIODS = (("day", "D"), ("week", "W"), ("month", "M"), ("quarter", "Q"))
"""(name, pandas period code), finest first."""


MAX_PERIODS = 36


MIN_PERIOD_POSTS = 20


@dataclass
class FileCount:
    """What one tag file held: rows by status, and the input files (``source``) they came from."""

    path: str
    rows: int
    status: dict[str, int]
    sources: dict[str, int]


@dataclass
class Corpus:
    """Tagged posts (``status == "ok"``) as arrays in codebook order; other rows are only counted."""

    files: list[FileCount]
    labels: tuple[str, ...]
    n_topics: int
    stances: tuple[str, ...]
    rows: pd.DataFrame            # ok rows: post_id, message_id, source, locator, channel, lang, when, period, evidence
    Y: np.ndarray                 # (n, L) bool: the model's decisions
    P: np.ndarray                 # (n, L) float: its probabilities
    stance: np.ndarray            # (n,) int index into stances
    SP: np.ndarray                # (n, S) stance probabilities
    period_kind: str | None       # day/week/month/quarter, None when no post has a date
    n_undated: int = 0
    status: Counter = field(default_factory=Counter)

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def n_rows(self) -> int:
        return sum(f.rows for f in self.files)


def read_tag_files(paths: list[Path]) -> list[tuple[Path, pd.DataFrame]]:
    """Each tag output (a file, or a Ray output directory of ``part-*.parquet``) as its DataFrame."""
    out = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: no such tag output; give the -o of `python -m classify.tag`")
        parts = sorted(path.glob("part-*.parquet"), key=lambda p: int(p.stem.split("-")[1])) if path.is_dir() else [path]
        if not parts:
            raise InputError(f"{path}: a directory without part-*.parquet files; give a tag output file or a Ray output directory")
        try:
            frames = [read_tags(p) for p in parts]
        except Exception as exc:  # not a tag output: one line for the user
            raise InputError(f"{path}: cannot read it as a tag output ({type(exc).__name__}: {exc}); "
                             "give the -o of `python -m classify.tag`") from None
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        missing = [c for c in ("post_id", "source", "locator", "date", "channel", "lang", "topics", "frames",
                               "stance_west", "scores", "stance_scores", "evidence", "status") if c not in df.columns]
        if missing:
            raise InputError(f"{path}: not a tag output (missing {', '.join(missing)}); give the -o of `python -m classify.tag`")
        out.append((path, df))
    return out


def load_corpus(paths: list[Path], cb: Codebook) -> Corpus:
    """Read tag outputs and build the arrays of their tagged posts (see ``Corpus``)."""
    labels = (*cb.topics, *cb.frames)
    col = {lab: j for j, lab in enumerate(labels)}
    files, oks, status = [], [], Counter()
    for path, df in read_tag_files(paths):
        st = df["status"].astype(str)
        counts = {str(k): int(v) for k, v in st.value_counts().items()}
        status.update(counts)
        files.append(FileCount(str(path), len(df), counts, {str(k): int(v) for k, v in df["source"].value_counts(sort=False).items()}))
        oks.append(df[st == "ok"])
    ok = pd.concat(oks, ignore_index=True) if len(oks) > 1 else oks[0].reset_index(drop=True)
    n, L, S = len(ok), len(labels), len(cb.stances)
    Y = np.zeros((n, L), bool)
    for i, (ts, fs) in enumerate(zip(ok["topics"].tolist(), ok["frames"].tolist())):
        for lab in (*_items(ts), *_items(fs)):
            j = col.get(lab)
            if j is not None:
                Y[i, j] = True
    P = np.array([[_num(d, lab) for lab in labels] for d in map(_mapping, ok["scores"].tolist())], dtype=float).reshape(n, L)
    SP = np.array([[_num(d, s) for s in cb.stances] for d in map(_mapping, ok["stance_scores"].tolist())],
                  dtype=float).reshape(n, S)
    sidx = {s: k for k, s in enumerate(cb.stances)}
    stance = np.array([sidx.get(s, -1) for s in ok["stance_west"].tolist()], dtype=int)
    if n and (stance < 0).any():  # a tagged post always has a stance; fall back on its probabilities
        stance = np.where(stance < 0, np.nan_to_num(SP, nan=-1).argmax(1), stance)
    P = np.where(np.isnan(P), Y.astype(float), P)   # a missing score: the decision stands in
    SP = np.where(np.isnan(SP), np.eye(S)[stance] if n else SP, SP)
    when = parse_dates(ok["date"])
    kind = choose_period(when)
    rows = pd.DataFrame({
        "post_id": ok["post_id"].astype(str).to_numpy(),
        "message_id": ok["message_id"].to_numpy() if "message_id" in ok else None,
        "source": ok["source"].astype(str).to_numpy(),
        "locator": ok["locator"].astype(str).to_numpy(),
        "channel": [c if isinstance(c, str) and c.strip() else NO_CHANNEL for c in ok["channel"].tolist()],
        "lang": [str(x) if isinstance(x, str) and x else "unknown" for x in ok["lang"].tolist()],
        "when": when,
        "evidence": [_mapping(e) for e in ok["evidence"].tolist()],
    })
    rows["period"] = period_start(when, kind) if kind else pd.NaT
    return Corpus(files, labels, len(cb.topics), tuple(cb.stances), rows, Y, P, stance, SP, kind, int(when.isna().sum()), status)


def _items(v) -> tuple:
    """A list column's value as a tuple (a list, an array from Arrow, or nothing)."""
    return () if v is None or (isinstance(v, float) and v != v) else tuple(v)


def _mapping(v) -> dict:
    """A map column's value as a dict (a dict, or Arrow's list of key/value pairs)."""
    if isinstance(v, dict):
        return v
    try:
        return dict(v) if v is not None and not isinstance(v, (str, float)) else {}
    except (TypeError, ValueError):
        return {}


def _num(d, key) -> float:
    try:
        v = d.get(key) if isinstance(d, dict) else None
        return float(v) if v is not None else np.nan
    except (TypeError, ValueError):
        return np.nan


def parse_dates(values: pd.Series) -> pd.Series:
    """UTC timestamps (NaT where missing or unreadable); dates without a zone are taken as UTC."""
    s = pd.Series(values).astype("string")
    try:
        out = pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601")
    except (ValueError, TypeError):
        out = pd.to_datetime(s, utc=True, errors="coerce", format="mixed")
    return out.reset_index(drop=True)


def choose_period(when: pd.Series) -> str | None:
    """day, week, month or quarter (see the module docstring); ``None`` when no post has a date."""
    dated = when.dropna()
    if dated.empty:
        return None
    for name, _ in PERIODS:
        counts = period_start(dated, name).value_counts()
        if len(counts) <= MAX_PERIODS and counts.median() >= MIN_PERIOD_POSTS:
            return name
    return PERIODS[-1][0]


def period_start(when: pd.Series, kind: str) -> pd.Series:
    code = dict(PERIODS)[kind]
    naive = when.dt.tz_convert(None)
    return naive.dt.to_period(code).dt.start_time


def period_label(ts: pd.Timestamp, kind: str) -> str:
    """How a bucket is written in tables: 2024-11-26, week of 2024-11-25, 2024-11, 2024 Q4."""
    if kind == "day":
        return ts.strftime("%Y-%m-%d")
    if kind == "week":
        return "week of " + ts.strftime("%Y-%m-%d")
    if kind == "month":
        return ts.strftime("%Y-%m")
    return f"{ts.year} Q{(ts.month - 1) // 3 + 1}"
