"""The codebook: the only source of label ids, loaded from ``labels/codebook.yaml`` and validated.

Every other module takes label ids from a ``Codebook``, never from literals; matrices over labels
have their columns in the codebook's order (``topics``, ``frames``, ``stances``), the way
scikit-learn orders ``classes_``.

Where the file comes from (first that applies):

1. the ``path`` argument of ``Codebook.load``;
2. the environment variable ``CLASSIFY_CODEBOOK``;
3. ``labels/codebook.yaml`` of the repository the package sits in (a checkout or an editable
   install), found relative to this file, not to the current directory, so that running a command
   from another folder cannot silently pick up another project's codebook;
4. ``classify/codebook.yaml``, a byte-identical copy shipped as package data, so that a
   non-editable install works outside the repository. ``tests/test_codebook.py`` fails when the
   two copies differ: edit ``labels/codebook.yaml``, then copy it over the packaged one.

Examples
--------
>>> cb = Codebook.load()
>>> cb.topics
('cyber', 'energy', 'ukraine', 'brics')
>>> cb.task_of("peace_and_dialogue")
'frames'
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .errors import CodebookError

TASKS = ("topics", "frames", "stance_west")
"""The label sections, in the order their labels are numbered."""
STANCES = ("against", "favor", "none")
"""The stance ids fixed by the codebook text; ``NO_STANCE`` is the cue rule's default."""
NO_STANCE = "none"
ENV_VAR = "CLASSIFY_CODEBOOK"
LABEL_FIELDS = ("id", "name", "definition", "include", "exclude", "cues")
OPTIONAL_LABEL_FIELDS = ("cue_frames",)
TOP_LEVEL = ("name", "version", "unit", *TASKS)
ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
PACKAGED = Path(__file__).with_name("codebook.yaml")
REPO_COPY = Path(__file__).resolve().parent.parent / "labels" / "codebook.yaml"


@dataclass(frozen=True)
class Label:
    """One label of the codebook.

    Attributes
    ----------
    id : str
        The fixed id used in gold files, models and reports.
    task : str
        ``topics``, ``frames`` or ``stance_west``.
    name, definition : str
        Human-readable name and definition (for reports and annotators).
    include, exclude : tuple of str
        What the label covers and what it explicitly does not.
    cues : tuple of str
        Case-insensitive regular expressions (English and Russian) that signal the label.
    cue_frames : tuple of str
        Stance labels only: frames whose cues make the cue rule predict this stance.
    """

    id: str
    task: str
    name: str
    definition: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    cues: tuple[str, ...]
    cue_frames: tuple[str, ...] = ()


@dataclass(frozen=True)
class Codebook:
    """Label ids (ordered), definitions and cues of one codebook version.

    Build it with ``Codebook.load()``; the constructor does not validate.

    Attributes
    ----------
    version : str
        Codebook version; saved models record it and refuse to load under another one.
    name : str
        Title of the codebook.
    path : str
        The file it was loaded from.
    sha256 : str
        Hash of that file's bytes, for reports that must say exactly which codebook they used.
    entries : tuple of Label
        Every label, topics first, then frames, then stances, each in file order.
    """

    version: str
    name: str
    path: str
    sha256: str
    entries: tuple[Label, ...]

    @property
    def topics(self) -> tuple[str, ...]:
        """Topic ids in codebook order."""
        return self.labels("topics")

    @property
    def frames(self) -> tuple[str, ...]:
        """Frame ids in codebook order (the codebook's numbering)."""
        return self.labels("frames")

    @property
    def stances(self) -> tuple[str, ...]:
        """Stance ids in codebook order: ``against``, ``favor``, ``none``."""
        return self.labels("stance_west")

    @property
    def no_stance(self) -> str:
        """The stance meaning "no evaluation of the West" (the cue rule's default)."""
        return NO_STANCE

    def labels(self, task: str) -> tuple[str, ...]:
        """Ids of ``task`` (``topics``, ``frames`` or ``stance_west``) in codebook order.

        Raises
        ------
        CodebookError
            For any other task name.
        """
        if task not in TASKS:
            raise CodebookError(f"{self.path}: unknown task {task!r}; expected one of {', '.join(TASKS)}")
        return tuple(e.id for e in self.entries if e.task == task)

    def label(self, label_id: str) -> Label:
        """The ``Label`` with this id.

        Raises
        ------
        CodebookError
            When the id is not in the codebook (the message lists the known ids).
        """
        for e in self.entries:
            if e.id == label_id:
                return e
        raise CodebookError(f"{self.path}: unknown label id {label_id!r}; known ids: {', '.join(e.id for e in self.entries)}")

    def task_of(self, label_id: str) -> str:
        """``topics``, ``frames`` or ``stance_west`` for a label id."""
        return self.label(label_id).task

    def index(self, label_id: str) -> int:
        """Column of ``label_id`` in matrices of its task (its position in codebook order)."""
        return self.labels(self.task_of(label_id)).index(label_id)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Codebook:
        """Load and validate a codebook (see the module docstring for the default file).

        Parameters
        ----------
        path : path-like, default=None
            A codebook YAML file; ``None`` looks in ``$CLASSIFY_CODEBOOK``, then the repository's
            ``labels/codebook.yaml``, then the packaged copy.

        Returns
        -------
        Codebook
            Cached per file and modification time, so repeated loads are free and an edited file
            is re-read.

        Raises
        ------
        CodebookError
            One line naming the file, the line and the label: unreadable file, bad YAML, unknown or
            misplaced section, missing field, bad or duplicate id, invalid cue regex, unknown frame
            in ``cue_frames``.
        """
        p = resolve_path(path)
        try:
            st = p.stat()
        except OSError as exc:
            raise CodebookError(f"{p}: cannot read the codebook ({exc.strerror}); pass the path of labels/codebook.yaml "
                                f"or set {ENV_VAR}") from None
        return _load(str(p), st.st_mtime_ns, st.st_size)


def resolve_path(path: str | os.PathLike | None = None) -> Path:
    """The codebook file ``Codebook.load(path)`` reads (see the module docstring for the order)."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return REPO_COPY if REPO_COPY.exists() else PACKAGED


# ----------------------------------------------------------------------------------- loading
@lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int, size: int) -> Codebook:
    """Parse and validate one file; the cache key includes mtime and size so edits are seen."""
    p = Path(path)
    raw = p.read_bytes()
    data, lines = _parse(p, raw)
    _check_top_level(p, data, lines)
    seen: dict[str, str] = {}
    entries = [_label(p, task, k, item, lines, seen) for task in TASKS for k, item in enumerate(data[task])]
    cb = Codebook(version=data["version"], name=str(data.get("name", "")), path=str(p),
                  sha256=hashlib.sha256(raw).hexdigest(), entries=tuple(entries))
    _check_stances(p, cb, data, lines)
    return cb


def _parse(p: Path, raw: bytes) -> tuple[Any, dict[tuple, int]]:
    """YAML data plus the line of every node (by path), so later errors can point at a line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodebookError(f"{p}:byte {exc.start}: not UTF-8 text; re-save the codebook as UTF-8") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CodebookError(f"{p}:{where}: invalid YAML ({problem}); fix the syntax (quote regexes in single quotes)") from None
    lines: dict[tuple, int] = {}
    if node is not None:
        _node_lines(node, (), lines)
    return data, lines


def _node_lines(node: yaml.Node, path: tuple, out: dict[tuple, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, key.value)] = key.start_mark.line + 1
            _node_lines(value, (*path, key.value), out)
            out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for k, item in enumerate(node.value):
            _node_lines(item, (*path, k), out)


def _where(p: Path, lines: dict[tuple, int], path: tuple) -> str:
    """``file:line N`` for the closest node of ``path`` that has a line."""
    while path and path not in lines:
        path = path[:-1]
    return f"{p}:line {lines[path]}" if path in lines else str(p)


def _check_top_level(p: Path, data: Any, lines: dict[tuple, int]) -> None:
    if not isinstance(data, dict):
        raise CodebookError(f"{p}: expected a mapping with the sections {', '.join(TOP_LEVEL)}; "
                            "is this labels/codebook.yaml?")
    for key in data:
        if key not in TOP_LEVEL:
            raise CodebookError(f"{_where(p, lines, (key,))}: unknown section {key!r}; "
                                f"the sections are {', '.join(TOP_LEVEL)}")
    for key in ("version", *TASKS):
        if key not in data:
            raise CodebookError(f"{p}: missing section '{key}'; add it (see shared/spec/codebook.md)")
    if not isinstance(data["version"], str):
        raise CodebookError(f"{_where(p, lines, ('version',))}: version must be a quoted string "
                            f"(version: \"{data['version']}\"), not {type(data['version']).__name__}")
    for task in TASKS:
        if not isinstance(data[task], list) or not data[task]:
            raise CodebookError(f"{_where(p, lines, (task,))}: section '{task}' must be a non-empty list of labels")


def _label(p: Path, task: str, k: int, item: Any, lines: dict[tuple, int], seen: dict[str, str]) -> Label:
    """Validate one label mapping; ``seen`` maps ids already read to their section."""
    place = f"{task}[{k}]"
    where = _where(p, lines, (task, k))
    if not isinstance(item, dict):
        raise CodebookError(f"{where}: {place}: expected a mapping with {', '.join(LABEL_FIELDS)}")
    lid = item.get("id")
    if isinstance(lid, str):
        place = f"{place} ({lid})"
    missing = [f for f in LABEL_FIELDS if f not in item]
    if missing:
        raise CodebookError(f"{where}: {place}: missing field(s) {', '.join(missing)}")
    unknown = [f for f in item if f not in LABEL_FIELDS + OPTIONAL_LABEL_FIELDS]
    if unknown:
        raise CodebookError(f"{_where(p, lines, (task, k, unknown[0]))}: {place}: unknown field(s) {', '.join(map(str, unknown))}; "
                            f"a label has {', '.join(LABEL_FIELDS + OPTIONAL_LABEL_FIELDS)}")
    if not isinstance(lid, str) or not ID_RE.match(lid):
        raise CodebookError(f"{_where(p, lines, (task, k, 'id'))}: {place}: invalid id {lid!r}; ids are lower_snake_case")
    if lid in seen:
        raise CodebookError(f"{_where(p, lines, (task, k, 'id'))}: {place}: duplicate id {lid!r} (already in {seen[lid]}); ids must be unique")
    seen[lid] = task
    for f in ("name", "definition"):
        if not isinstance(item[f], str) or not item[f].strip():
            raise CodebookError(f"{_where(p, lines, (task, k, f))}: {place}: '{f}' must be a non-empty string")
    for f in ("include", "exclude", "cues", *OPTIONAL_LABEL_FIELDS):
        value = item.get(f, [])
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise CodebookError(f"{_where(p, lines, (task, k, f))}: {place}: '{f}' must be a list of strings")
    for n, cue in enumerate(item["cues"]):
        _check_cue(cue, f"{_where(p, lines, (task, k, 'cues', n))}: {place}")
    return Label(id=lid, task=task, name=item["name"].strip(), definition=" ".join(item["definition"].split()),
                 include=tuple(item["include"]), exclude=tuple(item["exclude"]), cues=tuple(item["cues"]),
                 cue_frames=tuple(item.get("cue_frames", [])))


def _check_cue(cue: str, where: str) -> None:
    """A cue must compile, and must not match the empty string (it would fire on every post)."""
    try:
        pattern = re.compile(cue, re.IGNORECASE)
    except re.error as exc:
        raise CodebookError(f"{where}: invalid cue regex {cue!r} ({exc}); fix it or quote it in single quotes") from None
    if pattern.search("") is not None:
        raise CodebookError(f"{where}: cue {cue!r} matches the empty string, so it would fire on every post; make it require text")


def _check_stances(p: Path, cb: Codebook, data: dict, lines: dict[tuple, int]) -> None:
    """Stance ids are fixed by the codebook text; ``cue_frames`` may only name frames."""
    if cb.stances != STANCES:
        raise CodebookError(f"{_where(p, lines, ('stance_west',))}: stance_west must list exactly {', '.join(STANCES)} "
                            f"in this order (got {', '.join(cb.stances)}); labels of other sections belong in topics or frames")
    for k, item in enumerate(data["stance_west"]):
        for f in item.get("cue_frames", []):
            if f not in cb.frames:
                raise CodebookError(f"{_where(p, lines, ('stance_west', k, 'cue_frames'))}: stance_west[{k}] ({item['id']}): "
                                    f"unknown frame id {f!r} in cue_frames; use one of {', '.join(cb.frames)}")
    for task in ("topics", "frames"):
        for k, item in enumerate(data[task]):
            if item.get("cue_frames"):
                raise CodebookError(f"{_where(p, lines, (task, k, 'cue_frames'))}: {task}[{k}] ({item['id']}): "
                                    "cue_frames is only for stance_west labels")
