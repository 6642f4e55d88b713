"""The corpus the gold labels refer to: named sources, each a set of files that the ingest reads.

``data/sources.yaml`` names them (``dumps``, ``dipromats``, ``ria``, ...). A gold post belongs to the
source whose files hold it; the evaluation leaves one source out at a time, so the name is the unit
of "a source the model was not trained on".
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from ..errors import InputError

SOURCES_FILE = Path("data/sources.yaml")


@dataclass(frozen=True)
class Source:
    """One source of the corpus: its name, file patterns (relative to the repository) and provenance."""

    name: str
    files: tuple[str, ...]
    what: str = ""
    period: str = ""
    attribution: str = ""

    def paths(self, root: Path = Path(".")) -> list[Path]:
        """The source's files, sorted; ``InputError`` when a pattern matches nothing."""
        out: list[Path] = []
        for pattern in self.files:
            found = sorted(Path(p) for p in glob.glob(str(root / pattern)))
            if not found:
                raise InputError(f"{SOURCES_FILE}: source {self.name}: no file matches {pattern!r}; is the data folder complete?")
            out += found
        return out


def load_sources(path: str | Path = SOURCES_FILE) -> dict[str, Source]:
    """The sources of ``data/sources.yaml`` by name, in file order."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file; it names the corpus files the gold refers to")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(raw, dict) or not raw:
        raise InputError(f"{path}: expected a mapping {{source name: {{files: [...], ...}}}}")
    out = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("files"), list) or not spec["files"]:
            raise InputError(f"{path}: source {name}: needs 'files', a non-empty list of file patterns")
        out[str(name)] = Source(str(name), tuple(map(str, spec["files"])), str(spec.get("what", "")),
                                str(spec.get("period", "")), str(spec.get("attribution", "")))
    return out


def load_corpus(sources: dict[str, Source] | None = None, root: Path = Path(".")) -> pd.DataFrame:
    """Every source ingested together (so duplicate groups span sources), with ``source_name``.

    One row per post as ``classify.ingest`` gives it; ``source_name`` is the source whose files hold it.
    """
    from ..io.posts import ingest

    sources = sources if sources is not None else load_sources(root / SOURCES_FILE)
    owner: dict[str, str] = {}
    files: list[Path] = []
    for src in sources.values():
        for p in src.paths(root):
            owner[p.name] = src.name
            files.append(p)
    df = ingest(files)
    df["source_name"] = df["source"].map(owner)
    return df


def representatives(corpus: pd.DataFrame) -> pd.DataFrame:
    """One post per duplicate group (its first copy in input order), posts with text only."""
    with_text = corpus[~corpus["empty_text"]]
    return with_text.drop_duplicates("dup_group", keep="first")
