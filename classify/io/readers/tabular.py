"""CSV, JSON Lines and Parquet from scrapers (Telethon, snscrape, t.me/s scrapers, our own output).

Scrapers agree on nothing but "one row per message", so columns are found by name (see
``shared/formats/FORMATS.md``):

* text: ``text``, ``message``, ``content`` (snscrape), ``messageText`` (Telethon CSV), or
  ``--text-col``; a file without one cannot be read at all.
* id, date, channel, forward and reactions columns are optional and found the same way. A
  snscrape ``url`` (``https://t.me/s/<channel>/<id>``) supplies channel and id when those columns
  are missing; a Telethon ``chat`` URL is reduced to the channel name.
* Reactions come as a dict, a JSON string, or a Python dict repr (Telethon writes
  ``"{'👍': 66, '🤮': 5}"``), read with ``ast.literal_eval``, which evaluates literals only.

A bad JSON line is one skipped item; a file in which no line parses is not JSON Lines at all.
Locators are ``row N`` (1-based data row) for CSV and Parquet, ``line N`` for JSON Lines.
"""

from __future__ import annotations

import ast
import io
import json
import math
import numbers
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import InputError
from .base import RawPost, Skipped

if TYPE_CHECKING:
    from ..options import ReadOptions

TEXT_COLUMNS = ("text", "message", "content", "messageText")
ID_COLUMNS = ("id", "message_id", "msg_id")
DATE_COLUMNS = ("date", "messageDatetime", "datetime", "messageDate")
CHANNEL_COLUMNS = ("channel", "chat", "channel_name")
FORWARD_COLUMNS = ("fwd_from", "forwarded_from")
REACTION_COLUMNS = ("reactions",)
URL_COLUMNS = ("url", "link")
MEDIA_COLUMNS = ("media", "has_media", "has_photo")

POST_URL_RE = re.compile(r"^(?:https?://)?(?:www\.)?t\.me/(?:s/)?(?P<chan>[A-Za-z0-9_]+)/(?P<id>\d+)/?(?:[?#].*)?$")
CHANNEL_URL_RE = re.compile(r"^(?:https?://)?(?:www\.)?t\.me/(?:s/)?(?P<chan>[A-Za-z0-9_]+)/?$")
FWD_NAME_RE = re.compile(r"from_name=(['\"])(?P<name>.*?)\1")
FWD_PEER_RE = re.compile(r"(?P<kind>channel|user|chat)_id=(?P<id>\d+)")
MAX_REPR_CHARS = 10_000  # longer "reactions" strings are not reactions; do not parse them
FALSE_WORDS = frozenset({"", "0", "false", "no", "none", "null", "nan"})


@dataclass
class Columns:
    """Which column of the file holds each field (``None`` when the file has none)."""

    text: str
    id: str | None = None
    date: str | None = None
    channel: str | None = None
    forwarded: str | None = None
    reactions: str | None = None
    url: str | None = None
    media: str | None = None


# --------------------------------------------------------------------------- columns
def _find(names: list[str], candidates: Iterable[str]) -> str | None:
    """The first candidate present in ``names``, compared case-insensitively."""
    lower = {n.lower(): n for n in reversed(names)}
    return next((lower[c.lower()] for c in candidates if c.lower() in lower), None)


def _named(path: Path, names: list[str], wanted: str | None, option: str, candidates: tuple[str, ...]) -> str | None:
    """The column the user named with ``option`` (an error if absent), else the auto-detected one."""
    if wanted is None:
        return _find(names, candidates)
    found = wanted if wanted in names else _find(names, [wanted])
    if found is None:
        raise InputError(f"{path}: no column '{wanted}' ({option}); columns found: {_list(names)}")
    return found


def _list(names: list[str]) -> str:
    shown = ", ".join(str(n) for n in names[:30])
    return (shown + f", ... ({len(names)} in all)" if len(names) > 30 else shown) or "none"


def resolve_columns(path: Path, names: list[str], opts: ReadOptions) -> Columns:
    """Map fields to columns; raise ``InputError`` when there is no text column.

    Without text there is nothing to classify, so this is a whole-file error that lists the
    columns found and says how to name the right one.
    """
    names = [str(n) for n in names]
    text = _named(path, names, opts.text_col, "--text-col", TEXT_COLUMNS)
    if text is None:
        raise InputError(
            f"{path}: no text column (looked for {', '.join(TEXT_COLUMNS)}); columns found: {_list(names)}; "
            "name the column holding the post text with --text-col"
        )
    return Columns(
        text=text,
        id=_named(path, names, opts.id_col, "--id-col", ID_COLUMNS),
        date=_named(path, names, opts.date_col, "--date-col", DATE_COLUMNS),
        channel=_named(path, names, opts.channel_col, "--channel-col", CHANNEL_COLUMNS),
        forwarded=_find(names, FORWARD_COLUMNS),
        reactions=_find(names, REACTION_COLUMNS),
        url=_find(names, URL_COLUMNS),
        media=_find(names, MEDIA_COLUMNS),
    )


# --------------------------------------------------------------------------- values
def is_missing(value: Any) -> bool:
    """None, NaN, NaT, pd.NA or an empty string: the cell has no value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def as_text(value: Any) -> str:
    """The post text of a cell; raises ``ValueError`` for a list, dict or other non-text value."""
    if is_missing(value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"text is a {type(value).__name__}, not a string")


def as_id(value: Any) -> str | None:
    """A message id as a string; ``2.0`` (an int column with gaps read as float) becomes ``"2"``."""
    if is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def as_date(value: Any) -> str | None:
    """ISO date string: strings are kept as written, timestamps formatted, epoch numbers as UTC."""
    if is_missing(value):
        return None
    if isinstance(value, (datetime, date)):  # includes pandas.Timestamp
        return value.isoformat()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), tz=timezone.utc).isoformat()
        except (ValueError, OverflowError, OSError):
            return None
    return str(value).strip()


def as_channel(value: Any) -> str | None:
    """A channel name; a ``t.me`` link (Telethon's ``chat`` column) is reduced to the username."""
    if is_missing(value):
        return None
    text = str(value).strip()
    m = CHANNEL_URL_RE.match(text)
    return m.group("chan") if m else text.lstrip("@") or None


def as_forwarded(value: Any) -> str | None:
    """The source of a forward: a name, or what a Telethon ``MessageFwdHeader`` says about it."""
    if is_missing(value):
        return None
    if isinstance(value, Mapping):
        name = value.get("from_name")
        if isinstance(name, str) and name:
            return name
        peer = value.get("from_id")
        if isinstance(peer, Mapping):
            for kind in ("channel", "user", "chat"):
                if peer.get(f"{kind}_id") is not None:
                    return f"{kind} {peer[f'{kind}_id']}"
        return None
    text = str(value).strip()
    if text.startswith("MessageFwdHeader("):
        m = FWD_NAME_RE.search(text)
        if m:
            return m.group("name")
        m = FWD_PEER_RE.search(text)
        return f"{m.group('kind')} {m.group('id')}" if m else None
    return text if text.lower() not in FALSE_WORDS else None


def parse_reactions(value: Any) -> dict[str, int]:
    """Reactions as ``{emoji: count}`` from a dict, a JSON string or a Python dict repr.

    Also reads a Telethon ``MessageReactions`` dict and a Telegram Desktop list of
    ``{type, count, emoji}``. Reactions are metadata, so anything unreadable gives ``{}`` and the
    post is kept.
    """
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy array or scalar from Parquet
        value = value.tolist()
    if isinstance(value, str):
        value = _literal(value.strip())
    if isinstance(value, Mapping):
        if isinstance(value.get("results"), list):  # Telethon MessageReactions.to_dict()
            return _reaction_list(value["results"])
        return _count_pairs(value.items())
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (list, tuple)) and len(v) == 2 for v in value):  # Parquet map column
            return _count_pairs(value)
        return _reaction_list(value)
    return {}


def _literal(text: str) -> Any:
    """JSON, else a Python literal (never code: ``ast.literal_eval`` evaluates literals only)."""
    if not text or len(text) > MAX_REPR_CHARS or text[0] not in "{[":
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: a crafted cell nested thousands deep
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _count_pairs(pairs: Iterable[tuple[Any, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, count in pairs:
        n = _as_count(count)
        if isinstance(key, str) and key and n is not None:
            out[key] = out.get(key, 0) + n
    return out


def _reaction_list(items: Iterable[Any]) -> dict[str, int]:
    """``[{emoji|type, count}]`` (Telegram Desktop) or ``[{reaction: {emoticon}, count}]`` (Telethon)."""
    pairs = []
    for r in items:
        if not isinstance(r, Mapping):
            continue
        inner = r.get("reaction")
        if isinstance(inner, Mapping):
            key = inner.get("emoticon") or inner.get("_")
        else:
            key = r.get("emoji") or r.get("type")
        pairs.append((key, r.get("count")))
    return _count_pairs(pairs)


def _as_count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def is_true(value: Any) -> bool:
    """A media flag: true unless empty, false-like ("False", "0", "None") or missing."""
    if isinstance(value, (Mapping, list, tuple)):
        return bool(value)
    if is_missing(value):
        return False
    return str(value).strip().lower() not in FALSE_WORDS


# --------------------------------------------------------------------------- rows
def row_to_post(source: str, locator: str, row: Mapping[str, Any], cols: Columns) -> RawPost | Skipped:
    """One row as a post, or a ``Skipped`` when its text cell is not text."""
    try:
        text = as_text(row.get(cols.text))
    except (ValueError, UnicodeDecodeError) as exc:
        return Skipped(source, locator, f"malformed row ({exc})")
    message_id = as_id(row.get(cols.id)) if cols.id else None
    channel = as_channel(row.get(cols.channel)) if cols.channel else None
    if cols.url and (message_id is None or channel is None):
        m = POST_URL_RE.match(str(row.get(cols.url) or "").strip())
        if m:
            message_id = message_id or m.group("id")
            channel = channel or m.group("chan")
    return RawPost(
        source,
        locator,
        text,
        message_id=message_id,
        channel=channel,
        date=as_date(row.get(cols.date)) if cols.date else None,
        forwarded_from=as_forwarded(row.get(cols.forwarded)) if cols.forwarded else None,
        reactions=parse_reactions(row.get(cols.reactions)) if cols.reactions else {},
        media=is_true(row.get(cols.media)) if cols.media else False,
    )


def _rows(source: str, records: Iterable[tuple[str, Mapping[str, Any]]], cols: Columns) -> Iterator[RawPost | Skipped]:
    for locator, row in records:
        yield row_to_post(source, locator, row, cols)


# --------------------------------------------------------------------------- CSV
def _separator(path: Path, text: str) -> str:
    """Tab for .tsv; else whichever of comma, semicolon, tab the header line holds most of."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    header = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=header.count)


def read_csv(path: Path, source: str, text: str, opts: ReadOptions) -> Iterator[RawPost | Skipped]:
    """Read a CSV export: one post per data row, every cell as a string (no "NA" -> NaN guessing).

    Raises
    ------
    InputError
        When the CSV cannot be parsed (the pandas message names the line) or has no text column.
    """
    import pandas as pd

    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=_separator(path, text))
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: no header row; expected a CSV with column names on the first line") from None
    except (pd.errors.ParserError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        m = re.search(r"line (\d+)", msg)
        where = f":line {m.group(1)}" if m else ""
        raise InputError(
            f"{path}{where}: invalid CSV ({msg}); check that fields holding commas or line breaks are quoted"
        ) from None
    cols = resolve_columns(path, list(df.columns), opts)
    records = ((f"row {i}", row) for i, row in enumerate(df.to_dict("records"), start=1))
    yield from _rows(source, records, cols)


# --------------------------------------------------------------------------- JSON Lines
def iter_lines(source: str, lines: Iterable[str]) -> Iterator[tuple[str, dict] | Skipped]:
    """Each non-blank line as ``(locator, object)``, or a ``Skipped`` when it is not a JSON object.

    A generator: no list of lines or objects is built, so a large dump is parsed line by line.
    """
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Skipped(source, f"line {n}", f"invalid JSON ({exc.msg} at col {exc.colno})")
            continue
        except RecursionError:
            yield Skipped(source, f"line {n}", "invalid JSON (nested too deeply)")
            continue
        if not isinstance(obj, dict):
            yield Skipped(source, f"line {n}", f"not a JSON object (a {type(obj).__name__})")
            continue
        yield (f"line {n}", obj)


def read_jsonl(path: Path, source: str, text: str | Callable[[], Iterable[str]], opts: ReadOptions) -> Iterator[RawPost | Skipped]:
    """Read JSON Lines (snscrape, Telethon ``to_dict``, our own output): one object per line.

    A line that is not a JSON object is skipped and counted; only a file where no line is one
    raises ``InputError`` (one message saying the file is not JSON Lines is more useful than a
    skipped item per line). Columns are the union of the keys of all lines, since scrapers omit
    empty fields: a first pass collects them, a second pass yields the posts, so memory does not
    grow with the number of lines. ``text`` is the file's text, or a function that opens its lines
    afresh (``classify.ingest`` streams them from disk).
    """
    lines = text if callable(text) else (lambda: io.StringIO(text))
    names: dict[str, None] = {}
    first: Skipped | None = None
    for item in iter_lines(source, lines()):
        if isinstance(item, tuple):
            names.update(dict.fromkeys(item[1]))
        elif first is None:
            first = item
    if not names and first is None:
        raise InputError(f"{path}: no line is a JSON object (no lines); expected JSON Lines, one message object per line")
    if not names:
        raise InputError(f"{path}: no line is a JSON object ({first.locator}: {first.reason}); expected JSON Lines, one message object per line")
    cols = resolve_columns(path, list(names), opts)
    for item in iter_lines(source, lines()):
        yield item if isinstance(item, Skipped) else row_to_post(source, item[0], item[1], cols)


# --------------------------------------------------------------------------- Parquet
def read_parquet(path: Path, source: str, opts: ReadOptions) -> Iterator[RawPost | Skipped]:
    """Read a Parquet table (ours or a scraper's); columns are found as for CSV.

    Raises
    ------
    InputError
        When the file is not readable Parquet (e.g. truncated) or has no text column.
    """
    import pandas as pd

    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        msg = " ".join(str(exc).split())[:300]
        raise InputError(f"{path}: unreadable Parquet file ({type(exc).__name__}: {msg}); the file may be truncated — rewrite it") from None
    cols = resolve_columns(path, list(df.columns), opts)
    records = ((f"row {i}", row) for i, row in enumerate(df.to_dict("records"), start=1))
    yield from _rows(source, records, cols)
