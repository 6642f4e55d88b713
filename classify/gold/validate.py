"""Checking the gold file against what it was built from: the corpus (same text and paragraphs, so
evidence numbers point at the right lines; same duplicate groups) and the rounds (every post given
to the annotators is in gold, with its round's split)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..codebook import Codebook
from ..errors import InputError
from .files import GOLD, GOLD_FIELDS, gold_problems, read_jsonl
from .rounds import ROUNDS, read_meta, read_posts, round_names


def read_corpus_table(path: str | Path) -> pd.DataFrame:
    """An ingested corpus table (``python -m classify.ingest -o``) with ``post_id``, ``paragraphs``, ``dup_group``."""
    from ..io.tables import read_table

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; pass an ingested table (python -m classify.ingest ... -o corpus.parquet)")
    table = read_table(path)
    missing = {"post_id", "paragraphs", "dup_group"} - set(table.columns)
    if missing:
        raise InputError(f"{path}: not an ingested corpus table (no {', '.join(sorted(missing))} column)")
    return table


def corpus_texts(corpus: pd.DataFrame) -> dict[str, list[str]]:
    """Paragraphs per ``post_id`` (the first copy of each)."""
    out: dict[str, list[str]] = {}
    for pid, paras in zip(corpus["post_id"], corpus["paragraphs"]):
        out.setdefault(str(pid), list(paras))
    return out


@dataclass
class Validation:
    """Result of ``validate``: every problem found, and counts for the OK line."""

    problems: list[str]
    n_gold: int = 0
    n_groups: int = 0
    n_rounds: int = 0
    langs: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(gold_path: str | Path = GOLD, corpus: pd.DataFrame | None = None, rounds: str | Path | None = ROUNDS,
             codebook: Codebook | None = None) -> Validation:
    """Check the gold file against the codebook, the corpus and the rounds; collect every problem.

    On top of ``load_gold``'s checks (ids, evidence, text, duplicate records, split duplicate
    groups), each gold post must exist in the corpus with the same text and paragraphs and the same
    duplicate group, and each post of each round must be in gold with that round's split.

    Parameters
    ----------
    gold_path : path-like, default="labels/gold.jsonl"
    corpus : DataFrame, default=None
        The ingested corpus; ``None`` ingests the sources of ``data/sources.yaml``.
    rounds : path-like or None, default="labels/rounds"
        ``None`` skips the round checks (a gold file made elsewhere).
    codebook : Codebook, default=None
    """
    cb = codebook or Codebook.load()
    gold_path = Path(gold_path)
    if not gold_path.exists():
        raise InputError(f"{gold_path}: no such file; build it with `python -m classify.labels gold` or pass --gold")
    rows = read_jsonl(gold_path, GOLD_FIELDS)
    problems = gold_problems(rows, cb, gold_path)
    if corpus is None:
        from .sources import load_corpus

        corpus = load_corpus()
    problems += _against_corpus(rows, corpus, gold_path)
    n_rounds = 0
    if rounds is not None:
        if not Path(rounds).is_dir():
            raise InputError(f"{rounds}: no such folder of annotation rounds; pass --rounds")
        names = round_names(Path(rounds))
        n_rounds = len(names)
        problems += _against_rounds(rows, Path(rounds), names, gold_path)
    return Validation(problems=problems, n_gold=len(rows), n_groups=len({str(r.get("group") or r["post_id"]) for r in rows}),
                      n_rounds=n_rounds, langs=dict(Counter(str(r.get("lang")) for r in rows).most_common()),
                      splits=dict(Counter(str(r.get("split", "train")) for r in rows).most_common()))


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
    return problems


def _against_rounds(rows: list[dict], root: Path, names: list[str], gold_path: Path) -> list[str]:
    """Every round post in gold with its round and split; every gold post in the round it names."""
    where_in_gold = {str(r["post_id"]): r for r in rows}
    problems, given = [], set()
    for name in names:
        split = read_meta(name, root)["split"]
        for post in read_posts(name, root):
            pid = str(post["post_id"])
            given.add(pid)
            r = where_in_gold.get(pid)
            if r is None:
                problems.append(f"{root / name}/posts.jsonl: post {pid} has no gold record; rebuild gold with `python -m classify.labels gold`")
            elif (r.get("round"), r.get("split")) != (name, split):
                problems.append(f"{gold_path}:line {r['_line']}: post {pid} is in round {name} ({split}) but the record says "
                                f"round {r.get('round')!r}, split {r.get('split')!r}")
    for r in rows:
        if str(r["post_id"]) not in given:
            problems.append(f"{gold_path}:line {r['_line']}: post {r['post_id']} is in no round of {root}; "
                            "labels enter gold only through a round")
    return problems
