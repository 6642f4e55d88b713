"""The labelled subset: gold file checks, inter-annotator agreement, label statistics, adjudication.

    python -m classify.labels validate          # gold ids, evidence, corpus membership, duplicate groups
    python -m classify.labels agreement         # labels/AGREEMENT.md from the two passes
    python -m classify.labels stats             # label counts and co-occurrence per language
    python -m classify.labels adjudicate-sheet  # every A/B disagreement, for the adjudicator
    python -m classify.labels gold              # labels/gold.jsonl from passes + adjudication + corpus

Files (JSON Lines, one object per line; label ids as in labels/codebook.yaml):

  labels/passes/a.jsonl, b.jsonl   two independent passes: post_id, topics, frames, stance_west,
                                   evidence {frame: [paragraph numbers]}, annotator, notes
  labels/adjudication.jsonl        one decision per disagreement: post_id, field, label, a, b,
                                   decision, reason (adjudicate-sheet writes the rows to fill in)
  labels/gold.jsonl                the adjudicated labels with each post's text and paragraphs:
                                   post_id, dup_group, text, paragraphs, lang, topics, frames,
                                   stance_west, evidence, annotator ("adjudicated"), notes

Paragraph numbers are the post's non-empty lines after cleaning, from 0, as classify.ingest
produces them. Exit codes: 0 success, 3 invalid labels or input (one line per problem).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._cli import atomic_write_text, make_parser, run_main
from .codebook import Codebook
from .errors import InputError

GOLD = Path("labels/gold.jsonl")
PASS_A = Path("labels/passes/a.jsonl")
PASS_B = Path("labels/passes/b.jsonl")
ADJUDICATION = Path("labels/adjudication.jsonl")
SHEET = Path("labels/disagreements.jsonl")
AGREEMENT_MD = Path("labels/AGREEMENT.md")
TRANSLATIONS = Path("labels/translations.json")
CORPUS = Path("data/dumps")
LABEL_TASKS = ("topics", "frames")
"""Multi-label tasks; ``stance_west`` is the single-label one."""
GOLD_FIELDS = ("post_id", "dup_group", "text", "paragraphs", "lang", "topics", "frames", "stance_west", "evidence")
PASS_FIELDS = ("post_id", "topics", "frames", "stance_west", "evidence")
ADJUDICATION_FIELDS = ("post_id", "field", "label", "decision", "reason")
N_HARDEST = 10
OPENING_CHARS = 160


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
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:line {n}: invalid JSON ({exc.msg} at column {exc.colno}); fix the line") from None
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
    return _check_labels(row, cb, where) + _check_evidence(row.get("evidence"), frames, where, n_paragraphs, cb.frames)


def _check_labels(row: dict, cb: Codebook, where: str) -> list[str]:
    problems = []
    for task in LABEL_TASKS:
        problems += _check_ids(row.get(task), task, cb, where)
    if row.get("stance_west") not in cb.stances:
        problems.append(f"{where}: stance_west must be one of {', '.join(cb.stances)}, got {row.get('stance_west')!r}")
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


def _check_evidence(evidence: Any, frames: list, where: str, n_paragraphs: int | None,
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
                            f"{first[grp]['_line']} ({_describe(r)} vs {_describe(first[grp])}); give the copies one labelling")
        first.setdefault(grp, r)
    return problems


def _describe(row: dict) -> str:
    return f"topics={row.get('topics')} frames={row.get('frames')} stance={row.get('stance_west')}"


def _raise_first(problems: list[str], hint: str) -> None:
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
    _raise_first(gold_problems(rows, cb, path), "run `python -m classify.labels validate` for the full list")
    df = pd.DataFrame(rows).drop(columns=["_line"])
    df["post_id"] = df["post_id"].astype(str)
    df["dup_group"] = [str(g or p) for g, p in zip(df["dup_group"], df["post_id"])]
    if "group" not in df.columns:
        df["group"] = df["dup_group"]
    df["group"] = [str(g) if isinstance(g, str) and g else d for g, d in zip(df["group"], df["dup_group"])]
    for col in ("annotator", "notes"):
        if col not in df.columns:
            df[col] = ""
    return df.reset_index(drop=True)


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


# ====================================================================================== corpus
def load_corpus(corpus: str | Path = CORPUS) -> pd.DataFrame:
    """The ingested corpus the labels refer to.

    ``corpus`` is a folder of dumps (its ``*.txt`` files are ingested, as the sample dumps are), a
    table written by ``python -m classify.ingest -o`` (.parquet/.jsonl/.csv with ``post_id``,
    ``paragraphs`` and ``dup_group``), or a single dump file.
    """
    from .io.posts import ingest
    from .io.tables import read_table

    corpus = Path(corpus)
    if corpus.is_dir():
        files = sorted(corpus.glob("*.txt"))
        if not files:
            raise InputError(f"{corpus}: no .txt dumps in this folder; pass --corpus with the folder of the sample dumps")
        return ingest(files)
    if not corpus.exists():
        raise InputError(f"{corpus}: no such file or folder; pass --corpus with the folder of the dumps (default {CORPUS})")
    if corpus.suffix.lower() in (".parquet", ".jsonl", ".csv"):
        table = read_table(corpus)
        if {"post_id", "paragraphs", "dup_group"} <= set(table.columns):
            return table
    return ingest([corpus])


def corpus_texts(corpus: pd.DataFrame) -> dict[str, list[str]]:
    """Paragraphs per ``post_id`` (the first copy of each)."""
    out: dict[str, list[str]] = {}
    for pid, paras in zip(corpus["post_id"], corpus["paragraphs"]):
        out.setdefault(str(pid), list(paras))
    return out


# ====================================================================================== validate
@dataclass
class Validation:
    """Result of ``validate``: every problem found, and counts for the OK line."""

    problems: list[str]
    n_gold: int = 0
    n_groups: int = 0
    n_corpus_unique: int = 0
    langs: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(gold_path: str | Path = GOLD, corpus: str | Path | pd.DataFrame = CORPUS,
             codebook: Codebook | None = None) -> Validation:
    """Check the gold file against the codebook and the corpus; collect every problem.

    On top of ``load_gold``'s checks (ids, evidence, text, duplicate records, split duplicate
    groups), each gold post must exist in the ingested corpus with the same text and paragraphs
    (so evidence numbers point at the right lines) and the same duplicate group, and every unique
    post with text of the corpus must be in gold (so nothing was silently left unlabelled).

    Parameters
    ----------
    gold_path : path-like, default="labels/gold.jsonl"
    corpus : path-like or DataFrame, default="data/dumps"
        See ``load_corpus``; a DataFrame is taken as already ingested.
    codebook : Codebook, default=None

    Returns
    -------
    Validation
        ``problems`` is empty when the gold file is valid.
    """
    cb = codebook or Codebook.load()
    gold_path = Path(gold_path)
    if not gold_path.exists():
        raise InputError(f"{gold_path}: no such file; build it with `python -m classify.labels gold` or pass --gold")
    rows = read_jsonl(gold_path, GOLD_FIELDS)
    problems = gold_problems(rows, cb, gold_path)
    df = corpus if isinstance(corpus, pd.DataFrame) else load_corpus(corpus)
    problems += _against_corpus(rows, df, gold_path)
    with_text = df[~df["empty_text"]] if "empty_text" in df.columns else df
    groups = {str(r.get("dup_group") or r["post_id"]) for r in rows}
    return Validation(problems=problems, n_gold=len(rows), n_groups=len(groups),
                      n_corpus_unique=with_text["dup_group"].nunique(),
                      langs=dict(Counter(str(r.get("lang")) for r in rows).most_common()))


def _against_corpus(rows: list[dict], corpus: pd.DataFrame, gold_path: Path) -> list[str]:
    by_id = {}
    for rec in corpus.to_dict("records"):
        by_id.setdefault(str(rec["post_id"]), rec)
    problems = []
    for r in rows:
        where = f"{gold_path}:line {r['_line']}"
        post = by_id.get(str(r["post_id"]))
        if post is None:
            problems.append(f"{where}: post {r['post_id']} is not in the ingested corpus; was it labelled from another dump?")
            continue
        if list(post["paragraphs"]) != r.get("paragraphs") or post["text"] != r.get("text"):
            problems.append(f"{where}: text or paragraphs of {r['post_id']} differ from the corpus copy; "
                            "evidence numbers may point at the wrong lines; rebuild gold from the corpus")
        if str(r.get("dup_group") or r["post_id"]) != str(post["dup_group"]):
            problems.append(f"{where}: dup_group {r.get('dup_group')} differs from the corpus's {post['dup_group']}")
    with_text = corpus[~corpus["empty_text"]] if "empty_text" in corpus.columns else corpus
    covered = {str(r.get("dup_group") or r["post_id"]) for r in rows}
    for grp, part in with_text.groupby("dup_group", sort=True):
        if str(grp) not in covered:
            opening = part["text"].iloc[0][:60].replace("\n", " ")
            problems.append(f"{gold_path}: unique post {grp} of the corpus has no gold labels ({opening!r}); label it")
    return problems


# ====================================================================================== agreement
def load_pass(path: str | Path, codebook: Codebook) -> tuple[dict[str, dict], list[str]]:
    """One annotation pass by ``post_id``, plus its non-fatal evidence problems.

    Unknown ids, bad stances and repeated posts are fatal (agreement would be meaningless);
    evidence slips are only reported, because they do not change the label agreement.

    Raises
    ------
    InputError
        For fatal problems, naming file and line.
    """
    path = Path(path)
    rows = read_jsonl(path, PASS_FIELDS)
    fatal, warnings = [], []
    out: dict[str, dict] = {}
    for r in rows:
        where = f"{path}:line {r['_line']}"
        fatal += _check_labels(r, codebook, where)
        if isinstance(r.get("frames"), list):
            warnings += _check_evidence(r.get("evidence"), r["frames"], where, None, codebook.frames)
        pid = str(r["post_id"])
        if pid in out:
            fatal.append(f"{where}: post {pid} already labelled on line {out[pid]['_line']}; keep one record per post")
        out.setdefault(pid, r)
    _raise_first(fatal, f"fix {path}")
    return out, warnings


def _kappa(a: Sequence, b: Sequence) -> float | None:
    """Cohen's kappa; ``None`` when undefined (both annotators gave every item the same value)."""
    from sklearn.metrics import cohen_kappa_score

    if len(set(a) | set(b)) < 2:
        return None
    return float(cohen_kappa_score(list(a), list(b)))


def _alpha(a: Sequence, b: Sequence) -> float | None:
    """Krippendorff's alpha (nominal, two coders, no missing values); ``None`` when undefined."""
    import krippendorff

    values = sorted(set(a) | set(b), key=str)
    if len(values) < 2:
        return None
    code = {v: i for i, v in enumerate(values)}
    data = np.array([[code[x] for x in a], [code[x] for x in b]], dtype=float)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def binary_agreement(a: Sequence[int], b: Sequence[int]) -> dict[str, Any]:
    """Counts, observed agreement, kappa and alpha for one binary label over the same items.

    ``undefined`` says why kappa and alpha are missing: ``"no positives"`` when nobody used the
    label, ``"all positive"`` when both used it on every item.
    """
    a, b = [int(x) for x in a], [int(x) for x in b]
    n_a, n_b = sum(a), sum(b)
    undefined = "no positives" if n_a + n_b == 0 else "all positive" if n_a == n_b == len(a) else None
    return {"n": len(a), "a": n_a, "b": n_b, "both": sum(x & y for x, y in zip(a, b)),
            "observed": float(np.mean([x == y for x, y in zip(a, b)])) if a else float("nan"),
            "kappa": _kappa(a, b), "alpha": _alpha(a, b), "undefined": undefined}


def categorical_agreement(a: Sequence[str], b: Sequence[str], classes: Sequence[str]) -> dict[str, Any]:
    """Class counts, confusion matrix (rows A, columns B), observed agreement, kappa and alpha."""
    confusion = [[sum(1 for x, y in zip(a, b) if x == ca and y == cb_) for cb_ in classes] for ca in classes]
    return {"n": len(a), "a": {c: list(a).count(c) for c in classes}, "b": {c: list(b).count(c) for c in classes},
            "confusion": confusion, "observed": float(np.mean([x == y for x, y in zip(a, b)])) if len(a) else float("nan"),
            "kappa": _kappa(a, b), "alpha": _alpha(a, b),
            "undefined": "one value only" if len(set(a) | set(b)) < 2 else None}


def evidence_agreement(a: dict[str, dict], b: dict[str, dict], ids: Iterable[str]) -> dict[str, Any]:
    """For frames both annotators marked on a post: how often their evidence paragraphs overlap.

    Overlap (at least one shared paragraph) is the measure that matters: it means both found the
    frame in the same place; ``exact`` (identical sets) is stricter and shown beside it.
    """
    n = overlap = exact = 0
    for pid in ids:
        for f in set(a[pid]["frames"]) & set(b[pid]["frames"]):
            sa, sb = set((a[pid].get("evidence") or {}).get(f, [])), set((b[pid].get("evidence") or {}).get(f, []))
            n += 1
            overlap += bool(sa & sb)
            exact += sa == sb
    return {"n_frames_both": n, "overlap": overlap / n if n else None, "exact": exact / n if n else None}


def post_disagreements(ra: dict, rb: dict, cb: Codebook) -> list[str]:
    """Short descriptions of every label two annotators gave differently on one post."""
    diff = [f"{lid} (A {'yes' if lid in ra[t] else 'no'})" for t in LABEL_TASKS for lid in cb.labels(t)
            if (lid in ra[t]) != (lid in rb[t])]
    if ra["stance_west"] != rb["stance_west"]:
        diff.append(f"stance {ra['stance_west']}/{rb['stance_west']}")
    return diff


def agreement(a_path: str | Path = PASS_A, b_path: str | Path = PASS_B, *, codebook: Codebook | None = None,
              texts: dict[str, list[str]] | None = None, n_hardest: int = N_HARDEST) -> dict[str, Any]:
    """Inter-annotator agreement of two passes, per label and per task, as a plain dict.

    Each topic and frame is scored as a binary label per post, the stance as one 3-class label,
    over the posts both passes labelled. Kappa is Cohen's (scikit-learn), alpha Krippendorff's
    (nominal); both are ``None`` where undefined, and macro means skip those labels.

    Parameters
    ----------
    a_path, b_path : path-like
        The two passes.
    codebook : Codebook, default=None
    texts : dict, default=None
        Paragraphs per post_id, for the openings of the hardest cases.
    n_hardest : int, default=10
        How many posts with the most disagreements to list.

    Returns
    -------
    dict
        ``n_posts``, ``only_a``, ``only_b``, ``labels`` (id -> figures, with ``task``), ``macro``
        (task -> mean kappa, mean alpha, labels counted), ``evidence``, ``hardest``, ``warnings``,
        ``sources`` (path -> sha256) and ``codebook`` (version, sha256).

    Raises
    ------
    InputError
        When a pass is unreadable, uses unknown ids, or the passes share no post.
    """
    cb = codebook or Codebook.load()
    a, warn_a = load_pass(a_path, cb)
    b, warn_b = load_pass(b_path, cb)
    ids = [pid for pid in a if pid in b]
    if not ids:
        raise InputError(f"{a_path} and {b_path} share no post_id; are they passes over the same posts?")
    labels: dict[str, dict] = {}
    for task in LABEL_TASKS:
        for lid in cb.labels(task):
            labels[lid] = {"task": task, **binary_agreement([lid in a[i][task] for i in ids], [lid in b[i][task] for i in ids])}
    labels["stance_west"] = {"task": "stance_west", **categorical_agreement(
        [a[i]["stance_west"] for i in ids], [b[i]["stance_west"] for i in ids], cb.stances)}
    hardest = [{"post_id": i, "diff": post_disagreements(a[i], b[i], cb), "a": _describe(a[i]), "b": _describe(b[i]),
                "opening": " ".join((texts or {}).get(i, []))[:OPENING_CHARS]} for i in ids]
    hardest = sorted((h for h in hardest if h["diff"]), key=lambda h: (-len(h["diff"]), h["post_id"]))[:n_hardest]
    return {"n_posts": len(ids), "only_a": sorted(set(a) - set(b)), "only_b": sorted(set(b) - set(a)),
            "labels": labels, "macro": _macro(labels), "evidence": evidence_agreement(a, b, ids),
            "hardest": hardest, "warnings": warn_a + warn_b,
            "sources": {str(p): sha256_of(p) for p in (a_path, b_path)},
            "codebook": {"version": cb.version, "sha256": cb.sha256}}


def _macro(labels: dict[str, dict]) -> dict[str, dict]:
    out = {}
    for task in (*LABEL_TASKS, "stance_west"):
        rows = [r for r in labels.values() if r["task"] == task]
        kappas = [r["kappa"] for r in rows if r["kappa"] is not None]
        alphas = [r["alpha"] for r in rows if r["alpha"] is not None]
        out[task] = {"kappa": float(np.mean(kappas)) if kappas else None, "alpha": float(np.mean(alphas)) if alphas else None,
                     "n_defined": len(kappas), "n_labels": len(rows),
                     "observed": float(np.mean([r["observed"] for r in rows])) if rows else None}
    return out


def _fmt(x: float | None, undefined: str | None = None) -> str:
    if x is None:
        return f"n/a ({undefined})" if undefined else "n/a"
    return f"{x:.3f}"


def agreement_markdown(ag: dict[str, Any]) -> str:
    """Render ``agreement()``'s dict as ``labels/AGREEMENT.md``; computes nothing itself."""
    lines = ["# Inter-annotator agreement", "",
             "Generated by `python -m classify.labels agreement`; do not edit by hand, rerun the command.", "",
             "Inputs:", ""]
    lines += [f"- `{p}` (sha256 `{h}`)" for p, h in ag["sources"].items()]
    lines += [f"- codebook version {ag['codebook']['version']} (sha256 `{ag['codebook']['sha256']}`)", "",
              f"Posts labelled in both passes: {ag['n_posts']}."]
    for side in ("only_a", "only_b"):
        if ag[side]:
            lines.append(f"Posts only in pass {side[-1].upper()} (left out): {', '.join(ag[side])}.")
    lines += ["", "Each topic and frame is scored as a binary label per post, the stance as one 3-class label. "
              "Kappa is Cohen's (scikit-learn), alpha is Krippendorff's (nominal). Both are undefined (n/a) when "
              "nobody used a label or both annotators gave every post the same value; task means skip those labels.", ""]
    lines += _label_table(ag["labels"])
    lines += ["", "## Per task", "", "| task | labels with kappa defined | mean observed agreement | mean Cohen's kappa | mean Krippendorff's alpha |",
              "|---|---|---|---|---|"]
    for task, m in ag["macro"].items():
        lines.append(f"| {task} | {m['n_defined']} of {m['n_labels']} | {_fmt(m['observed'])} | {_fmt(m['kappa'])} | {_fmt(m['alpha'])} |")
    lines += _stance_section(ag["labels"]["stance_west"])
    ev = ag["evidence"]
    lines += ["", "## Evidence", ""]
    if ev["n_frames_both"]:
        lines.append(f"For the {ev['n_frames_both']} (post, frame) pairs both annotators marked, the evidence paragraphs "
                     f"overlap in {ev['overlap']:.0%} and are identical in {ev['exact']:.0%}.")
    else:
        lines.append("No frame was marked by both annotators on the same post, so evidence agreement is undefined.")
    lines += ["", "## Hardest cases", "", "Posts with the most disagreements (settled in `labels/adjudication.jsonl`).", ""]
    if not ag["hardest"]:
        lines.append("None: the passes agree on every label.")
    for h in ag["hardest"]:
        opening = h["opening"].replace("|", "\\|") or "(text not available)"
        lines += [f"- `{h['post_id']}`, {len(h['diff'])} disagreement(s): {'; '.join(h['diff'])}",
                  f"  - opening: {opening}…", f"  - A: {h['a']}", f"  - B: {h['b']}"]
    if ag["warnings"]:
        lines += ["", "## Evidence problems in the passes", "", *[f"- {w}" for w in ag["warnings"]]]
    return "\n".join(lines) + "\n"


def _label_table(labels: dict[str, dict]) -> list[str]:
    lines = ["| task | label | A yes | B yes | both | observed agreement | Cohen's kappa | Krippendorff's alpha |",
             "|---|---|---|---|---|---|---|---|"]
    for lid, r in labels.items():
        if r["task"] == "stance_west":
            continue
        lines.append(f"| {r['task']} | `{lid}` | {r['a']} | {r['b']} | {r['both']} | {r['observed']:.3f} | "
                     f"{_fmt(r['kappa'], r['undefined'])} | {_fmt(r['alpha'], r['undefined'])} |")
    s = labels["stance_west"]
    lines.append(f"| stance_west | (3 classes) | {_counts(s['a'])} | {_counts(s['b'])} | - | {s['observed']:.3f} | "
                 f"{_fmt(s['kappa'], s['undefined'])} | {_fmt(s['alpha'], s['undefined'])} |")
    return lines


def _counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items())


def _stance_section(s: dict) -> list[str]:
    classes = list(s["a"])
    lines = ["", "## Stance confusion", "", "Rows: annotator A; columns: annotator B.", "",
             "| A \\ B | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    lines += [f"| {c} | " + " | ".join(str(x) for x in row) + " |" for c, row in zip(classes, s["confusion"])]
    return lines


# ====================================================================================== adjudication
def numbered(paragraphs: Sequence[str]) -> str:
    """A post's paragraphs prefixed with their numbers, as the evidence refers to them."""
    return "\n".join(f"[{k}] {p}" for k, p in enumerate(paragraphs))


def disagreements(a_path: str | Path = PASS_A, b_path: str | Path = PASS_B, *, codebook: Codebook | None = None,
                  texts: dict[str, list[str]] | None = None) -> list[dict]:
    """Every disagreement of two passes, as rows for the adjudicator to decide.

    One row per topic or frame marked by one annotator only (``a``/``b``: marked or not), per post
    whose stance differs (``a``/``b``: the stances), and per frame both marked with disjoint
    evidence (``field`` ``evidence``; ``a``/``b``: paragraph lists). ``decision`` and ``reason``
    are left empty; filled in, the rows are ``labels/adjudication.jsonl``.
    """
    cb = codebook or Codebook.load()
    a, _ = load_pass(a_path, cb)
    b, _ = load_pass(b_path, cb)
    rows = []
    for pid in (i for i in a if i in b):
        ra, rb = a[pid], b[pid]
        base = {"post_id": pid}
        post = {"notes": {"a": ra.get("notes", ""), "b": rb.get("notes", "")},
                "text": numbered(texts[pid]) if texts and pid in texts else "(post not found in the corpus)"}
        for task in LABEL_TASKS:
            for lid in cb.labels(task):
                if (lid in ra[task]) != (lid in rb[task]):
                    rows.append({**base, "field": task, "label": lid, "a": lid in ra[task], "b": lid in rb[task],
                                 "decision": None, "reason": "", **post})
        if ra["stance_west"] != rb["stance_west"]:
            rows.append({**base, "field": "stance_west", "label": None, "a": ra["stance_west"], "b": rb["stance_west"],
                         "decision": None, "reason": "", **post})
        for f in cb.frames:
            ea, eb = ((r.get("evidence") or {}).get(f, []) for r in (ra, rb))
            if f in ra["frames"] and f in rb["frames"] and not set(ea) & set(eb):
                rows.append({**base, "field": "evidence", "label": f, "a": sorted(ea), "b": sorted(eb),
                             "decision": None, "reason": "", **post})
    return rows


def _decisions(path: Path, cb: Codebook) -> dict[tuple, dict]:
    """Adjudication decisions by (post_id, field, label); malformed decisions are errors."""
    out = {}
    for r in read_jsonl(path, ADJUDICATION_FIELDS):
        where = f"{path}:line {r['_line']}"
        f, d = r["field"], r["decision"]
        if f in LABEL_TASKS and (r["label"] not in cb.labels(f) or not isinstance(d, bool)):
            raise InputError(f"{where}: a {f} decision needs a codebook label and decision true or false")
        if f == "stance_west" and d not in cb.stances:
            raise InputError(f"{where}: stance decision must be one of {', '.join(cb.stances)}, got {d!r}")
        if f == "evidence" and (r["label"] not in cb.frames or not isinstance(d, list) or not all(isinstance(k, int) for k in d)):
            raise InputError(f"{where}: an evidence decision needs a frame as label and a list of paragraph numbers")
        if f not in (*LABEL_TASKS, "stance_west", "evidence"):
            raise InputError(f"{where}: unknown field {f!r}; use topics, frames, stance_west or evidence")
        out[(str(r["post_id"]), f, None if f == "stance_west" else r["label"])] = r
    return out


# ====================================================================================== gold build
def build_gold(a_path: str | Path = PASS_A, b_path: str | Path = PASS_B, adjudication_path: str | Path = ADJUDICATION,
               translations_path: str | Path = TRANSLATIONS, corpus: str | Path | pd.DataFrame = CORPUS,
               *, codebook: Codebook | None = None) -> list[dict]:
    """Gold records: where A and B agree, their labels; where they differ, the adjudicated decision.

    Every disagreement must have a decision, so none is settled silently. A gold frame's evidence
    is the adjudicator's (an ``evidence`` decision, or ``evidence`` on a frame decision), else the
    union of the annotators' paragraphs. Each record carries the post's text and paragraphs from the
    corpus, its duplicate group and a cross-validation ``group`` that also joins a post with its
    translations (``labels/translations.json``: ``[{"posts": [post_id, ...], "note": ...}]``).

    Raises
    ------
    InputError
        When a unique post of the corpus is missing from a pass, or a disagreement has no decision.
    """
    cb = codebook or Codebook.load()
    a, _ = load_pass(a_path, cb)
    b, _ = load_pass(b_path, cb)
    decisions = _decisions(Path(adjudication_path), cb) if Path(adjudication_path).exists() else {}
    df = corpus if isinstance(corpus, pd.DataFrame) else load_corpus(corpus)
    group = _translation_groups(Path(translations_path))
    reps = df[(~df["empty_text"]) & (df["post_id"] == df["dup_group"])].drop_duplicates("post_id")
    out = []
    for post in reps.to_dict("records"):
        pid = str(post["post_id"])
        for name, side in (("A", a), ("B", b)):
            if pid not in side:
                raise InputError(f"post {pid} is missing from pass {name}; every unique post of the corpus needs both passes")
        rec = _merge(pid, a[pid], b[pid], decisions, cb, Path(adjudication_path))
        notes = "; ".join(x for x in (a[pid].get("notes", ""), b[pid].get("notes", "")) if x)
        out.append({"post_id": pid, "dup_group": str(post["dup_group"]), "group": group.get(pid, pid), "lang": post["lang"],
                    "sources": sorted(df.loc[df["dup_group"] == post["dup_group"], "source"].unique().tolist()),
                    "text": post["text"], "paragraphs": list(post["paragraphs"]), **rec,
                    "annotator": "adjudicated", "notes": notes})
    return out


def _translation_groups(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    links = json.loads(path.read_text(encoding="utf-8"))
    return {str(pid): f"translation-{k}" for k, link in enumerate(links) for pid in link["posts"]}


def _merge(pid: str, ra: dict, rb: dict, decisions: dict[tuple, dict], cb: Codebook, adj_path: Path) -> dict:
    """Labels and evidence of one post from two passes and the decisions on their disagreements."""
    rec: dict[str, Any] = {}
    for task in LABEL_TASKS:
        chosen = []
        for lid in cb.labels(task):
            if (lid in ra[task]) == (lid in rb[task]):
                if lid in ra[task]:
                    chosen.append(lid)
                continue
            d = decisions.get((pid, task, lid))
            if d is None:
                raise InputError(f"{adj_path}: no decision for post {pid}, {task} {lid} (A and B disagree); "
                                 "run `python -m classify.labels adjudicate-sheet` and decide it")
            if d["decision"]:
                chosen.append(lid)
        rec[task] = chosen
    if ra["stance_west"] == rb["stance_west"]:
        rec["stance_west"] = ra["stance_west"]
    else:
        d = decisions.get((pid, "stance_west", None))
        if d is None:
            raise InputError(f"{adj_path}: no decision for post {pid}, stance_west (A {ra['stance_west']}, B {rb['stance_west']})")
        rec["stance_west"] = d["decision"]
    evidence = {}
    for f in rec["frames"]:
        d = decisions.get((pid, "evidence", f)) or decisions.get((pid, "frames", f)) or {}
        given = d.get("decision") if d.get("field") == "evidence" else d.get("evidence")
        union = set((ra.get("evidence") or {}).get(f, [])) | set((rb.get("evidence") or {}).get(f, []))
        evidence[f] = sorted(int(k) for k in (given or union))
    rec["evidence"] = evidence
    return rec


# ====================================================================================== stats
def stats(gold_path: str | Path = GOLD, codebook: Codebook | None = None) -> dict[str, Any]:
    """Label counts and co-occurrences of the gold file, overall and per language, as a plain dict.

    Returns
    -------
    dict
        ``n_posts``, ``langs`` (language -> posts), ``labels`` (topic and frame ids, codebook order),
        ``counts`` (scope -> label -> posts; scope ``all`` or a language), ``stance`` (scope ->
        stance -> posts), ``cooccurrence`` (scope -> matrix as nested lists, rows and columns in
        ``labels`` order, diagonal = label count) and ``absent`` (codebook labels no gold post has).
    """
    cb = codebook or Codebook.load()
    df = load_gold(gold_path, cb)
    labels = [*cb.topics, *cb.frames]
    scopes = {"all": df, **{str(lang): part for lang, part in df.groupby("lang", sort=True)}}
    out: dict[str, Any] = {"n_posts": len(df), "langs": {k: len(v) for k, v in scopes.items() if k != "all"},
                           "labels": labels, "counts": {}, "stance": {}, "cooccurrence": {}}
    for scope, part in scopes.items():
        Y = np.hstack([label_matrix(part, cb, "topics"), label_matrix(part, cb, "frames")])
        out["counts"][scope] = dict(zip(labels, Y.sum(axis=0).tolist()))
        out["cooccurrence"][scope] = (Y.T @ Y).tolist()
        out["stance"][scope] = {s: int((part["stance_west"] == s).sum()) for s in cb.stances}
    absent = [lid for lid in labels if out["counts"]["all"][lid] == 0]
    absent += [s for s in cb.stances if out["stance"]["all"][s] == 0]
    out["absent"] = absent
    return out


def stats_text(st: dict[str, Any]) -> str:
    """Plain-text rendering of ``stats()`` for the terminal."""
    scopes = list(st["counts"])
    lines = [f"{st['n_posts']} gold posts; languages: " + ", ".join(f"{k} {v}" for k, v in st["langs"].items()), "",
             f"{'label':<26}" + "".join(f"{s:>6}" for s in scopes)]
    lines += [f"{lid:<26}" + "".join(f"{st['counts'][s][lid]:>6}" for s in scopes) for lid in st["labels"]]
    lines += [f"{'stance ' + k:<26}" + "".join(f"{st['stance'][s][k]:>6}" for s in scopes) for k in st["stance"]["all"]]
    lines.append("\nabsent from gold: " + (", ".join(st["absent"]) if st["absent"] else "none"))
    for scope in scopes:
        lines += ["", f"co-occurrence ({scope}; diagonal = posts with the label; columns numbered as the rows):"]
        lines += _matrix_lines(st["labels"], st["cooccurrence"][scope], sep=" ")
    return "\n".join(lines)


def stats_markdown(st: dict[str, Any], gold_path: str | Path) -> str:
    """Markdown rendering of ``stats()`` (``--out``); computes nothing itself."""
    scopes = list(st["counts"])
    lines = ["# Gold label statistics", "", f"Generated by `python -m classify.labels stats` from `{gold_path}` "
             f"(sha256 `{sha256_of(gold_path)}`); do not edit by hand.", "",
             f"{st['n_posts']} posts; languages: " + ", ".join(f"{k} {v}" for k, v in st["langs"].items()) + ".", "",
             "| label | " + " | ".join(scopes) + " |", "|---|" + "---|" * len(scopes)]
    lines += [f"| `{lid}` | " + " | ".join(str(st["counts"][s][lid]) for s in scopes) + " |" for lid in st["labels"]]
    lines += [f"| stance `{k}` | " + " | ".join(str(st["stance"][s][k]) for s in scopes) + " |" for k in st["stance"]["all"]]
    lines += ["", "Codebook labels absent from gold: " + (", ".join(f"`{x}`" for x in st["absent"]) if st["absent"] else "none") + "."]
    for scope in scopes:
        lines += ["", f"## Co-occurrence: {scope}", "", "Posts with both labels; the diagonal is the label count.", ""]
        lines += _matrix_lines(st["labels"], st["cooccurrence"][scope], sep="|")
    return "\n".join(lines) + "\n"


def _matrix_lines(labels: list[str], matrix: list[list[int]], sep: str) -> list[str]:
    nums = [str(k + 1) for k in range(len(labels))]
    if sep == "|":
        head = ["| label | " + " | ".join(nums) + " |", "|---|" + "---|" * len(nums)]
        return head + [f"| {k + 1} `{lid}` | " + " | ".join(str(x) for x in row) + " |"
                       for k, (lid, row) in enumerate(zip(labels, matrix))]
    head = [f"{'':<30}" + "".join(f"{n:>4}" for n in nums)]
    return head + [f"{k + 1:>2} {lid:<27}" + "".join(f"{x:>4}" for x in row) for k, (lid, row) in enumerate(zip(labels, matrix))]


# ====================================================================================== CLI
def _texts_for(gold: Path, corpus: Path) -> dict[str, list[str]]:
    """Paragraphs per post for openings: from gold when it exists (fast), else from the corpus."""
    if gold.exists():
        return {str(r["post_id"]): list(r.get("paragraphs") or []) for r in read_jsonl(gold, ("post_id",))}
    if corpus.exists():
        return corpus_texts(load_corpus(corpus))
    return {}


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _cmd_validate(args: Any) -> int:
    res = validate(args.gold, args.corpus)
    if res.ok:
        print(f"OK: {args.gold}: {res.n_gold} posts in {res.n_groups} duplicate groups cover all {res.n_corpus_unique} "
              f"unique posts of {args.corpus}; languages: " + ", ".join(f"{k} {v}" for k, v in res.langs.items()))
        return 0
    for p in res.problems:
        print(p)
    print(f"{len(res.problems)} problem(s) in {args.gold}; fix them and rerun", file=sys.stderr)
    return InputError.exit_code


def _cmd_agreement(args: Any) -> int:
    res = agreement(args.a, args.b, texts=_texts_for(args.gold, args.corpus))
    atomic_write_text(args.out, agreement_markdown(res))
    m = res["macro"]
    print(f"wrote {args.out}: {res['n_posts']} posts; mean kappa topics {_fmt(m['topics']['kappa'])}, "
          f"frames {_fmt(m['frames']['kappa'])}, stance {_fmt(m['stance_west']['kappa'])}")
    return 0


def _cmd_stats(args: Any) -> int:
    st = stats(args.gold)
    print(stats_text(st))
    if args.out:
        atomic_write_text(args.out, stats_markdown(st, args.gold))
        print(f"\nwrote {args.out}")
    return 0


def _cmd_sheet(args: Any) -> int:
    rows = disagreements(args.a, args.b, texts=corpus_texts(load_corpus(args.corpus)))
    _write_jsonl(args.out, rows)
    print(f"wrote {len(rows)} disagreements to {args.out}; fill in decision and reason, then save the rows as {ADJUDICATION}")
    return 0


def _cmd_gold(args: Any) -> int:
    recs = build_gold(args.a, args.b, args.adjudication, args.translations, args.corpus)
    _write_jsonl(args.out, recs)
    print(f"wrote {len(recs)} gold posts to {args.out}")
    return 0


def _cmd_sample(args: Any) -> int:
    from .gold.rounds import given_groups, random_sample, round_records, write_round
    from .gold.sources import load_corpus

    corpus = load_corpus()
    picked = random_sample(corpus, args.source, args.n, args.seed, given_groups())
    folder = write_round(args.round, round_records(picked), {"split": args.split, "how": "random", "source": args.source,
                                                             "seed": args.seed, "note": args.note})
    print(f"wrote {len(picked)} posts of {args.source} (random, seed {args.seed}) to {folder}/posts.jsonl; split {args.split}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m classify.labels`` parser (the module docstring is its help)."""
    parser = make_parser("python -m classify.labels", __doc__)
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def command(name: str, help_: str, func, aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, aliases=list(aliases), formatter_class=parser.formatter_class)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks instead of one-line errors")
        p.set_defaults(func=func)
        return p

    def passes(p: argparse.ArgumentParser) -> None:
        p.add_argument("--a", type=Path, default=PASS_A, help="annotator A's pass")
        p.add_argument("--b", type=Path, default=PASS_B, help="annotator B's pass")

    def corpus(p: argparse.ArgumentParser) -> None:
        p.add_argument("--corpus", "--dumps", type=Path, default=CORPUS,
                       help="folder of the dumps the labels refer to (its *.txt are ingested), or an ingested table")

    v = command("validate", "check the gold file against the codebook and the corpus; exit 3 on problems", _cmd_validate)
    v.add_argument("--gold", type=Path, default=GOLD, help="gold file")
    corpus(v)
    ag = command("agreement", "agreement of the two passes per label and task, written as Markdown", _cmd_agreement)
    passes(ag)
    ag.add_argument("--out", type=Path, default=AGREEMENT_MD, help="Markdown report to write")
    ag.add_argument("--gold", type=Path, default=GOLD, help="for post openings in the hardest cases (else --corpus)")
    corpus(ag)
    st = command("stats", "label counts and co-occurrence of the gold file, per language", _cmd_stats)
    st.add_argument("--gold", type=Path, default=GOLD, help="gold file")
    st.add_argument("--out", type=Path, default=None, help="also write the statistics as Markdown here")
    sh = command("adjudicate-sheet", "write every A/B disagreement, with the numbered post text, for adjudication",
                 _cmd_sheet, aliases=["disagreements"])
    passes(sh)
    sh.add_argument("--out", type=Path, default=SHEET, help="JSONL sheet to write")
    corpus(sh)
    sm = command("sample", "start a round with a uniform random sample of one source's unlabelled posts", _cmd_sample)
    sm.add_argument("--source", required=True, help="source name in data/sources.yaml (e.g. dipromats, ria)")
    sm.add_argument("-n", type=int, required=True, help="posts to draw")
    sm.add_argument("--seed", type=int, required=True, help="seed of the draw (write it down: the sample is reproducible from it)")
    sm.add_argument("--round", required=True, help="name of the new round (folder under labels/rounds/)")
    sm.add_argument("--split", choices=("test", "train"), default="test",
                    help="test: kept for the reported test, never used to train, tune or choose")
    sm.add_argument("--note", default="", help="why the round was drawn (kept in round.json)")
    gd = command("gold", "build the gold file from the passes, the adjudication and the corpus", _cmd_gold)
    passes(gd)
    gd.add_argument("--adjudication", type=Path, default=ADJUDICATION, help="decisions on the disagreements")
    gd.add_argument("--translations", type=Path, default=TRANSLATIONS, help="JSON list of {posts: [post_id, ...], note}")
    gd.add_argument("--out", type=Path, default=GOLD, help="gold file to write")
    corpus(gd)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: args.func(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
