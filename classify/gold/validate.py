"""Checking the gold file against the corpus it refers to: same text and paragraphs (so evidence
numbers point at the right lines), same duplicate groups, and no unique post left unlabelled."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..codebook import Codebook
from ..errors import InputError
from .files import GOLD, GOLD_FIELDS, gold_problems, read_jsonl

CORPUS = Path("data/dumps")



# ====================================================================================== corpus
def load_corpus(corpus: str | Path = CORPUS) -> pd.DataFrame:
    """The ingested corpus the labels refer to.

    ``corpus`` is a folder of dumps (its ``*.txt`` files are ingested, as the sample dumps are), a
    table written by ``python -m classify.ingest -o`` (.parquet/.jsonl/.csv with ``post_id``,
    ``paragraphs`` and ``dup_group``), or a single dump file.
    """
    from ..io.posts import ingest
    from ..io.tables import read_table

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

