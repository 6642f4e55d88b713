"""The labelled subset: annotation rounds, agreement, adjudication, the gold file and its checks.

    python -m classify.labels sample --source ria -n 120 --seed 21 --round test-ria   # a random round
    python -m classify.labels queue -n 60 --source ria -o queue.jsonl --round q-ria   # active-learning picks
    python -m classify.labels agreement --round test-ria      # rounds/test-ria/AGREEMENT.md from its passes
    python -m classify.labels adjudicate-sheet --round test-ria   # every A/B disagreement, to decide
    python -m classify.labels gold                              # labels/gold.jsonl from every round
    python -m classify.labels validate                          # gold against codebook, corpus and rounds
    python -m classify.labels stats                             # label counts per split, source, language
    python -m classify.labels export --format hf OUT            # the gold as a Hugging Face dataset
    python -m classify.labels labelstudio config -o ls.xml       # Label Studio labelling config from the codebook
    python -m classify.labels labelstudio tasks queue.jsonl --round r2 -o tasks.json   # tasks + pre-annotations
    python -m classify.labels labelstudio import export.json --annotator a --round r2  # export -> passes/a.jsonl
    python -m classify.labels check                             # likely label errors in the gold (cleanlab)

Files (JSON Lines, one object per line; label ids as in labels/codebook.yaml):

  labels/rounds/<round>/round.json         split (test: never trained, tuned or chosen on; train), how
                                           the posts were chosen, source, seed
  labels/rounds/<round>/posts.jsonl        the posts as annotators saw them (numbered paragraphs)
  labels/rounds/<round>/passes/a.jsonl, b.jsonl   two independent passes: post_id, topics, frames,
                                           stance_west, evidence {frame: [paragraph numbers]}, notes,
                                           lead_time (seconds, from Label Studio)
  labels/rounds/<round>/adjudication.jsonl one decision per disagreement: post_id, field, label, a, b,
                                           decision, reason
  labels/gold.jsonl                        every round's adjudicated labels with each post's text,
                                           paragraphs, source, round and split

Paragraph numbers are the post's non-empty lines after cleaning, from 0, as classify.ingest
produces them. Exit codes: 0 success, 2 bad option, 3 invalid labels or input (one line per problem).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._cli import atomic_write_text, make_parser, run_main
from .errors import ConfigError, InputError
from .gold.adjudication import TRANSLATIONS, build_gold, disagreements
from .gold.agreement import agreement, agreement_markdown, fmt
from .gold.files import GOLD
from .gold.queue import DEFAULT_RARE
from .gold.rounds import ROUNDS, read_posts
from .gold.stats import stats, stats_markdown, stats_text
from .gold.validate import corpus_texts, read_corpus_table, validate


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _passes(args: Any) -> tuple[Path, Path, dict[str, list[str]]]:
    """The two passes to compare (``--round`` or ``--a``/``--b``) and the posts' paragraphs."""
    if args.round:
        folder = args.rounds / args.round
        texts = {str(p["post_id"]): p["paragraphs"] for p in read_posts(args.round, args.rounds)}
        return folder / "passes" / "a.jsonl", folder / "passes" / "b.jsonl", texts
    if not (args.a and args.b):
        raise ConfigError("name a round (--round NAME) or two passes (--a FILE --b FILE)")
    return args.a, args.b, corpus_texts(read_corpus_table(args.corpus)) if args.corpus else {}


def _cmd_validate(args: Any) -> int:
    res = validate(args.gold, read_corpus_table(args.corpus) if args.corpus else None, args.rounds)
    if res.ok:
        print(f"OK: {args.gold}: {res.n_gold} posts in {res.n_groups} groups from {res.n_rounds} rounds; splits: "
              + ", ".join(f"{k} {v}" for k, v in res.splits.items()) + "; languages: "
              + ", ".join(f"{k} {v}" for k, v in res.langs.items()))
        return 0
    for p in res.problems:
        print(p)
    print(f"{len(res.problems)} problem(s) in {args.gold}; fix them and rerun", file=sys.stderr)
    return InputError.exit_code


def _cmd_agreement(args: Any) -> int:
    a, b, texts = _passes(args)
    out = args.out or (args.rounds / args.round / "AGREEMENT.md" if args.round else Path("AGREEMENT.md"))
    res = agreement(a, b, texts=texts)
    atomic_write_text(out, agreement_markdown(res))
    m = res["macro"]
    print(f"wrote {out}: {res['n_posts']} posts; mean kappa topics {fmt(m['topics']['kappa'])}, "
          f"frames {fmt(m['frames']['kappa'])}, stance {fmt(m['stance_west']['kappa'])}")
    return 0


def _cmd_sheet(args: Any) -> int:
    a, b, texts = _passes(args)
    out = args.out or (args.rounds / args.round / "disagreements.jsonl" if args.round else Path("disagreements.jsonl"))
    rows = disagreements(a, b, texts=texts)
    _write_jsonl(out, rows)
    print(f"wrote {len(rows)} disagreements to {out}; fill in decision and reason, then save the rows as "
          f"adjudication.jsonl in the round's folder")
    return 0


def _cmd_gold(args: Any) -> int:
    recs = build_gold(args.rounds, read_corpus_table(args.corpus) if args.corpus else None, args.translations)
    _write_jsonl(args.out, recs)
    print(f"wrote {len(recs)} gold posts from {len({r['round'] for r in recs})} rounds to {args.out}")
    return 0


def _cmd_stats(args: Any) -> int:
    st = stats(args.gold)
    print(stats_text(st))
    if args.out:
        atomic_write_text(args.out, stats_markdown(st, args.gold))
        print(f"\nwrote {args.out}")
    return 0


def _cmd_queue(args: Any) -> int:
    from .codebook import Codebook
    from .gold.files import load_gold, split_of
    from .gold.queue import build_queue, check_rare, encoder_embedder
    from .gold.rounds import given_groups, round_records, write_round
    from .gold.sources import load_corpus, representatives
    from .io.tables import read_table

    check_rare(Codebook.load(), args.rare)
    corpus = read_table(args.corpus) if args.corpus else load_corpus()
    missing = {"post_id", "dup_group", "paragraphs", "lang", "empty_text"} - set(corpus.columns)
    if missing:
        raise InputError(f"{args.corpus}: not an ingested corpus (no column {', '.join(sorted(missing))}); run classify.ingest first")
    if "source_name" not in corpus.columns:
        corpus["source_name"] = corpus["source"]
    cand = representatives(corpus)
    cand = cand[~cand["dup_group"].astype(str).isin(given_groups(args.rounds))]
    if args.source:
        cand = cand[cand["source_name"] == args.source]
    gold = load_gold(args.gold)
    model = _queue_model(args.model, split_of(gold, "train"))
    weights = dict(zip(("rare", "disagreement", "uncertainty", "diversity"), args.weights))
    recs = build_queue(cand, gold, model, args.n, encoder_embedder(args.encoder), round_records, weights=weights,
                       rare=tuple(args.rare), near_duplicate=args.near_duplicate)
    if len(recs) < args.n:
        print(f"warning: only {len(recs)} of {args.n} picks: the other candidates are near-duplicates of labelled or "
              f"picked posts (cosine >= {args.near_duplicate}; see --near-duplicate)", file=sys.stderr)
    atomic_write_text(args.out, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in recs))
    counts = {s: sum(r["scores"]["strategy"] == s for r in recs) for s in weights}
    print(f"wrote {len(recs)} picks to {args.out} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    if args.round:
        meta = {"split": "train", "how": "queue", "source": args.source, "weights": weights, "rare": list(args.rare),
                "model": str(args.model or "baseline fit on the gold's train split"), "note": args.note}
        print(f"started round {args.round} in {write_round(args.round, recs, meta, args.rounds)}")
    return 0


def _queue_model(path: Path | None, train: Any) -> Any:
    """The model whose probabilities score candidates: a saved one, or a baseline fit on the train split."""
    if path:
        from .learners import load_model

        return load_model(path)
    from .learners.baseline.model import BaselineModel

    return BaselineModel().fit(train, train)


def _cmd_sample(args: Any) -> int:
    from .gold.rounds import given_groups, random_sample, round_records, write_round
    from .gold.sources import load_corpus

    picked = random_sample(load_corpus(), args.source, args.n, args.seed, given_groups(args.rounds))
    folder = write_round(args.round, round_records(picked), {"split": args.split, "how": "random", "source": args.source,
                                                             "seed": args.seed, "note": args.note}, args.rounds)
    print(f"wrote {len(picked)} posts of {args.source} (random, seed {args.seed}) to {folder}/posts.jsonl; split {args.split}")
    return 0


def _cmd_export(args: Any) -> int:
    from .codebook import Codebook
    from .gold.export import export_hf
    from .gold.files import load_gold

    out = export_hf(load_gold(args.gold), args.out, Codebook.load(), str(args.gold))
    print(f"wrote the gold as a Hugging Face dataset to {out} (datasets.load_from_disk('{out}'))")
    return 0


def _cmd_ls_config(args: Any) -> int:
    from .gold.labelstudio import check_config, labelling_config

    xml = labelling_config()
    problems = check_config(xml)
    if problems:
        raise InputError(f"the generated config is not valid for Label Studio: {problems[0]}")
    atomic_write_text(args.out, xml)
    print(f"wrote {args.out}: paste it in Label Studio (project > Settings > Labeling Interface > Code)")
    return 0


def _cmd_ls_tasks(args: Any) -> int:
    from .gold.annotate import tasks_command

    print(tasks_command(args.input, args.out, args.round, args.rounds, args.split, args.model, args.no_predictions))
    return 0


def _cmd_ls_import(args: Any) -> int:
    from .gold.annotate import import_command

    print(import_command(args.export, args.annotator, args.round, args.rounds, args.out, args.posts, args.user))
    return 0


def _cmd_check(args: Any) -> int:
    from .gold.check import check_command

    print(check_command(args.gold, args.model, args.round, args.rounds, args.out, args.folds, args.seed))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m classify.labels`` parser (the module docstring is its help)."""
    parser = make_parser("python -m classify.labels", __doc__)
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def command(name: str, help_: str, func, aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, aliases=list(aliases), formatter_class=parser.formatter_class)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks instead of one-line errors")
        p.add_argument("--rounds", type=Path, default=ROUNDS, help="folder of the annotation rounds")
        p.set_defaults(func=func)
        return p

    def passes(p: argparse.ArgumentParser) -> None:
        p.add_argument("--round", default=None, help="compare the two passes of this round (labels/rounds/NAME/passes/a,b.jsonl)")
        p.add_argument("--a", type=Path, default=None, help="annotator A's pass (instead of --round)")
        p.add_argument("--b", type=Path, default=None, help="annotator B's pass (instead of --round)")
        p.add_argument("--out", type=Path, default=None, help="file to write (default: in the round's folder)")
        corpus(p)

    def corpus(p: argparse.ArgumentParser) -> None:
        p.add_argument("--corpus", type=Path, default=None,
                       help="an ingested corpus table to check against (default: ingest the sources of data/sources.yaml)")

    v = command("validate", "check the gold file against the codebook, the corpus and the rounds; exit 3 on problems", _cmd_validate)
    v.add_argument("--gold", type=Path, default=GOLD, help="gold file")
    corpus(v)
    passes(command("agreement", "agreement of two passes per label and task, written as Markdown", _cmd_agreement))
    passes(command("adjudicate-sheet", "write every A/B disagreement, with the numbered post text, for adjudication",
                   _cmd_sheet, aliases=["disagreements"]))
    gd = command("gold", "build the gold file from every round: passes, adjudication and the corpus", _cmd_gold)
    gd.add_argument("--translations", type=Path, default=TRANSLATIONS, help="JSON list of {posts: [post_id, ...], note}")
    gd.add_argument("--out", type=Path, default=GOLD, help="gold file to write")
    corpus(gd)
    st = command("stats", "label counts and co-occurrence of the gold file, per language", _cmd_stats)
    st.add_argument("--gold", type=Path, default=GOLD, help="gold file")
    st.add_argument("--out", type=Path, default=None, help="also write the statistics as Markdown here")
    q = command("queue", "the next posts to label: rare labels, model-rule disagreement, uncertainty, diversity", _cmd_queue)
    q.add_argument("corpus", type=Path, nargs="?", default=None,
                   help="an ingested corpus table (default: ingest the sources of data/sources.yaml)")
    q.add_argument("-n", type=int, required=True, help="posts to pick")
    q.add_argument("-o", "--out", type=Path, required=True, help="queue file to write (JSONL: post, reason, scores)")
    q.add_argument("--source", default=None, help="pick only from this source (source name, or file name for a corpus table)")
    q.add_argument("--model", type=Path, default=None, help="model folder (default: a baseline fit on the gold's train split)")
    q.add_argument("--encoder", type=Path, default=None, help="encoder folder for the diversity embeddings (default: e5-small)")
    q.add_argument("--weights", type=float, nargs=4, default=[0.4, 0.2, 0.2, 0.2], metavar=("RARE", "DISAGREE", "UNSURE", "DIVERSE"),
                   help="share of the picks per strategy")
    q.add_argument("--rare", nargs="+", default=list(DEFAULT_RARE), metavar="LABEL",
                   help="labels the rare strategy looks for: topics, frames or stance:<class>")
    q.add_argument("--near-duplicate", type=float, default=0.95,
                   help="embedding cosine at or above which a candidate counts as a copy of a labelled or picked post")
    q.add_argument("--gold", type=Path, default=GOLD, help="gold file (labelled posts; its train split fits the default model)")
    q.add_argument("--round", default=None, help="also start this round (train split) with the picks")
    q.add_argument("--note", default="", help="why the round was drawn (kept in round.json)")
    sm = command("sample", "start a round with a uniform random sample of one source's unlabelled posts", _cmd_sample)
    sm.add_argument("--source", required=True, help="source name in data/sources.yaml (e.g. dipromats, ria)")
    sm.add_argument("-n", type=int, required=True, help="posts to draw")
    sm.add_argument("--seed", type=int, required=True, help="seed of the draw (the sample is reproducible from it)")
    sm.add_argument("--round", required=True, help="name of the new round (folder under labels/rounds/)")
    sm.add_argument("--split", choices=("test", "train"), default="test",
                    help="test: kept for the reported test, never used to train, tune or choose")
    sm.add_argument("--note", default="", help="why the round was drawn (kept in round.json)")
    ex = command("export", "write the gold as a Hugging Face dataset (typed features, splits, dataset card)", _cmd_export)
    ex.add_argument("out", type=Path, help="folder to create")
    ex.add_argument("--format", choices=("hf",), default="hf", help="hf: datasets.DatasetDict.save_to_disk")
    ex.add_argument("--gold", type=Path, default=GOLD, help="gold file")
    _annotation_commands(command)
    return parser


def _annotation_commands(command) -> None:
    """``labelstudio config|tasks|import`` and ``check`` (the annotation loop, README)."""
    ls = command("labelstudio", "Label Studio: labelling config, tasks with pre-annotations, export to a pass", None)
    lsub = ls.add_subparsers(dest="ls_cmd", required=True, metavar="STEP")

    def step(name: str, help_: str, func) -> argparse.ArgumentParser:
        p = lsub.add_parser(name, help=help_, description=help_, formatter_class=ls.formatter_class)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks instead of one-line errors")
        p.add_argument("--rounds", type=Path, default=ROUNDS, help="folder of the annotation rounds")
        p.set_defaults(func=func)
        return p

    c = step("config", "write the labelling config (XML) generated from labels/codebook.yaml", _cmd_ls_config)
    c.add_argument("-o", "--out", type=Path, default=Path("labelstudio-config.xml"), help="file to write")
    t = step("tasks", "write Label Studio tasks (JSON) for posts, with the model's labels as pre-annotations", _cmd_ls_tasks)
    t.add_argument("input", type=Path, nargs="?", default=None,
                   help="posts: a queue (labels queue -o queue.jsonl), an ingested table (.parquet/.csv/.jsonl) "
                        "or a round's posts.jsonl; omit it with --round to use that round's posts")
    t.add_argument("-o", "--out", type=Path, required=True, help="tasks file to write (import it in Label Studio)")
    t.add_argument("--round", default=None, help="the round the tasks belong to: created from INPUT (how: queue) when it "
                   "does not exist yet, else every post must be in it")
    t.add_argument("--split", choices=("train", "test"), default="train", help="split of a round created here")
    t.add_argument("--model", type=Path, default=None, help="model folder for the pre-annotations (default: the codebook's cue rule)")
    t.add_argument("--no-predictions", action="store_true", help="tasks without pre-annotations")
    i = step("import", "turn a Label Studio JSON export into a validated pass file", _cmd_ls_import)
    i.add_argument("export", type=Path, help="the project exported as JSON (Export > JSON)")
    i.add_argument("--annotator", required=True, help="pass name: writes passes/NAME.jsonl (a and b for a round's two passes)")
    i.add_argument("--round", default=None, help="the round: posts checked against its posts.jsonl, pass written in its folder")
    i.add_argument("-o", "--out", type=Path, default=None, help="pass file to write (default: labels/rounds/ROUND/passes/NAME.jsonl)")
    i.add_argument("--posts", type=Path, default=None, help="without --round: posts file to check the tasks against")
    i.add_argument("--user", default=None, help="keep only this Label Studio user's annotations (e-mail or id)")
    k = command("check", "likely label errors in the gold from out-of-fold probabilities (cleanlab), for adjudication", _cmd_check)
    k.add_argument("--gold", type=Path, default=GOLD, help="gold file")
    k.add_argument("--model", type=Path, default=None,
                   help="model folder whose heldout.parquet gives the out-of-fold probabilities (default: cross-validate the baseline)")
    k.add_argument("--round", default=None, help="also write the round's issues as the check section of its disagreements.jsonl")
    k.add_argument("-o", "--out", type=Path, default=None, help="also write every issue as JSONL rows here")
    k.add_argument("--folds", type=int, default=5, help="cross-validation folds (without heldout.parquet)")
    k.add_argument("--seed", type=int, default=0, help="seed of the folds")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: args.func(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
