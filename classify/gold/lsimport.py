"""A Label Studio JSON export back to a pass file (``labels/rounds/<round>/passes/<name>.jsonl``).

The export must come from a project made with ``labels labelstudio config`` and ``tasks``: its
tasks carry ``post_id`` and its results use the config's control names. Nothing is lost on the way:
labels, evidence paragraphs (the paragraphs a frame was marked on), the annotator, the time spent
(``lead_time``, seconds) and the notes; the Label Studio ids stay in ``ls`` for tracing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..codebook import Codebook
from ..errors import InputError
from .files import check_evidence, check_labels, raise_first
from .labelstudio import CONTROLS, FRAMES, NOTES, STANCE, TASK_KIND, TOPICS


def _fail(where: str, what: str) -> None:
    raise InputError(f"{where}: {what}")


def read_export(path: str | Path) -> list[dict[str, Any]]:
    """The tasks of a Label Studio JSON export, checked for the shape classify writes.

    Raises
    ------
    InputError
        For a file that is not JSON, a JSON-MIN or CSV export, or an export of another project.
    """
    path = Path(path)
    if not path.is_file():
        _fail(str(path), "no such file; export the project from Label Studio as JSON")
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        _fail(str(path), f"not JSON ({exc}); export the project as JSON (not CSV or TSV)")
    if not isinstance(tasks, list):
        _fail(str(path), "not a Label Studio JSON export (expected a list of tasks)")
    for k, task in enumerate(tasks):
        where = f"{path}:task {k + 1}"
        if not isinstance(task, dict):
            _fail(where, "not a task object")
        if "data" not in task:
            _fail(where, "no data and annotations: a JSON-MIN export? export the project as JSON")
        if not isinstance(task["data"], dict) or "post_id" not in task["data"]:
            _fail(where + f" (id {task.get('id')})", "no post_id in the task data: an export of another Label Studio "
                  "project? import only projects made with `labels labelstudio config` and `tasks`")
        kind = (task["data"].get("classify") or {}).get("kind") if isinstance(task["data"].get("classify"), dict) else None
        if kind not in (None, TASK_KIND):
            _fail(where, f"task kind {kind!r} is not {TASK_KIND!r}; an export of another project?")
    return tasks


def _user(annotation: dict[str, Any]) -> str:
    """Who completed an annotation: e-mail when the export has it, else the user id."""
    by = annotation.get("completed_by")
    if isinstance(by, dict):
        return str(by.get("email") or by.get("id"))
    return str(by)


def _annotation(task: dict[str, Any], user: str | None, where: str) -> dict[str, Any] | None:
    """The one submitted annotation of a task (by ``user`` if given); ``None`` if there is none."""
    anns = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if user is not None:
        anns = [a for a in anns if user in (_user(a), str(a.get("completed_by")))]
    if len(anns) > 1:
        _fail(where, f"{len(anns)} annotations (by {', '.join(sorted({_user(a) for a in anns}))}); "
              "choose one annotator with --user EMAIL_OR_ID")
    return anns[0] if anns else None


def _index(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        _fail(where, f"paragraph index {value!r} is not a number")
        raise  # unreachable, for type checkers


def pass_record(task: dict[str, Any], ann: dict[str, Any], annotator: str, cb: Codebook, where: str) -> dict[str, Any]:
    """One pass record from an annotation: labels in codebook order, evidence from the marked
    paragraphs, notes, time spent and the Label Studio ids."""
    topics: set[str] = set()
    evidence: dict[str, set[int]] = {}
    stance, notes = None, []
    n_par = len(task["data"].get("paragraphs") or [])
    for r in ann.get("result") or []:
        name, value = r.get("from_name"), r.get("value") or {}
        if name not in CONTROLS:
            _fail(where, f"control {name!r} is not in the classify labelling config; an export of another project?")
        if name == TOPICS:
            topics |= set(value.get("choices") or [])
        elif name == STANCE:
            stance = (value.get("choices") or [None])[0]
        elif name == NOTES:
            notes += [t for t in value.get("text") or [] if str(t).strip()]
        elif name == FRAMES:
            lo, hi = sorted((_index(value.get("start"), where), _index(value.get("end"), where)))
            if lo < 0 or hi >= n_par:
                _fail(where, f"frame region on paragraphs {lo}-{hi}: paragraph {hi if hi >= n_par else lo} does not exist "
                      f"(the post has paragraphs 0-{n_par - 1})")
            for f in value.get("paragraphlabels") or []:
                if f not in cb.frames:
                    _fail(where, f"unknown frame {f!r}; the codebook's frames are {', '.join(cb.frames)}")
                evidence.setdefault(f, set()).update(range(lo, hi + 1))
    if stance is None:
        _fail(where, "no stance_west chosen; the annotation is incomplete (submit it with a stance)")
    frames = [f for f in cb.frames if f in evidence]
    rec = {"post_id": str(task["data"]["post_id"]), "topics": [t for t in cb.topics if t in topics]
           + sorted(topics - set(cb.topics)), "frames": frames, "stance_west": stance,
           "evidence": {f: sorted(evidence[f]) for f in frames}, "annotator": annotator, "notes": "\n".join(notes),
           "lead_time": round(float(ann.get("lead_time") or 0.0), 3),
           "ls": {"task": task.get("id"), "annotation": ann.get("id"), "completed_by": _user(ann),
                  "updated_at": ann.get("updated_at") or ann.get("created_at")}}
    problems = check_labels(rec, cb, where) + check_evidence(rec["evidence"], frames, where, n_par, cb.frames)
    raise_first(problems, "fix the annotation in Label Studio and export again")
    return rec


def import_export(path: str | Path, annotator: str, posts: dict[str, list[str]] | None = None,
                  user: str | None = None, codebook: Codebook | None = None) -> tuple[list[dict[str, Any]], int]:
    """Pass records of every annotated task of an export, and how many tasks are not annotated yet.

    ``posts``: the round's paragraphs by ``post_id``; a task whose post is not there, or whose
    paragraphs differ (evidence numbers would point at other lines), is an error. ``user``: keep
    only that Label Studio user's annotations (needed when several annotated the same tasks).

    Raises
    ------
    InputError
        Naming the file, the task and the problem: another project, an unknown label id, a post that
        is not in the round, two annotations of one task, a post exported twice.
    """
    cb = codebook or Codebook.load()
    path = Path(path)
    out, open_tasks, seen = [], 0, {}
    for k, task in enumerate(read_export(path)):
        pid = str(task["data"]["post_id"])
        where = f"{path}:task {k + 1} (id {task.get('id')}, post {pid})"
        paras = [p.get("text") if isinstance(p, dict) else p for p in task["data"].get("paragraphs") or []]
        if posts is not None:
            if pid not in posts:
                _fail(where, "the post is not in the round's posts; was it removed, or is this another round's export?")
            if list(posts[pid]) != paras:
                _fail(where, "the post's paragraphs differ from the round's copy; evidence numbers would point at "
                      "other lines; make the tasks again from the round")
        ann = _annotation(task, user, where)
        if ann is None:
            open_tasks += 1
            continue
        if pid in seen:
            _fail(where, f"post {pid} is also task {seen[pid]}; keep one task per post")
        seen[pid] = k + 1
        out.append(pass_record(task, ann, annotator, cb, where))
    return out, open_tasks
