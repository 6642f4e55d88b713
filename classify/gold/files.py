"""Gold and pass files: reading JSON Lines, checking records against the codebook, loading the gold.

Training and evaluation read labels only through ``load_gold``, so a gold file that ``validate``
would reject never reaches a model.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..errors import InputError

GOLD = Path("labels/gold.jsonl")


LABEL_TASKS = ("topics", "frames")
"""Multi-label tasks; ``stance_west`` is the single-label one."""


GOLD_FIELDS = ("post_id", "dup_group", "text", "paragraphs", "lang", "topics", "frames", "stance_west", "evidence")


PASS_FIELDS = ("post_id", "topics", "frames", "stance_west", "evidence")



# ====================================================================================== reading
def read_jsonl(path: str | Path, required: Sequence[str]) -> list[dict]:
    """Records of a JSONL file, each with its line number in ``_line``.

    Raises
    ------
    InputError
        When the file is missing or empty, or a line is not a JSON object with ``required``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path (labels are read relative to the repository root)")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected a JSONL file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:line {line}: not valid UTF-8 ({exc.reason}); re-save the file as UTF-8") from None
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:line {n}: invalid JSON ({exc.msg} at column {exc.colno}); fix the line") from None
        except RecursionError:
            raise InputError(f"{path}:line {n}: invalid JSON (nested too deeply); fix the line") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:line {n}: expected a JSON object, got {type(row).__name__}")
        missing = [f for f in required if f not in row]
        if missing:
            raise InputError(f"{path}:line {n}: missing field(s) {', '.join(missing)}")
        row["_line"] = n
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: no records; nothing to read")
    return rows


def sha256_of(path: str | Path) -> str:
    """Hash of a file's bytes, so reports say exactly which inputs they came from."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ====================================================================================== checking
def check_record(row: dict, cb: Codebook, where: str, n_paragraphs: int | None = None) -> list[str]:
    """Problems of one labelled record, as one-line messages (empty when it is valid).

    Checks that topics and frames are lists of codebook ids without repeats, that the stance is a
    codebook stance, and that ``evidence`` gives existing paragraph numbers for exactly the marked
    frames (the codebook asks for at least one paragraph per frame).
    """
    frames = row["frames"] if isinstance(row.get("frames"), list) else []
    return check_labels(row, cb, where) + check_evidence(row.get("evidence"), frames, where, n_paragraphs, cb.frames)


def check_labels(row: dict, cb: Codebook, where: str) -> list[str]:
    problems = []
    for task in LABEL_TASKS:
        problems += _check_ids(row.get(task), task, cb, where)
    if row.get("stance_west") not in cb.stances:
        problems.append(f"{where}: stance_west must be one of {', '.join(cb.stances)}, got {row.get('stance_west')!r}")
    lead = row.get("lead_time", 0)  # seconds the annotator spent (Label Studio's lead_time)
    if isinstance(lead, bool) or not isinstance(lead, (int, float)) or lead < 0:
        problems.append(f"{where}: lead_time must be a number of seconds >= 0, got {lead!r}")
    if not isinstance(row.get("notes", ""), str):
        problems.append(f"{where}: notes must be a string, got {type(row.get('notes')).__name__}")
    return problems


def _check_ids(ids: Any, task: str, cb: Codebook, where: str) -> list[str]:
    if not isinstance(ids, list):
        return [f"{where}: '{task}' must be a list of ids, got {type(ids).__name__}"]
    problems = [f"{where}: unknown {task} id {lid!r}; use one of {', '.join(cb.labels(task))}"
                for lid in ids if lid not in cb.labels(task)]
    repeated = sorted(k for k, v in Counter(map(str, ids)).items() if v > 1)
    if repeated:
        problems.append(f"{where}: {task} lists {', '.join(repeated)} more than once")
    return problems


def check_evidence(evidence: Any, frames: list, where: str, n_paragraphs: int | None,
                    known: Sequence[str]) -> list[str]:
    """Evidence for every known marked frame (an unknown id is reported once, as an id problem)."""
    if evidence is None:
        evidence = {}
    if not isinstance(evidence, dict):
        return [f"{where}: evidence must be an object {{frame: [paragraph numbers]}}"]
    problems = []
    for f in (f for f in frames if f in known):
        paras = evidence.get(f)
        if not paras:
            problems.append(f"{where}: frame {f} has no evidence paragraph; add the paragraph number(s) that carry it")
            continue
        if not isinstance(paras, list):
            problems.append(f"{where}: evidence of {f} must be a list of paragraph numbers")
            continue
        for k in paras:
            bad_type = not isinstance(k, int) or isinstance(k, bool)
            if bad_type or k < 0 or (n_paragraphs is not None and k >= n_paragraphs):
                limit = f" (the post has paragraphs 0-{n_paragraphs - 1})" if n_paragraphs else ""
                problems.append(f"{where}: frame {f}: evidence paragraph {k!r} does not exist{limit}")
    for f in evidence:
        if f not in frames:
            problems.append(f"{where}: evidence for unmarked frame {f}; mark the frame or drop its evidence")
    return problems


def _check_gold_text(row: dict, where: str) -> list[str]:
    paras = row.get("paragraphs")
    if not isinstance(paras, list) or not paras or not all(isinstance(p, str) for p in paras):
        return [f"{where}: paragraphs must be a non-empty list of strings"]
    if row.get("text") != "\n".join(paras):
        return [f"{where}: text is not its paragraphs joined by line breaks; rebuild gold with `python -m classify.labels gold`"]
    return []


def gold_problems(rows: list[dict], cb: Codebook, path: Path) -> list[str]:
    """File-internal problems of gold records: labels, evidence, text, duplicate ids and groups."""
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for r in rows:
        where = f"{path}:line {r['_line']}"
        problems += _check_gold_text(r, where)
        n_par = len(r["paragraphs"]) if isinstance(r.get("paragraphs"), list) else None
        problems += check_record(r, cb, where, n_par)
        pid = str(r["post_id"])
        if pid in first_line:
            problems.append(f"{where}: post {pid} already labelled on line {first_line[pid]}; keep one record per post")
        first_line.setdefault(pid, r["_line"])
    return problems + _split_groups(rows, path)


def _label_key(row: dict) -> tuple:
    topics, frames = (row.get(t) if isinstance(row.get(t), list) else [] for t in LABEL_TASKS)
    return tuple(sorted(map(str, topics))), tuple(sorted(map(str, frames))), row.get("stance_west")


def _split_groups(rows: list[dict], path: Path) -> list[str]:
    """Copies of one post (same ``dup_group``) must carry the same labels, or training contradicts itself."""
    first: dict[str, dict] = {}
    problems = []
    for r in rows:
        grp = str(r.get("dup_group") or r["post_id"])
        if grp in first and _label_key(first[grp]) != _label_key(r):
            problems.append(f"{path}:line {r['_line']}: duplicate group {grp} is split: its labels differ from line "
                            f"{first[grp]['_line']} ({describe(r)} vs {describe(first[grp])}); give the copies one labelling")
        first.setdefault(grp, r)
    return problems


def describe(row: dict) -> str:
    return f"topics={row.get('topics')} frames={row.get('frames')} stance={row.get('stance_west')}"


def raise_first(problems: list[str], hint: str) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more problem(s); {hint})" if len(problems) > 1 else f"; {hint}"
        raise InputError(problems[0] + more)


# ====================================================================================== gold
def load_gold(path: str | Path = GOLD, codebook: Codebook | None = None) -> pd.DataFrame:
    """The gold file as a DataFrame, one row per post in file order, validated against the codebook.

    Training and evaluation read the labels only through this function, so a gold file that
    ``validate`` would reject never reaches a model.

    Parameters
    ----------
    path : path-like, default="labels/gold.jsonl"
    codebook : Codebook, default=None
        ``Codebook.load()`` when omitted.

    Returns
    -------
    DataFrame
        The gold fields (``post_id``, ``dup_group``, ``text``, ``paragraphs``, ``lang``, ``topics``,
        ``frames``, ``stance_west``, ``evidence``, ...) plus ``group``: the cross-validation group
        (the record's own ``group`` if given, else its ``dup_group``).

    Raises
    ------
    InputError
        Naming the file and line of the first problem (and how many more there are).

    Examples
    --------
    >>> gold = load_gold("labels/gold.jsonl")  # doctest: +SKIP
    >>> Y = label_matrix(gold, Codebook.load(), "frames")  # doctest: +SKIP
    """
    cb = codebook or Codebook.load()
    path = Path(path)
    rows = read_jsonl(path, GOLD_FIELDS)
    raise_first(gold_problems(rows, cb, path), "run `python -m classify.labels validate` for the full list")
    df = pd.DataFrame(rows).drop(columns=["_line"])
    df["post_id"] = df["post_id"].astype(str)
    df["dup_group"] = [str(g or p) for g, p in zip(df["dup_group"], df["post_id"])]
    if "group" not in df.columns:
        df["group"] = df["dup_group"]
    df["group"] = [str(g) if isinstance(g, str) and g else d for g, d in zip(df["group"], df["dup_group"])]
    for col in ("annotator", "notes"):
        if col not in df.columns:
            df[col] = ""
    if "split" not in df.columns:
        df["split"] = "train"
    if "source" not in df.columns:
        df["source"] = "unknown"
    return df.reset_index(drop=True)


def split_of(gold: pd.DataFrame, split: str) -> pd.DataFrame:
    """The posts of one split (``train`` or ``test``), renumbered from 0."""
    return gold[gold["split"] == split].reset_index(drop=True)


def label_matrix(df: pd.DataFrame, codebook: Codebook, task: str) -> np.ndarray:
    """Binary indicator matrix of shape ``(n_posts, n_labels)`` with columns in codebook order.

    For ``stance_west`` it is the one-hot matrix of the stance (columns ``codebook.stances``).

    Raises
    ------
    InputError
        When a post carries an id the codebook does not have for ``task``.
    """
    ids = codebook.labels(task)
    col = {lid: j for j, lid in enumerate(ids)}
    out = np.zeros((len(df), len(ids)), dtype=np.int64)
    values = df[task].tolist()
    for i, row in enumerate(values):
        for lid in [row] if task == "stance_west" else row:
            if lid not in col:
                raise InputError(f"post {df['post_id'].iloc[i] if 'post_id' in df else i}: unknown {task} id {lid!r}; "
                                 f"use one of {', '.join(ids)}")
            out[i, col[lid]] = 1
    return out


def stance_vector(df: pd.DataFrame, codebook: Codebook) -> np.ndarray:
    """Stance of each post as an index into ``codebook.stances``, shape ``(n_posts,)``."""
    return label_matrix(df, codebook, "stance_west").argmax(axis=1)

