"""Input paths as files: files as given, directories expanded to the formats the ingest reads, globs.

Why: a Telegram Desktop export folder holds ``result.json`` beside ``messages.html``, ``photos/``
and other files that are not dumps; taking every file of a directory would tag a README as posts or
abort on a photo. Both tagging engines expand their inputs here, the same way.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError

INPUT_SUFFIXES = (".txt", ".json", ".jsonl", ".csv", ".tsv", ".parquet")
"""What a directory is expanded to: the suffixes of the formats the ingest reads (web-view text,
Telegram Desktop JSON, JSON Lines, CSV/TSV, Parquet). A file named on its own is read whatever its
name, by its content."""


def _dump_files(directory: Path) -> list[Path]:
    """The dumps in ``directory`` and its subfolders, sorted; hidden and ``_`` entries are left out."""
    return sorted(f for f in directory.rglob("*") if f.is_file() and f.suffix.lower() in INPUT_SUFFIXES
                  and not any(part.startswith((".", "_")) for part in f.relative_to(directory).parts))


def expand_inputs(paths: Sequence[str | Path] | str | Path) -> list[Path]:
    """Files for ``paths``: files as given, directories' dumps (``INPUT_SUFFIXES``), globs (sorted)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = _dump_files(p)
            if not found:
                raise InputError(f"{p}: directory has no input files ({', '.join(INPUT_SUFFIXES)})")
            files += found
        elif not p.exists() and glob.has_magic(str(p)):
            found = sorted(Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
            if not found:
                raise InputError(f"{p}: no file matches this pattern")
            files += found
        else:
            files.append(p)  # a missing file is reported by the ingest, in its wording
    if not files:
        raise InputError("no input files given")
    return files
