"""Adjudication: the sheet of every disagreement of two passes, the decisions, and the gold build."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..codebook import Codebook
from ..errors import InputError
from .agreement import load_pass
from .files import LABEL_TASKS, read_jsonl
from .rounds import ROUNDS, read_meta, read_posts, round_names
from .sources import load_corpus as load_sources_corpus

TRANSLATIONS = Path("labels/translations.json")


ADJUDICATION_FIELDS = ("post_id", "field", "label", "decision", "reason")



# ====================================================================================== adjudication
def numbered(paragraphs: Sequence[str]) -> str:
    """A post's paragraphs prefixed with their numbers, as the evidence refers to them."""
    return "\n".join(f"[{k}] {p}" for k, p in enumerate(paragraphs))


def disagreements(a_path: str | Path, b_path: str | Path, *, codebook: Codebook | None = None,
                  texts: dict[str, list[str]] | None = None) -> list[dict]:
    """Every disagreement of two passes, as rows for the adjudicator to decide.

    One row per topic or frame marked by one annotator only (``a``/``b``: marked or not), per post
    whose stance differs (``a``/``b``: the stances), and per frame both marked with disjoint
    evidence (``field`` ``evidence``; ``a``/``b``: paragraph lists). ``decision`` and ``reason``
    are left empty; filled in, the rows are the round's ``adjudication.jsonl``.
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
        if r.get("section") == "check" and d is None:  # a `labels check` flag left as it is
            continue
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
def build_gold(rounds: str | Path = ROUNDS, corpus: pd.DataFrame | None = None,
               translations_path: str | Path = TRANSLATIONS, *, codebook: Codebook | None = None) -> list[dict]:
    """Gold records of every round under ``rounds``, in round-name order, posts in round order.

    See ``build_round``. ``corpus``: every source ingested together (``classify.gold.sources.load_corpus``,
    the default), so each post's text, paragraphs and duplicate group come from the corpus itself.
    """
    cb = codebook or Codebook.load()
    rounds = Path(rounds)
    names = round_names(rounds)
    if not names:
        raise InputError(f"{rounds}: no rounds (folders with round.json); nothing to build gold from")
    df = corpus if corpus is not None else load_sources_corpus()
    groups = _translation_groups(Path(translations_path))
    return [rec for name in names for rec in build_round(rounds / name, df, groups, cb)]


def build_round(folder: Path, corpus: pd.DataFrame, groups: dict[str, str], codebook: Codebook) -> list[dict]:
    """Gold records of one round: where passes A and B agree, their labels; where they differ, the
    adjudicated decision.

    Every disagreement must have a decision, so none is settled silently. A gold frame's evidence
    is the adjudicator's (an ``evidence`` decision, or ``evidence`` on a frame decision), else the
    union of the annotators' paragraphs. Each record carries the post's text and paragraphs from the
    corpus, its duplicate group, the round's split, its source, and a cross-validation ``group``
    that also joins a post with its translations (``labels/translations.json``).

    Raises
    ------
    InputError
        When a post of the round is missing from a pass or from the corpus, or a disagreement has
        no decision.
    """
    meta = read_meta(folder.name, folder.parent)
    a, _ = load_pass(folder / "passes" / "a.jsonl", codebook)
    b, _ = load_pass(folder / "passes" / "b.jsonl", codebook)
    adj_path = folder / "adjudication.jsonl"
    decisions = _decisions(adj_path, codebook) if adj_path.exists() else {}
    first = corpus.drop_duplicates("post_id").set_index("post_id")
    files = corpus.groupby("dup_group")["source"].agg(lambda s: sorted(set(s)))
    out = []
    for post in read_posts(folder.name, folder.parent):
        pid = str(post["post_id"])
        for name, side in (("A", a), ("B", b)):
            if pid not in side:
                raise InputError(f"{folder}: post {pid} is missing from pass {name}; every post of the round needs both passes")
        if pid not in first.index:
            raise InputError(f"{folder}/posts.jsonl: post {pid} is not in the corpus of data/sources.yaml; was its source changed?")
        row = first.loc[pid]
        rec = _merge(pid, a[pid], b[pid], decisions, codebook, adj_path)
        notes = "; ".join(x for x in (a[pid].get("notes", ""), b[pid].get("notes", "")) if x)
        group = str(row["dup_group"])
        out.append({"post_id": pid, "dup_group": group, "group": groups.get(pid, group),
                    "source": post.get("source_name") or row.get("source_name"), "files": files[group],
                    "round": meta["name"], "split": meta["split"], "lang": row["lang"],
                    "channel": _plain(row.get("channel")), "date": _plain(row.get("date")),
                    "text": row["text"], "paragraphs": list(row["paragraphs"]), **rec,
                    "annotator": "adjudicated", "notes": notes})
    return out


def _plain(value: Any) -> Any:
    """``None`` for a missing value (NaN in a DataFrame), else the value."""
    return None if value is None or (isinstance(value, float) and value != value) else value


def _translation_groups(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    links = json.loads(path.read_text(encoding="utf-8"))
    return {str(pid): f"translation-{k}" for k, link in enumerate(links) for pid in link["posts"]}


def _merge(pid: str, ra: dict, rb: dict, decisions: dict[tuple, dict], cb: Codebook, adj_path: Path) -> dict:
    """Labels and evidence of one post from two passes and the decisions on their disagreements
    (and on labels both gave that ``labels check`` flagged)."""
    rec: dict[str, Any] = {}
    for task in LABEL_TASKS:
        chosen = []
        for lid in cb.labels(task):
            d = decisions.get((pid, task, lid))  # also where A and B agree: a `labels check` decision
            if (lid in ra[task]) == (lid in rb[task]) and d is None:
                if lid in ra[task]:
                    chosen.append(lid)
                continue
            if d is None:
                raise InputError(f"{adj_path}: no decision for post {pid}, {task} {lid} (A and B disagree); "
                                 "run `python -m classify.labels adjudicate-sheet` and decide it")
            if d["decision"]:
                chosen.append(lid)
        rec[task] = chosen
    d = decisions.get((pid, "stance_west", None))
    if ra["stance_west"] == rb["stance_west"] and d is None:
        rec["stance_west"] = ra["stance_west"]
    else:
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

