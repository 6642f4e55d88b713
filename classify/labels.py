"""The labelled subset: gold file, validation, inter-annotator agreement and label statistics.

    python -m classify.labels validate      # gold ids, evidence, corpus membership, duplicate groups
    python -m classify.labels agreement     # writes labels/AGREEMENT.md from the two passes
    python -m classify.labels stats         # label counts and co-occurrence per language
    python -m classify.labels disagreements # every A/B disagreement, for the adjudicator
    python -m classify.labels gold          # labels/gold.jsonl from passes + adjudication + corpus

Files: ``labels/passes/a.jsonl`` and ``b.jsonl`` (two independent annotation passes),
``labels/adjudication.jsonl`` (one decision with a reason per disagreement) and ``labels/gold.jsonl``
(the adjudicated labels with each post's text and paragraphs, so training needs nothing else).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Sequence
from itertools import combinations
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
DUMPS = Path("data/dumps")
GOLD_FIELDS = ("post_id", "text", "paragraphs", "lang", "topics", "frames", "stance_west", "evidence")
PASS_FIELDS = ("post_id", "topics", "frames", "stance_west", "evidence")


def read_jsonl(path: str | Path, required: Sequence[str]) -> list[dict]:
    """Read a JSONL file; a bad line is an ``InputError`` naming the file and line."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:line {n}: invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:line {n}: expected a JSON object")
        missing = [f for f in required if f not in row]
        if missing:
            raise InputError(f"{path}:line {n}: missing field(s) {', '.join(missing)}")
        row["_line"] = n
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: no records")
    return rows


def check_labels(row: dict, cb: Codebook, where: str) -> list[str]:
    """Problems with one labelled record: ids, stance, evidence for exactly the marked frames."""
    problems = []
    for task in ("topics", "frames"):
        if not isinstance(row[task], list):
            problems.append(f"{where}: '{task}' must be a list")
            continue
        for lid in row[task]:
            if lid not in cb.labels(task):
                problems.append(f"{where}: unknown {task[:-1]} id {lid!r}")
        if len(set(row[task])) != len(row[task]):
            problems.append(f"{where}: repeated id in {task}")
    if row["stance_west"] not in cb.stances:
        problems.append(f"{where}: stance_west must be one of {', '.join(cb.stances)}, got {row['stance_west']!r}")
    ev = row.get("evidence") or {}
    if not isinstance(ev, dict):
        return [*problems, f"{where}: evidence must be an object frame -> [paragraph numbers]"]
    n_par = len(row["paragraphs"]) if "paragraphs" in row else None
    for f in row["frames"] if isinstance(row["frames"], list) else []:
        paras = ev.get(f)
        if not paras:
            problems.append(f"{where}: frame {f} has no evidence paragraph")
            continue
        for k in paras:
            if not isinstance(k, int) or k < 0 or (n_par is not None and k >= n_par):
                problems.append(f"{where}: frame {f}: evidence paragraph {k!r} does not exist")
    for f in ev:
        if f not in (row["frames"] or []):
            problems.append(f"{where}: evidence for unmarked frame {f}")
    return problems


def load_gold(path: str | Path = GOLD, codebook: Codebook | None = None) -> pd.DataFrame:
    """The gold file as a DataFrame (one row per unique post), validated against the codebook.

    Raises
    ------
    InputError
        When a record is malformed or uses ids outside the codebook.
    """
    cb = codebook or Codebook.load()
    rows = read_jsonl(path, GOLD_FIELDS)
    problems = [p for r in rows for p in check_labels(r, cb, f"{path}:line {r['_line']}")]
    if problems:
        raise InputError(problems[0] + (f" (and {len(problems) - 1} more; run `python -m classify.labels validate`)" if len(problems) > 1 else ""))
    df = pd.DataFrame(rows).drop(columns=["_line"])
    if "dup_group" not in df.columns:
        df["dup_group"] = df["post_id"]
    if "group" not in df.columns:
        df["group"] = df["dup_group"]
    return df


def validate(gold_path: Path = GOLD, dumps: Path = DUMPS) -> list[str]:
    """Every problem of the gold file, as one-line messages (empty when valid)."""
    from .ingest import ingest

    cb = Codebook.load()
    rows = read_jsonl(gold_path, GOLD_FIELDS)
    problems = [p for r in rows for p in check_labels(r, cb, f"{gold_path}:line {r['_line']}")]
    corpus = ingest(sorted(dumps.glob("*.txt")))
    by_id: dict[str, list] = {}
    for r in corpus.itertuples():  # copies with the same normalised text share a post_id
        by_id.setdefault(r.post_id, []).append(r)
    seen_groups: dict[str, dict] = {}
    for r in rows:
        where = f"{gold_path}:line {r['_line']}"
        copies = by_id.get(r["post_id"])
        if not copies:
            problems.append(f"{where}: post {r['post_id']} is not in the ingested corpus of {dumps}")
            continue
        post = next((c for c in copies if list(c.paragraphs) == list(r["paragraphs"])), None)
        if post is None:
            problems.append(f"{where}: paragraphs differ from every corpus copy of {r['post_id']}")
            continue
        key = {k: (sorted(r[k]) if isinstance(r[k], list) else r[k]) for k in ("topics", "frames", "stance_west")}
        grp = post.dup_group
        if grp in seen_groups and seen_groups[grp] != key:
            problems.append(f"{where}: duplicate group {grp} has conflicting labels")
        seen_groups[grp] = key
    missing = set(corpus.loc[~corpus["empty_text"], "dup_group"]) - set(seen_groups)
    for grp in sorted(missing):
        problems.append(f"{gold_path}: unique post {grp} of the corpus has no gold labels")
    return problems


# ------------------------------------------------------------------------------------ agreement
def cohen_kappa(a: Sequence, b: Sequence) -> float | None:
    """Cohen's kappa; ``None`` when undefined (both annotators used one value only)."""
    from sklearn.metrics import cohen_kappa_score

    if len(set(a) | set(b)) < 2:
        return None
    return float(cohen_kappa_score(list(a), list(b)))


def kripp_alpha(a: Sequence, b: Sequence) -> float | None:
    """Krippendorff's alpha (nominal) for two coders; ``None`` when undefined."""
    import krippendorff

    values = sorted(set(a) | set(b))
    if len(values) < 2:
        return None
    code = {v: i for i, v in enumerate(values)}
    data = np.array([[code[x] for x in a], [code[x] for x in b]], dtype=float)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def agreement(a_path: Path = PASS_A, b_path: Path = PASS_B) -> dict[str, Any]:
    """Per-label agreement figures and the hardest posts, computed from the two passes."""
    cb = Codebook.load()
    a = {r["post_id"]: r for r in read_jsonl(a_path, PASS_FIELDS)}
    b = {r["post_id"]: r for r in read_jsonl(b_path, PASS_FIELDS)}
    ids = [i for i in a if i in b]
    if not ids:
        raise InputError(f"{a_path} and {b_path} share no post_id")
    out: dict[str, Any] = {"n_posts": len(ids), "only_a": sorted(set(a) - set(b)), "only_b": sorted(set(b) - set(a)), "labels": {}}
    for task in ("topics", "frames"):
        for lid in cb.labels(task):
            va = [int(lid in a[i][task]) for i in ids]
            vb = [int(lid in b[i][task]) for i in ids]
            out["labels"][lid] = {"task": task, "a": sum(va), "b": sum(vb), "both": sum(x & y for x, y in zip(va, vb)),
                                  "observed": float(np.mean([x == y for x, y in zip(va, vb)])),
                                  "kappa": cohen_kappa(va, vb), "alpha": kripp_alpha(va, vb)}
    sa = [a[i]["stance_west"] for i in ids]
    sb = [b[i]["stance_west"] for i in ids]
    out["labels"]["stance_west"] = {"task": "stance_west", "a": dict(Counter(sa)), "b": dict(Counter(sb)),
                                    "observed": float(np.mean([x == y for x, y in zip(sa, sb)])),
                                    "kappa": cohen_kappa(sa, sb), "alpha": kripp_alpha(sa, sb)}
    ev_hits = ev_n = 0
    for i in ids:
        for f in set(a[i]["frames"]) & set(b[i]["frames"]):
            ev_n += 1
            ev_hits += bool(set(a[i]["evidence"].get(f, [])) & set(b[i]["evidence"].get(f, [])))
    out["evidence_overlap"] = {"frames_marked_by_both": ev_n, "share_overlapping": ev_hits / ev_n if ev_n else None}
    hard = []
    for i in ids:
        diff = [f"{t}:{x}" for t in ("topics", "frames") for x in sorted(set(a[i][t]) ^ set(b[i][t]))]
        if a[i]["stance_west"] != b[i]["stance_west"]:
            diff.append(f"stance:{a[i]['stance_west']}/{b[i]['stance_west']}")
        hard.append({"post_id": i, "n": len(diff), "diff": diff, "a": _short(a[i]), "b": _short(b[i])})
    out["hardest"] = sorted(hard, key=lambda h: -h["n"])[:10]
    out["sources"] = {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in (a_path, b_path)}
    return out


def _short(r: dict) -> str:
    return f"topics={r['topics']} frames={r['frames']} stance={r['stance_west']}"


def _fmt(x: float | None) -> str:
    return "n/a (one value only)" if x is None else f"{x:.3f}"


def agreement_markdown(ag: dict[str, Any], texts: dict[str, str] | None = None) -> str:
    """``AGREEMENT.md``: generated from ``agreement()``, never written by hand."""
    lines = ["# Inter-annotator agreement", "",
             "Generated by `python -m classify.labels agreement` from the two independent passes; do not edit.", ""]
    lines += [f"- `{p}` sha256 `{h[:16]}…`" for p, h in ag["sources"].items()]
    lines += ["", f"Posts labelled by both annotators: {ag['n_posts']}.", "",
              "Each topic and frame is scored as a binary label per post; stance as one 3-class label. Kappa is Cohen's;"
              " alpha is Krippendorff's (nominal). Both are undefined when the annotators used a single value.", "",
              "| task | label | A yes | B yes | both | observed agreement | Cohen's kappa | Krippendorff's alpha |",
              "|---|---|---|---|---|---|---|---|"]
    macro: dict[str, list[float]] = {}
    for lid, r in ag["labels"].items():
        if r["task"] == "stance_west":
            continue
        lines.append(f"| {r['task']} | {lid} | {r['a']} | {r['b']} | {r['both']} | {r['observed']:.3f} | {_fmt(r['kappa'])} | {_fmt(r['alpha'])} |")
        if r["kappa"] is not None:
            macro.setdefault(r["task"], []).append(r["kappa"])
    s = ag["labels"]["stance_west"]
    lines.append(f"| stance_west | (3 classes) | {s['a']} | {s['b']} | - | {s['observed']:.3f} | {_fmt(s['kappa'])} | {_fmt(s['alpha'])} |")
    lines += ["", "Mean Cohen's kappa over labels where it is defined: " + ", ".join(f"{t} {np.mean(v):.3f}" for t, v in macro.items()) + "."]
    ev = ag["evidence_overlap"]
    if ev["share_overlapping"] is not None:
        lines += ["", f"Evidence: for the {ev['frames_marked_by_both']} frame labels both annotators marked, the evidence paragraphs"
                  f" overlap in {ev['share_overlapping']:.0%} of cases."]
    lines += ["", "## Hardest cases", "", "Posts with the most disagreements (resolved in `labels/adjudication.jsonl`).", ""]
    for h in ag["hardest"]:
        if h["n"] == 0:
            break
        opening = (texts or {}).get(h["post_id"], "")[:160].replace("\n", " ")
        lines += [f"- `{h['post_id']}` ({h['n']} disagreements: {', '.join(h['diff'])}) — {opening}",
                  f"  - A: {h['a']}", f"  - B: {h['b']}"]
    return "\n".join(lines) + "\n"


def disagreements(a_path: Path = PASS_A, b_path: Path = PASS_B) -> list[dict]:
    """Every field where the passes differ (post, field, label, A's and B's value)."""
    a = {r["post_id"]: r for r in read_jsonl(a_path, PASS_FIELDS)}
    b = {r["post_id"]: r for r in read_jsonl(b_path, PASS_FIELDS)}
    out = []
    for i in a:
        if i not in b:
            continue
        for task in ("topics", "frames"):
            for lid in sorted(set(a[i][task]) ^ set(b[i][task])):
                out.append({"post_id": i, "field": task, "label": lid, "a": lid in a[i][task], "b": lid in b[i][task]})
        if a[i]["stance_west"] != b[i]["stance_west"]:
            out.append({"post_id": i, "field": "stance_west", "label": None, "a": a[i]["stance_west"], "b": b[i]["stance_west"]})
    return out


# ------------------------------------------------------------------------------------ gold
ADJUDICATION = Path("labels/adjudication.jsonl")
TRANSLATIONS = Path("labels/translations.json")


def build_gold(a_path: Path = PASS_A, b_path: Path = PASS_B, adjudication_path: Path = ADJUDICATION,
               translations_path: Path = TRANSLATIONS, dumps: Path = DUMPS) -> list[dict]:
    """Gold records: where A and B agree, their labels; where they differ, the adjudicated decision.

    Every disagreement must have a decision (``labels/adjudication.jsonl``: post_id, field, label,
    decision, reason); a missing one is an error, so no disagreement is settled silently. Evidence of
    a gold frame is the union of the annotators' paragraphs (or the adjudicator's, when given).
    Each record carries the post's text and paragraphs from the ingested corpus, its duplicate group,
    and a CV ``group`` that also joins a post with its translations (``labels/translations.json``).
    """
    from .ingest import ingest

    a = {r["post_id"]: r for r in read_jsonl(a_path, PASS_FIELDS)}
    b = {r["post_id"]: r for r in read_jsonl(b_path, PASS_FIELDS)}
    decisions = {}
    for r in read_jsonl(adjudication_path, ("post_id", "field", "decision", "reason")):
        decisions[(r["post_id"], r["field"], r.get("label"))] = r
    links = json.loads(Path(translations_path).read_text(encoding="utf-8")) if Path(translations_path).exists() else []
    corpus = ingest(sorted(dumps.glob("*.txt")))
    # The representative of a duplicate group is the copy whose post_id is the group id.
    with_text = corpus[~corpus["empty_text"]]
    reps = with_text[with_text["post_id"] == with_text["dup_group"]].drop_duplicates("dup_group")
    group = {pid: pid for pid in reps["dup_group"]}
    for k, link in enumerate(links):
        for pid in link["posts"]:
            group[pid] = f"translation-{k}"
    out = []
    for post in reps.itertuples():
        pid = post.dup_group
        if pid not in a or pid not in b:
            raise InputError(f"post {pid} is missing from {'A' if pid not in a else 'B'}'s pass")
        rec = {"post_id": pid}
        for task in ("topics", "frames"):
            chosen = []
            for lid in sorted(set(a[pid][task]) | set(b[pid][task])):
                if (lid in a[pid][task]) == (lid in b[pid][task]):
                    chosen.append(lid)
                    continue
                d = decisions.get((pid, task, lid))
                if d is None:
                    raise InputError(f"{adjudication_path}: no decision for post {pid}, {task} {lid} (A and B disagree)")
                if d["decision"] is True:
                    chosen.append(lid)
            rec[task] = [lid for lid in Codebook.load().labels(task) if lid in chosen]
        if a[pid]["stance_west"] == b[pid]["stance_west"]:
            rec["stance_west"] = a[pid]["stance_west"]
        else:
            d = decisions.get((pid, "stance_west", None))
            if d is None:
                raise InputError(f"{adjudication_path}: no decision for post {pid}, stance_west (A {a[pid]['stance_west']}, B {b[pid]['stance_west']})")
            rec["stance_west"] = d["decision"]
        evidence = {}
        for f in rec["frames"]:
            d = decisions.get((pid, "frames", f))
            paras = (d or {}).get("evidence") or sorted(set(a[pid]["evidence"].get(f, [])) | set(b[pid]["evidence"].get(f, [])))
            evidence[f] = [int(k) for k in paras]
        out.append({"post_id": pid, "dup_group": pid, "group": group[pid], "lang": post.lang,
                    "sources": sorted(corpus.loc[corpus["dup_group"] == pid, "source"].unique().tolist()),
                    "text": post.text, "paragraphs": list(post.paragraphs), **rec, "evidence": evidence,
                    "annotator": "adjudicated", "notes": "; ".join(x for x in (a[pid].get("notes", ""), b[pid].get("notes", "")) if x)})
    return out


# ------------------------------------------------------------------------------------ stats
def stats(gold_path: Path = GOLD) -> str:
    """Label counts and co-occurrence, overall and per language; absent labels named."""
    cb = Codebook.load()
    df = load_gold(gold_path, cb)
    lines = [f"{len(df)} gold posts; languages: " + ", ".join(f"{k} {v}" for k, v in df["lang"].value_counts().items())]
    for task in ("topics", "frames"):
        lines.append(f"\n{task}:")
        for lid in cb.labels(task):
            per = {lang: int(part[task].map(lambda x, lid=lid: lid in x).sum()) for lang, part in df.groupby("lang")}
            total = sum(per.values())
            lines.append(f"  {lid:<26} {total:>3}  " + "  ".join(f"{k} {v}" for k, v in per.items()))
    lines.append("\nstance_west:")
    for s in cb.stances:
        per = {lang: int((part["stance_west"] == s).sum()) for lang, part in df.groupby("lang")}
        lines.append(f"  {s:<26} {sum(per.values()):>3}  " + "  ".join(f"{k} {v}" for k, v in per.items()))
    absent = [lid for t in ("topics", "frames") for lid in cb.labels(t) if not df[t].map(lambda x, lid=lid: lid in x).any()]
    lines.append("\nabsent from gold: " + (", ".join(absent) if absent else "none"))
    pairs = Counter(p for _, r in df.iterrows() for p in combinations(sorted(r["topics"] + r["frames"]), 2))
    lines.append("\nmost frequent co-occurrences:")
    lines += [f"  {a} + {b}: {n}" for (a, b), n in pairs.most_common(15)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m classify.labels", __doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("validate", help="check the gold file against the codebook and the corpus")
    v.add_argument("--gold", type=Path, default=GOLD)
    v.add_argument("--dumps", type=Path, default=DUMPS, help="folder of the sample dumps the gold posts come from")
    ag = sub.add_parser("agreement", help="agreement of the two passes -> labels/AGREEMENT.md")
    ag.add_argument("--a", type=Path, default=PASS_A)
    ag.add_argument("--b", type=Path, default=PASS_B)
    ag.add_argument("--gold", type=Path, default=GOLD, help="for post openings in the hardest cases")
    ag.add_argument("--out", type=Path, default=Path("labels/AGREEMENT.md"))
    st = sub.add_parser("stats", help="label counts and co-occurrence per language")
    st.add_argument("--gold", type=Path, default=GOLD)
    d = sub.add_parser("disagreements", help="write every A/B disagreement as JSONL for adjudication")
    d.add_argument("--a", type=Path, default=PASS_A)
    d.add_argument("--b", type=Path, default=PASS_B)
    d.add_argument("--out", type=Path, default=Path("labels/disagreements.jsonl"))
    gd = sub.add_parser("gold", help="build labels/gold.jsonl from the passes, the adjudication and the corpus")
    gd.add_argument("--a", type=Path, default=PASS_A)
    gd.add_argument("--b", type=Path, default=PASS_B)
    gd.add_argument("--adjudication", type=Path, default=ADJUDICATION)
    gd.add_argument("--translations", type=Path, default=TRANSLATIONS, help="JSON list of {posts: [post_id, ...], note}")
    gd.add_argument("--dumps", type=Path, default=DUMPS)
    gd.add_argument("--out", type=Path, default=GOLD)
    for p in (v, ag, st, d, gd):
        p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)

    def job() -> int:
        if args.cmd == "validate":
            problems = validate(args.gold, args.dumps)
            for p in problems:
                print(p, file=sys.stderr)
            if problems:
                print(f"{len(problems)} problem(s)", file=sys.stderr)
                return InputError.exit_code
            n = len(Path(args.gold).read_text(encoding="utf-8").splitlines())
            print(f"OK: {args.gold} is valid ({n} posts)")
        elif args.cmd == "agreement":
            res = agreement(args.a, args.b)
            texts = {}
            if args.gold.exists():
                texts = {r["post_id"]: r["text"] for r in read_jsonl(args.gold, ("post_id", "text"))}
            atomic_write_text(args.out, agreement_markdown(res, texts))
            print(f"wrote {args.out} ({res['n_posts']} posts)")
        elif args.cmd == "stats":
            print(stats(args.gold))
        elif args.cmd == "gold":
            recs = build_gold(args.a, args.b, args.adjudication, args.translations, args.dumps)
            atomic_write_text(args.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
            print(f"wrote {len(recs)} gold posts to {args.out}")
        else:
            rows = disagreements(args.a, args.b)
            atomic_write_text(args.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            print(f"wrote {len(rows)} disagreements to {args.out}")
        return 0

    return run_main(job, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
