"""Read Telegram dumps into clean, accounted-for posts.

    python -m classify.ingest data/dumps/*.txt -o corpus.parquet

Formats are detected from the content: text copied from Telegram's web view, a Telegram Desktop
JSON export (``result.json``, single chat or full account), and CSV / JSONL / Parquet from scrapers.
Every post gets a stable ``post_id`` (a hash of its cleaned text), its paragraphs (non-empty lines
after cleaning, numbered from 0 as in the codebook), a language tag and a duplicate group shared
with copies of the same post in other dumps. The summary accounts for every input item: a post, or
a skipped item with its reason.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ._cli import atomic_write, make_parser, run_main
from .errors import ConfigError, InputError
from .language import (  # noqa: F401 (re-exported)
    LANGS,
    OTHER_LANG,
    UNKNOWN_LANG,
    detect_language,
    detect_post_language,
    detect_post_languages,
)
from .readers.base import RawPost, Skipped

COLUMNS = (
    "post_id", "source", "locator", "message_id", "channel", "date", "forwarded_from", "lang",
    "text", "paragraphs", "reactions", "media", "empty_text", "dup_group",
)
MAX_CHARS = 100_000
MAX_FILE_BYTES = 2 * 1024**3
NEAR_DUP_THRESHOLD = 0.8

# Lines that are link labels or layout, not content ("Read in full", "<...>", "***").
NOISE_RE = re.compile(
    r"^(?:[\W_]*(?:read in full|read more|read|watch|full text(?: of the \w+)?)[\W_]*|<\s*\.\.\.\s*>|[\W_]*)$",
    re.IGNORECASE,
)


ODD_SPACE_RE = re.compile(r"[\u00a0\u2007\u202f\t]")
MULTISPACE_RE = re.compile(r" {2,}")
INVISIBLE_RE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f"  # control characters (NUL and friends), never text
    r"\u00ad\u200b\u200c\u2060-\u2064\ufeff"  # soft hyphen, zero-width space/non-joiner, word joiner, BOM
    r"\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]"  # bidi marks, embeddings and isolates
    r"|(?<=\w)\u200d|\u200d(?=\w)"  # zero-width joiner beside a letter (inside emoji sequences it stays)
)
"""Invisible characters that would split a word for the cues and the post id without changing what a
reader sees: dropped from the text, so a post with them gets the labels, id and duplicate group of the
same post without them."""


# --------------------------------------------------------------------------- cleaning and ids
def clean_paragraphs(text: str) -> list[str]:
    """Non-empty lines after cleaning: Unicode NFC, invisible characters dropped, spaces normalised,
    link labels and separators dropped."""
    out = []
    for raw in text.splitlines():
        visible = INVISIBLE_RE.sub("", unicodedata.normalize("NFC", raw))
        line = MULTISPACE_RE.sub(" ", ODD_SPACE_RE.sub(" ", visible)).strip()
        if not line or NOISE_RE.match(line):
            continue
        out.append(line)
    return out


def normalise_for_match(text: str) -> str:
    """Text reduced to lower-case letters and digits, for duplicate detection."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.findall(r"\w+", text)).replace("_", " ")


def make_post_id(text: str, *, fallback: str = "") -> str:
    """Stable id: the same cleaned text gives the same id on every run and machine.

    Posts without text (media only) are identified by their place in the source instead.
    """
    key = normalise_for_match(text) or f"\x00empty\x00{fallback}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- reading files
def decode(path: Path, data: bytes, encoding: str | None = None) -> str:
    """Decode bytes as UTF-8 (or ``encoding``), with errors that say what the file looks like."""
    if encoding:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise InputError(f"{path}: cannot decode as {encoding}: {exc}") from None
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path}: binary file (NUL bytes), not a text dump or export; pass a .txt, .json, .jsonl, .csv or .parquet file")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        hint = ""
        try:
            sample = data.decode("cp1251")
            if re.search(r"[А-Яа-яЁё]{3,}", sample):
                hint = " (it looks like cp1251 Cyrillic)"
        except UnicodeDecodeError:
            pass
        raise InputError(
            f"{path}:line {line}: not valid UTF-8{hint}; re-save it as UTF-8 or pass --encoding cp1251"
        ) from None


def _stream_lines(path: Path, encoding: str | None) -> Iterator[str]:
    """The lines of a text file decoded one at a time (flat memory), errors as ``decode`` gives them."""
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            try:
                yield raw.decode(encoding or ("utf-8-sig" if n == 1 else "utf-8"))
            except LookupError as exc:
                raise InputError(f"{path}: cannot decode as {encoding}: {exc}") from None
            except UnicodeDecodeError as exc:
                if encoding:
                    raise InputError(f"{path}:line {n}: cannot decode as {encoding}: {exc}") from None
                hint = " (it looks like cp1251 Cyrillic)" if re.search(r"[А-Яа-яЁё]{3,}", raw.decode("cp1251", "replace")) else ""
                raise InputError(f"{path}:line {n}: not valid UTF-8{hint}; re-save it as UTF-8 or pass --encoding cp1251") from None


def detect_format(path: Path, head: bytes) -> str:
    """``parquet``, ``json``, ``jsonl``, ``csv`` or ``webtext``, from the content first."""
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith((b"{", b"[")):
        first_line = text.split(b"\n", 1)[0].strip()
        if path.suffix.lower() == ".jsonl" or (first_line.startswith(b"{") and first_line.endswith(b"}") and b"\n{" in text):
            return "jsonl"
        return "json"
    if path.suffix.lower() in (".csv", ".tsv"):
        return "csv"
    first = text.split(b"\n", 1)[0]
    if first.count(b",") >= 1 and re.search(rb"(^|,)\"?(text|message|content|messageText)\"?(,|$)", first.strip(), re.I):
        return "csv"
    return "webtext"


@dataclass
class ReadOptions:
    """Options shared by the readers: column names for tabular input and limits."""

    text_col: str | None = None
    id_col: str | None = None
    date_col: str | None = None
    channel_col: str | None = None
    encoding: str | None = None
    max_chars: int = MAX_CHARS

    def __post_init__(self) -> None:
        if not isinstance(self.max_chars, int) or self.max_chars < 1:
            raise ConfigError(f"The 'max_chars' parameter must be an int in the range [1, inf). Got {self.max_chars!r} instead.")


def read_file(path: Path, opts: ReadOptions) -> Iterator[RawPost | Skipped]:
    """Yield the raw posts and skipped items of one file; raise ``InputError`` if it is unusable."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; pass the files in it (e.g. {path}/*.txt)")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: empty file; nothing to ingest")
    if size > MAX_FILE_BYTES:
        raise InputError(f"{path}: {size / 1e9:.1f} GB is over the 2 GB limit; split the dump")
    with path.open("rb") as fh:
        head = fh.read(65536)
    fmt = detect_format(path, head)
    source = path.name
    if fmt == "parquet":
        from .readers.tabular import read_parquet

        yield from read_parquet(path, source, opts)
        return
    if fmt == "jsonl" and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        from .readers.tabular import read_jsonl

        if b"\x00" in head[:8192]:
            decode(path, head[:8192], opts.encoding)  # raises the binary-file error
        yield from read_jsonl(path, source, lambda: _stream_lines(path, opts.encoding), opts)
        return
    text = decode(path, path.read_bytes(), opts.encoding)
    if not text.strip():
        raise InputError(f"{path}: only whitespace; nothing to ingest")
    if fmt == "json":
        from .readers.tdesktop import read_tdesktop_json

        yield from read_tdesktop_json(path, source, text)
    elif fmt == "jsonl":
        from .readers.tabular import read_jsonl

        yield from read_jsonl(path, source, text, opts)
    elif fmt == "csv":
        from .readers.tabular import read_csv

        yield from read_csv(path, source, text, opts)
    else:
        from .readers.webtext import read_webtext

        yield from read_webtext(source, text, detect=detect_language)


# --------------------------------------------------------------------------- the pipeline
def post_identity(raw: RawPost, opts: ReadOptions) -> tuple[list[str], str] | Skipped:
    """The cleaned paragraphs and the ``post_id`` of a raw post, or why it is skipped (too long).

    The one place a post's id is made: ``finish_post`` and the Ray engine's driver both call it.
    """
    if len(raw.text) > opts.max_chars:
        return Skipped(raw.source, raw.locator, f"post of {len(raw.text):,} characters is over the limit of {opts.max_chars:,} (--max-chars)")
    paragraphs = clean_paragraphs(raw.text)
    return paragraphs, make_post_id("\n".join(paragraphs), fallback=f"{raw.source}\x00{raw.locator}")


def finish_post(raw: RawPost, opts: ReadOptions) -> dict | Skipped:
    """Clean one raw post into an output row (without ``dup_group``), or skip it with a reason."""
    return finish_posts([raw], opts)[0]


def finish_posts(raws: Sequence[RawPost], opts: ReadOptions) -> list[dict | Skipped]:
    """``finish_post`` of each raw post; the languages of the batch are identified together (faster)."""
    idents = [post_identity(raw, opts) for raw in raws]
    kept = [ident for ident in idents if not isinstance(ident, Skipped)]
    langs = iter(detect_post_languages([paragraphs for paragraphs, _ in kept]))
    out: list[dict | Skipped] = []
    for raw, ident in zip(raws, idents):
        if isinstance(ident, Skipped):
            out.append(ident)
            continue
        paragraphs, post_id = ident
        out.append({
            "post_id": post_id,
            "source": raw.source,
            "locator": raw.locator,
            "message_id": None if raw.message_id is None else str(raw.message_id),
            "channel": raw.channel,
            "date": raw.date,
            "forwarded_from": raw.forwarded_from,
            "lang": next(langs),
            "text": "\n".join(paragraphs),
            "paragraphs": paragraphs,
            "reactions": dict(raw.reactions),
            "media": bool(raw.media),
            "empty_text": not paragraphs,
        })
    return out


FINISH_BATCH = 256
"""Raw posts cleaned together by ``iter_posts`` (one language-identification call per batch)."""


def iter_posts(
    paths: Iterable[str | Path], opts: ReadOptions | None = None, skipped: list[Skipped] | None = None
) -> Iterator[dict]:
    """Stream cleaned posts (no ``dup_group``) from files, appending skipped items to ``skipped``.

    This is the streaming path used by tagging: memory does not grow with the dump (raw posts are
    cleaned in batches of ``FINISH_BATCH``).
    """
    opts = opts or ReadOptions()
    batch: list = []

    def flush() -> Iterator[dict]:
        raws = [it for it in batch if not isinstance(it, Skipped)]
        finished = iter(finish_posts(raws, opts))
        for item in batch:
            row = item if isinstance(item, Skipped) else next(finished)
            if isinstance(row, Skipped):
                if skipped is not None:
                    skipped.append(row)
                continue
            yield row
        batch.clear()

    for path in paths:
        for item in read_file(Path(path), opts):
            batch.append(item)
            if len(batch) >= FINISH_BATCH:
                yield from flush()
    yield from flush()


def group_duplicates(texts: Sequence[str], ids: Sequence[str], threshold: float = NEAR_DUP_THRESHOLD) -> list[str]:
    """Duplicate group per post: identical or near-identical texts (MinHash LSH on word 3-shingles).

    The group id is the smallest ``post_id`` in the group, so it does not depend on input order.
    """
    from datasketch import MinHash, MinHashLSH

    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    by_id: dict[str, int] = {}
    for i, (text, pid) in enumerate(zip(texts, ids)):
        if pid in by_id:  # identical cleaned text
            union(i, by_id[pid])
            continue
        by_id[pid] = i
        words = normalise_for_match(text).split()
        if len(words) < 8:
            continue
        shingles = {" ".join(words[k : k + 3]) for k in range(len(words) - 2)}
        mh = MinHash(num_perm=128, seed=1)
        mh.update_batch([s.encode("utf-8") for s in shingles])
        for other in lsh.query(mh):
            union(i, other)
        lsh.insert(i, mh)
    roots: dict[int, str] = {}
    for i, pid in enumerate(ids):
        r = find(i)
        roots[r] = min(roots.get(r, pid), pid)
    return [roots[find(i)] for i in range(len(ids))]


def ingest(paths: Iterable[str | Path], *, text_col: str | None = None, id_col: str | None = None,
           date_col: str | None = None, channel_col: str | None = None, encoding: str | None = None,
           max_chars: int = MAX_CHARS) -> pd.DataFrame:
    """Read dumps into a DataFrame with the columns of ``COLUMNS``, one row per post, input order.

    Skipped items (service messages, unreadable messages, over-long posts) are listed in
    ``df.attrs["skipped"]`` as dicts with ``source``, ``locator`` and ``reason``.

    Raises
    ------
    InputError
        When a whole file is unusable (missing, empty, binary, wrong encoding, truncated JSON, ...).

    Examples
    --------
    >>> df = ingest(["data/dumps/000_51aa832bcd877796.txt"])  # doctest: +SKIP
    >>> df[["post_id", "lang", "text"]].head()  # doctest: +SKIP
    """
    opts = ReadOptions(text_col, id_col, date_col, channel_col, encoding, max_chars)
    skipped: list[Skipped] = []
    rows = list(iter_posts(paths, opts, skipped))
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "dup_group"])
    df["dup_group"] = group_duplicates(df["text"].tolist(), df["post_id"].tolist()) if len(df) else []
    df = df[list(COLUMNS)]
    df.attrs["skipped"] = [s.__dict__ for s in skipped]
    return df


# --------------------------------------------------------------------------- output
def to_serialisable(df: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """Lists and dicts as JSON strings for CSV; Parquet/JSONL keep them native."""
    if fmt != "csv":
        return df
    out = df.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, (list, dict))).any():
            out[col] = out[col].map(lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v)
    return out


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as .parquet, .csv or .jsonl, atomically."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("parquet", "csv", "jsonl"):
        raise ConfigError(f"{path}: output must end in .parquet, .csv or .jsonl")
    data = to_serialisable(df, fmt)

    def write(tmp: Path) -> None:
        if fmt == "parquet":
            import pyarrow as pa

            # Reactions as a map (emoji -> count): a struct would need a field per emoji ever seen,
            # and cannot be written at all when no post has reactions.
            table = pa.Table.from_pandas(data.drop(columns=["reactions"]), preserve_index=False) if "reactions" in data.columns else None
            if table is not None:
                col = pa.array([list((d or {}).items()) for d in data["reactions"]], type=pa.map_(pa.string(), pa.int64()))
                table = table.append_column("reactions", col).select(list(data.columns))
                import pyarrow.parquet as pq

                pq.write_table(table, tmp)
            else:
                data.to_parquet(tmp, index=False)
        elif fmt == "csv":
            data.to_csv(tmp, index=False)
        else:
            data.to_json(tmp, orient="records", lines=True, force_ascii=False)

    return atomic_write(path, write)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by ``write_table`` (lists and dicts restored from CSV)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt == "parquet":
        df = pd.read_parquet(path)
    elif fmt == "jsonl":
        df = pd.read_json(path, lines=True, dtype=False)
    elif fmt == "csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        for col in df.columns:
            if df[col].str.startswith(("[", "{")).all() and len(df):
                df[col] = df[col].map(json.loads)
    else:
        raise ConfigError(f"{path}: expected .parquet, .csv or .jsonl")
    for col in ("paragraphs",):
        if col in df.columns:
            df[col] = df[col].map(list)
    if "reactions" in df.columns:  # a Parquet map comes back as (key, value) pairs
        df["reactions"] = df["reactions"].map(lambda d: {k: int(v) for k, v in dict(d if d is not None else {}).items() if v is not None})
    for col in ("media", "empty_text"):  # CSV stores booleans as text
        if col in df.columns and not pd.api.types.is_bool_dtype(df[col]):
            df[col] = df[col].map(lambda v: v if isinstance(v, bool) else str(v).strip().lower() == "true")
    return df


def summarise(df: pd.DataFrame) -> str:
    """The printed summary: posts per source, skipped items with reasons, duplicate groups."""
    skipped = pd.DataFrame(df.attrs.get("skipped", []), columns=["source", "locator", "reason"])
    lines = ["posts per source:"]
    sources = list(dict.fromkeys([*df["source"].tolist(), *skipped["source"].tolist()]))
    for src in sources:
        part = df[df["source"] == src]
        n_skip = int((skipped["source"] == src).sum())
        langs = ", ".join(f"{k} {v}" for k, v in part["lang"].value_counts().items())
        lines.append(f"  {src}: {len(part)} posts ({int(part['empty_text'].sum())} without text), {n_skip} skipped; languages: {langs or '-'}")
    total_items = len(df) + len(skipped)
    lines.append(f"total: {total_items} input items = {len(df)} posts + {len(skipped)} skipped")
    if len(skipped):
        lines.append("skipped:")
        for reason, n in Counter(r.split(" (")[0] for r in skipped["reason"]).most_common():
            lines.append(f"  {n} x {reason}")
        for _, s in skipped.head(10).iterrows():
            lines.append(f"    {s['source']}:{s['locator']}: {s['reason']}")
    sizes = df[~df["empty_text"]].groupby("dup_group")["source"].agg(list)
    multi = sizes[sizes.map(len) > 1]
    lines.append(f"duplicate groups: {df.loc[~df['empty_text'], 'dup_group'].nunique()} unique posts with text; {len(multi)} groups with copies")
    for gid, srcs in multi.items():
        lines.append(f"  {gid}: {len(srcs)} copies in {', '.join(sorted(set(srcs)))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m classify.ingest", __doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="dump files: web-view .txt, result.json, .csv, .jsonl, .parquet")
    parser.add_argument("-o", "--output", type=Path, default=None, help="write posts to .parquet, .csv or .jsonl (default: only print the summary)")
    parser.add_argument("--text-col", default=None, help="text column of CSV/JSONL/Parquet input (default: auto-detect text/message/content)")
    parser.add_argument("--id-col", default=None, help="message id column (default: auto-detect id/message_id)")
    parser.add_argument("--date-col", default=None, help="date column (default: auto-detect date/messageDatetime)")
    parser.add_argument("--channel-col", default=None, help="channel column (default: auto-detect channel/chat)")
    parser.add_argument("--encoding", default=None, help="decode text input with this encoding instead of UTF-8 (e.g. cp1251)")
    parser.add_argument("--max-chars", type=int, default=MAX_CHARS, help="skip (and report) posts longer than this")
    args = parser.parse_args(argv)

    def job() -> int:
        df = ingest(args.paths, text_col=args.text_col, id_col=args.id_col, date_col=args.date_col,
                    channel_col=args.channel_col, encoding=args.encoding, max_chars=args.max_chars)
        print(summarise(df))
        if args.output:
            write_table(df, args.output)
            print(f"wrote {len(df)} posts to {args.output}")
        return 0

    return run_main(job, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
