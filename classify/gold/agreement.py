"""Inter-annotator agreement of two passes: per label and task (Cohen's kappa, Krippendorff's alpha),
evidence overlap, the hardest posts, and the Markdown report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..codebook import Codebook
from ..errors import InputError
from .files import (
    LABEL_TASKS,
    PASS_FIELDS,
    check_evidence,
    check_labels,
    describe,
    raise_first,
    read_jsonl,
    sha256_of,
)

N_HARDEST = 10


OPENING_CHARS = 160



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
        fatal += check_labels(r, codebook, where)
        if isinstance(r.get("frames"), list):
            warnings += check_evidence(r.get("evidence"), r["frames"], where, None, codebook.frames)
        pid = str(r["post_id"])
        if pid in out:
            fatal.append(f"{where}: post {pid} already labelled on line {out[pid]['_line']}; keep one record per post")
        out.setdefault(pid, r)
    raise_first(fatal, f"fix {path}")
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


def agreement(a_path: str | Path, b_path: str | Path, *, codebook: Codebook | None = None,
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
    hardest = [{"post_id": i, "diff": post_disagreements(a[i], b[i], cb), "a": describe(a[i]), "b": describe(b[i]),
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


def fmt(x: float | None, undefined: str | None = None) -> str:
    if x is None:
        return f"n/a ({undefined})" if undefined else "n/a"
    return f"{x:.3f}"


def agreement_markdown(ag: dict[str, Any]) -> str:
    """Render ``agreement()``'s dict as a round's ``AGREEMENT.md``; computes nothing itself."""
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
        lines.append(f"| {task} | {m['n_defined']} of {m['n_labels']} | {fmt(m['observed'])} | {fmt(m['kappa'])} | {fmt(m['alpha'])} |")
    lines += _stance_section(ag["labels"]["stance_west"])
    ev = ag["evidence"]
    lines += ["", "## Evidence", ""]
    if ev["n_frames_both"]:
        lines.append(f"For the {ev['n_frames_both']} (post, frame) pairs both annotators marked, the evidence paragraphs "
                     f"overlap in {ev['overlap']:.0%} and are identical in {ev['exact']:.0%}.")
    else:
        lines.append("No frame was marked by both annotators on the same post, so evidence agreement is undefined.")
    lines += ["", "## Hardest cases", "", "Posts with the most disagreements (settled in the round's `adjudication.jsonl`).", ""]
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
                     f"{fmt(r['kappa'], r['undefined'])} | {fmt(r['alpha'], r['undefined'])} |")
    s = labels["stance_west"]
    lines.append(f"| stance_west | (3 classes) | {_counts(s['a'])} | {_counts(s['b'])} | - | {s['observed']:.3f} | "
                 f"{fmt(s['kappa'], s['undefined'])} | {fmt(s['alpha'], s['undefined'])} |")
    return lines


def _counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items())


def _stance_section(s: dict) -> list[str]:
    classes = list(s["a"])
    lines = ["", "## Stance confusion", "", "Rows: annotator A; columns: annotator B.", "",
             "| A \\ B | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    lines += [f"| {c} | " + " | ".join(str(x) for x in row) + " |" for c, row in zip(classes, s["confusion"])]
    return lines

