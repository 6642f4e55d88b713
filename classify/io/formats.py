"""Opening a dump: size checks, decoding with errors that say what the file looks like, and format
detection from the content (Parquet, Telegram Desktop JSON, JSONL, CSV, web-view text)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError
from .language import detect_language
from .options import ReadOptions
from .readers.base import RawPost, Skipped

MAX_FILE_BYTES = 2 * 1024**3



# --------------------------------------------------------------------------- reading files
def decode(path: Path, data: bytes, encoding: str | None = None) -> str:
    """Decode bytes as UTF-8 (or ``encoding``), with errors that say what the file looks like."""
    if encoding:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise InputError(f"{path}: cannot decode as {encoding}: {exc}") from None
    bom = bom_encoding(data)
    if bom:
        try:
            return data.decode(bom)
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: starts with a {bom.upper()} byte-order mark but is not valid {bom.upper()} ({exc.reason} at byte {exc.start}); re-save it as UTF-8") from None
    if b"\x00" in data[:8192]:
        wide = utf16_without_bom(data[:8192])
        if wide:
            raise InputError(f"{path}: looks like {wide.upper()} text without a byte-order mark; re-save it as UTF-8 or pass --encoding {wide}")
        raise InputError(f"{path}: binary file (NUL bytes), not a text dump or export; pass a .txt, .json, .jsonl, .csv or .parquet file")
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


def bom_encoding(data: bytes) -> str | None:
    """``utf-32`` or ``utf-16`` when ``data`` starts with that byte-order mark (as Windows tools write it)."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return None


def utf16_without_bom(sample: bytes) -> str | None:
    """``utf-16-le`` / ``utf-16-be`` when NUL bytes fill the odd / even positions, as in mostly-ASCII UTF-16."""
    even, odd = sample[0::2], sample[1::2]
    if len(odd) < 8:
        return None
    if odd.count(0) > 0.3 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.3 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _wide(encoding: str | None) -> bool:
    """A UTF-16/32 encoding: its lines cannot be split at newline bytes, nor its head read as ASCII."""
    return bool(encoding) and encoding.lower().replace("_", "-").startswith(("utf-16", "utf16", "utf-32", "utf32"))


def _detection_head(head: bytes, encoding: str | None) -> bytes:
    """The head as UTF-8 bytes for ``detect_format``: a UTF-16 export is recognised by what it says."""
    if not _wide(encoding):
        return head
    try:
        return head.decode(encoding, errors="ignore").encode("utf-8")
    except LookupError:
        return head


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
    encoding = opts.encoding or bom_encoding(head)
    if head.startswith(b"PAR1"):
        from .readers.tabular import read_parquet

        yield from read_parquet(path, path.name, opts)
        return
    fmt = detect_format(path, _detection_head(head, encoding))
    source = path.name
    if fmt == "jsonl" and not _wide(encoding):
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

