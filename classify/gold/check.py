"""Likely label errors in the gold: labels that out-of-fold probabilities confidently contradict.

Confident learning (cleanlab's ``find_label_issues``; one-vs-rest per topic and frame, since those
are multi-label) flags a given label when the model, never trained on that post, is more sure of
the other answer than it usually is for posts of that label. A flag is a question for the
adjudicator, not a correction: the rows have the adjudication sheet's shape (``section``
``check``), and a decision filled in overrides the label in the next gold build.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._cli import atomic_write_text
from ..codebook import Codebook
from ..errors import InputError
from .adjudication import numbered
from .files import label_matrix, load_gold, stance_vector

SECTION = "check"
OPENING = 200


@dataclass
class OOFProbas:
    """Out-of-fold probabilities for the posts of ``index`` (rows of the gold)."""

    index: np.ndarray        # (m,) gold row numbers
    topics: np.ndarray       # (m, T)
    frames: np.ndarray       # (m, F)
    stance: np.ndarray       # (m, S)
    evidence: np.ndarray | None  # (m, F) top paragraph per frame, when known
    source: str


def from_heldout(path: Path, gold: pd.DataFrame, cb: Codebook) -> OOFProbas:
    """Probabilities of a model folder's ``heldout.parquet`` (the ``cv`` protocol when present),
    averaged over repeats, for the gold posts it covers."""
    table = pd.read_parquet(path)
    if "protocol" in table.columns and (table["protocol"] == "cv").any():
        table = table[table["protocol"] == "cv"]
    cols = [f"p_{t}" for t in (*cb.topics, *cb.frames)] + [f"p_stance_{s}" for s in cb.stances]
    missing = [c for c in ["post_id", *cols] if c not in table.columns]
    if missing:
        raise InputError(f"{path}: no column(s) {', '.join(missing[:4])}; not a heldout table of this codebook")
    mean = table.assign(post_id=table["post_id"].astype(str)).groupby("post_id")[cols].mean()
    rows = [i for i, pid in enumerate(gold["post_id"]) if pid in mean.index]
    if not rows:
        raise InputError(f"{path}: none of the gold posts has out-of-fold probabilities; retrain the model on this gold")
    m = mean.loc[gold["post_id"].iloc[rows]].to_numpy(dtype=float)
    T, F = len(cb.topics), len(cb.frames)
    stance = m[:, T + F:]
    stance = stance / np.clip(stance.sum(1, keepdims=True), 1e-12, None)
    return OOFProbas(np.array(rows), m[:, :T], m[:, T:T + F], stance, None, f"{path} (protocol cv)")


def from_crossval(gold: pd.DataFrame, cb: Codebook, folds: int, seed: int,
                  factory: Callable[[], Any] | None = None) -> OOFProbas:
    """Out-of-fold probabilities of a fresh baseline per fold (grouped folds, ``classify.evaluation``)."""
    from ..evaluation.crossval import cross_validate, make_factory

    oof = cross_validate(gold, factory or make_factory("baseline", None, cb, seed), cb, folds=folds, repeats=1, seed=seed)
    return OOFProbas(np.arange(len(gold)), oof.topics_p[0], oof.frames_p[0], oof.stance_p[0], oof.evidence[0],
                     f"the baseline, {folds}-fold cross-validation (seed {seed})")


def _binary_issues(given: np.ndarray, p: np.ndarray) -> np.ndarray:
    """cleanlab's issue mask for one binary label (all False when a side has under two posts)."""
    from cleanlab.filter import find_label_issues

    if given.sum() < 2 or (1 - given).sum() < 2:
        return np.zeros(len(given), bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(find_label_issues(given.astype(int), np.column_stack([1 - p, p]), n_jobs=1), bool)


def find_issues(gold: pd.DataFrame, probas: OOFProbas, cb: Codebook) -> list[dict[str, Any]]:
    """Adjudication-sheet rows for every flagged label, least trustworthy first.

    Each row: ``post_id``, ``field`` and ``label`` (as in ``adjudication.jsonl``), ``given`` and
    ``suspected`` values, the model's probability ``p`` of the suspected value, ``quality`` (the
    probability of the given value: low means suspicious), ``evidence`` (paragraph numbers: the
    gold's for a marked frame, the model's top paragraph for a missing one), the numbered text,
    and ``decision``/``reason`` left empty.
    """
    from cleanlab.filter import find_label_issues

    g = gold.iloc[probas.index].reset_index(drop=True)
    rows: list[tuple[float, dict[str, Any]]] = []
    for task, P in (("topics", probas.topics), ("frames", probas.frames)):
        Y = label_matrix(g, cb, task)
        for j, lid in enumerate(cb.labels(task)):
            for i in np.flatnonzero(_binary_issues(Y[:, j], P[:, j])):
                given = bool(Y[i, j])
                rows.append((float(P[i, j] if given else 1 - P[i, j]),
                             _row(g.iloc[i], task, lid, given, not given, float(P[i, j] if not given else 1 - P[i, j]),
                                  _evidence(g.iloc[i], task, lid, given, probas, i, j))))
    ys = stance_vector(g, cb)
    if len(set(ys.tolist())) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mask = np.asarray(find_label_issues(ys, probas.stance, n_jobs=1), bool)
        for i in np.flatnonzero(mask):
            s = int(probas.stance[i].argmax())
            if s == ys[i]:
                continue
            ev = sorted({k for v in (g.iloc[i]["evidence"] or {}).values() for k in v})
            rows.append((float(probas.stance[i, ys[i]]), _row(g.iloc[i], "stance_west", None, cb.stances[ys[i]], cb.stances[s],
                                                               float(probas.stance[i, s]), ev)))
    rows.sort(key=lambda qr: (qr[0], qr[1]["post_id"], qr[1]["field"], str(qr[1]["label"])))
    return [{**r, "quality": round(q, 4)} for q, r in rows]


def _evidence(post: pd.Series, task: str, lid: str, given: bool, probas: OOFProbas, i: int, j: int) -> list[int]:
    if task != "frames":
        return []
    if given:
        return sorted((post["evidence"] or {}).get(lid, []))
    return [int(probas.evidence[i, j])] if probas.evidence is not None else []


def _row(post: pd.Series, field: str, label: str | None, given: Any, suspected: Any, p: float, evidence: list[int]) -> dict:
    paras = list(post["paragraphs"])
    return {"section": SECTION, "post_id": post["post_id"], "field": field, "label": label, "given": given,
            "suspected": suspected, "p": round(p, 4), "evidence": evidence,
            "evidence_text": {str(k): paras[k] for k in evidence if 0 <= k < len(paras)},
            "round": post.get("round"), "split": post.get("split"), "decision": None, "reason": "",
            "notes": post.get("notes") or "", "text": numbered(paras)}


def _yes(v: Any) -> str:
    return ("yes" if v else "no") if isinstance(v, bool) else str(v)


def issues_text(issues: list[dict[str, Any]], n_posts: int, gold_path: Path, source: str) -> str:
    """The issues as plain text, one block per flag (printable alone)."""
    head = (f"{len(issues)} likely label error(s) in {gold_path} ({len(set(r['post_id'] for r in issues))} posts of "
            f"{n_posts}); out-of-fold probabilities of {source}; cleanlab confident learning")
    lines = [head, ""]
    for r in issues:
        what = f"{r['field']} {r['label']}" if r["label"] else r["field"]
        lines.append(f"post {r['post_id']} (round {r['round']}, {r['split']}): {what}: given {_yes(r['given'])}, "
                     f"suspected {_yes(r['suspected'])} (p {r['p']:.2f})")
        for k, t in r["evidence_text"].items():
            lines.append(f"    [{k}] {t[:OPENING]}{'...' if len(t) > OPENING else ''}")
        if not r["evidence_text"]:
            first = r["text"].splitlines()[0] if r["text"] else ""
            lines.append(f"    {first[:OPENING]}{'...' if len(first) > OPENING else ''}")
    if issues:
        lines += ["", "Decide each in the adjudication sheet (decision: true/false, or a stance); a decision overrides "
                  "the label in the next `labels gold`."]
    return "\n".join(lines)


def write_round_section(issues: list[dict[str, Any]], round_name: str, rounds: Path) -> tuple[Path, int]:
    """Replace the check section of ``rounds/<round>/disagreements.jsonl`` with the round's issues."""
    folder = rounds / round_name
    if not (folder / "round.json").exists():
        raise InputError(f"{folder}: no such round")
    sheet = folder / "disagreements.jsonl"
    kept = []
    if sheet.exists():
        kept = [json.loads(line) for line in sheet.read_text(encoding="utf-8").splitlines() if line.strip()]
        kept = [r for r in kept if r.get("section") != SECTION]
    mine = [r for r in issues if r.get("round") == round_name]
    atomic_write_text(sheet, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept + mine))
    return sheet, len(mine)


def check_command(gold_path: Path, model_dir: Path | None, round_name: str | None, rounds: Path, out: Path | None,
                  folds: int, seed: int) -> str:
    """Find the issues, optionally write them, and return the printable report."""
    cb = Codebook.load()
    gold = load_gold(gold_path, cb)
    heldout = model_dir / "heldout.parquet" if model_dir is not None else None
    if model_dir is not None and not heldout.exists():
        raise InputError(f"{heldout}: no such file; train with `classify.train` (it writes heldout.parquet) or omit --model")
    probas = from_heldout(heldout, gold, cb) if heldout is not None else from_crossval(gold, cb, folds, seed)
    issues = find_issues(gold, probas, cb)
    report = issues_text(issues, len(probas.index), gold_path, probas.source)
    if out is not None:
        atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in issues))
        report += f"\nwrote {len(issues)} rows to {out}"
    if round_name is not None:
        sheet, n = write_round_section(issues, round_name, rounds)
        report += f"\nwrote the check section ({n} rows) of {sheet}"
    return report
