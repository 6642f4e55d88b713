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
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._cli import atomic_write_text, make_parser, run_main
from .errors import InputError
from .gold.adjudication import ADJUDICATION, TRANSLATIONS, build_gold, disagreements
from .gold.agreement import PASS_A, PASS_B, agreement, agreement_markdown, fmt
from .gold.files import GOLD, read_jsonl
from .gold.stats import stats, stats_markdown, stats_text
from .gold.validate import CORPUS, corpus_texts, load_corpus, validate

SHEET = Path("labels/disagreements.jsonl")


AGREEMENT_MD = Path("labels/AGREEMENT.md")



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
    print(f"wrote {args.out}: {res['n_posts']} posts; mean kappa topics {fmt(m['topics']['kappa'])}, "
          f"frames {fmt(m['frames']['kappa'])}, stance {fmt(m['stance_west']['kappa'])}")
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
