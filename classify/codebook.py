"""The codebook: the only source of label ids, loaded from ``labels/codebook.yaml`` and validated.

Every other module takes ids from a ``Codebook``; probability matrices have their columns in the
codebook's order (``topics``, ``frames``, ``stances``), the way scikit-learn orders ``classes_``.
The file is looked up in this order: the ``path`` argument, ``$CLASSIFY_CODEBOOK``,
``labels/codebook.yaml`` under the current directory, then the copy shipped inside the package
(``classify/codebook.yaml``, kept identical to ``labels/codebook.yaml`` by a test), so an installed
package works outside the repository.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from .errors import CodebookError

TASKS = ("topics", "frames", "stance_west")
LABEL_FIELDS = ("id", "name", "definition", "include", "exclude", "cues")
ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
PACKAGED = Path(__file__).with_name("codebook.yaml")


@dataclass(frozen=True)
class Label:
    """One label of the codebook."""

    id: str
    task: str
    name: str
    definition: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    cues: tuple[str, ...]


@dataclass(frozen=True)
class Codebook:
    """Label ids (ordered), definitions and cues of one codebook version.

    Examples
    --------
    >>> cb = Codebook.load()
    >>> cb.topics
    ('cyber', 'energy', 'ukraine', 'brics')
    """

    version: str
    name: str
    path: str
    sha256: str
    entries: tuple[Label, ...]

    @property
    def topics(self) -> tuple[str, ...]:
        return self.labels("topics")

    @property
    def frames(self) -> tuple[str, ...]:
        return self.labels("frames")

    @property
    def stances(self) -> tuple[str, ...]:
        return self.labels("stance_west")

    def labels(self, task: str) -> tuple[str, ...]:
        """Ids of ``task`` (``topics``, ``frames`` or ``stance_west``) in codebook order."""
        if task not in TASKS:
            raise CodebookError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
        return tuple(e.id for e in self.entries if e.task == task)

    def label(self, label_id: str) -> Label:
        for e in self.entries:
            if e.id == label_id:
                return e
        raise CodebookError(f"unknown label id {label_id!r}; known ids: {', '.join(e.id for e in self.entries)}")

    def task_of(self, label_id: str) -> str:
        return self.label(label_id).task

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Codebook:
        """Load and validate the codebook (see the module docstring for where it is looked up)."""
        return _load(str(resolve_path(path)))


def resolve_path(path: str | os.PathLike | None = None) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ.get("CLASSIFY_CODEBOOK")
    if env:
        return Path(env)
    local = Path("labels/codebook.yaml")
    return local if local.exists() else PACKAGED


@lru_cache(maxsize=8)
def _load(path: str) -> Codebook:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise CodebookError(f"{p}: cannot read the codebook ({exc.strerror}); pass a path to labels/codebook.yaml") from None
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CodebookError(f"{p}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        raise CodebookError(f"{p}:{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise CodebookError(f"{p}: expected a mapping with version, topics, frames and stance_west")
    for key in ("version", *TASKS):
        if key not in data:
            raise CodebookError(f"{p}: missing top-level field '{key}'")
    entries: list[Label] = []
    seen: set[str] = set()
    for task in TASKS:
        items = data[task]
        if not isinstance(items, list) or not items:
            raise CodebookError(f"{p}:{task}: expected a non-empty list of labels")
        for k, item in enumerate(items):
            entries.append(_label(p, task, k, item, seen))
    if tuple(e.id for e in entries if e.task == "stance_west") != ("against", "favor", "none"):
        raise CodebookError(f"{p}:stance_west: the stance ids must be against, favor, none (in that order)")
    return Codebook(version=str(data["version"]), name=str(data.get("name", "")), path=str(p),
                    sha256=hashlib.sha256(raw).hexdigest(), entries=tuple(entries))


def _label(p: Path, task: str, k: int, item: object, seen: set[str]) -> Label:
    where = f"{p}:{task}[{k}]"
    if not isinstance(item, dict):
        raise CodebookError(f"{where}: expected a mapping with {', '.join(LABEL_FIELDS)}")
    missing = [f for f in LABEL_FIELDS if f not in item]
    if missing:
        raise CodebookError(f"{where} ({item.get('id', '?')}): missing field(s) {', '.join(missing)}")
    lid = item["id"]
    if not isinstance(lid, str) or not ID_RE.match(lid):
        raise CodebookError(f"{where}: invalid id {lid!r}; ids are lower_snake_case")
    if lid in seen:
        raise CodebookError(f"{where}: duplicate id {lid!r}")
    seen.add(lid)
    for f in ("include", "exclude", "cues"):
        if not isinstance(item[f], list) or not all(isinstance(x, str) for x in item[f]):
            raise CodebookError(f"{where} ({lid}): '{f}' must be a list of strings")
    for cue in item["cues"]:
        try:
            re.compile(cue, re.IGNORECASE)
        except re.error as exc:
            raise CodebookError(f"{where} ({lid}): invalid cue regex {cue!r}: {exc}") from None
    return Label(id=lid, task=task, name=str(item["name"]), definition=str(item["definition"]),
                 include=tuple(item["include"]), exclude=tuple(item["exclude"]), cues=tuple(item["cues"]))
