"""Read Telegram dumps into clean, accounted-for posts.

    python -m classify.ingest data/dumps/*.txt -o corpus.parquet

Formats are detected from the content: text copied from Telegram's web view, a Telegram Desktop
JSON export (``result.json``, single chat or full account), and CSV / JSONL / Parquet from scrapers.
Every post gets a stable ``post_id`` (a hash of its cleaned text), its paragraphs (non-empty lines
after cleaning, numbered from 0 as in the codebook), a language tag and a duplicate group shared
with copies of the same post in other dumps. The summary accounts for every input item: a post, or
a skipped item with its reason.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from ._cli import check_output, make_parser, run_main
from .io.options import MAX_CHARS
from .io.posts import ingest
from .io.tables import write_table


def summarise(df: pd.DataFrame) -> str:
    """The printed summary: posts per source, skipped items with reasons, duplicate groups."""
    skipped = pd.DataFrame(df.attrs.get("skipped", []), columns=["source", "locator", "reason"])
    lines = ["posts per source:"]
    sources = list(dict.fromkeys([*df["source"].tolist(), *skipped["source"].tolist()]))
    for src in sources:
        part = df[df["source"] == src]
        n_skip = int((skipped["source"] == src).sum())
        langs = ", ".join(f"{k} {v}" for k, v in part["lang"].value_counts().items())
        lines.append(f"  {src}: {len(part)} posts ({int(part['empty_text'].sum())} without text), {n_skip} skipped; languages: {langs or '-'}")
    total_items = len(df) + len(skipped)
    lines.append(f"total: {total_items} input items = {len(df)} posts + {len(skipped)} skipped")
    if len(skipped):
        lines.append("skipped:")
        for reason, n in Counter(r.split(" (")[0] for r in skipped["reason"]).most_common():
            lines.append(f"  {n} x {reason}")
        for _, s in skipped.head(10).iterrows():
            lines.append(f"    {s['source']}:{s['locator']}: {s['reason']}")
    with_text = df[~df["empty_text"].astype(bool)]  # astype: an empty object column would select columns, not rows
    sizes = with_text.groupby("dup_group")["source"].agg(list)
    multi = sizes[sizes.map(len) > 1]
    lines.append(f"duplicate groups: {with_text['dup_group'].nunique()} unique posts with text; {len(multi)} groups with copies")
    for gid, srcs in multi.items():
        lines.append(f"  {gid}: {len(srcs)} copies in {', '.join(sorted(set(srcs)))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m classify.ingest", __doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="dump files: web-view .txt, result.json, .csv, .jsonl, .parquet")
    parser.add_argument("-o", "--output", type=Path, default=None, help="write posts to .parquet, .csv or .jsonl (default: only print the summary)")
    parser.add_argument("--text-col", default=None, help="text column of CSV/JSONL/Parquet input (default: auto-detect text/message/content)")
    parser.add_argument("--id-col", default=None, help="message id column (default: auto-detect id/message_id)")
    parser.add_argument("--date-col", default=None, help="date column (default: auto-detect date/messageDatetime)")
    parser.add_argument("--channel-col", default=None, help="channel column (default: auto-detect channel/chat)")
    parser.add_argument("--encoding", default=None, help="decode text input with this encoding instead of UTF-8 (e.g. cp1251)")
    parser.add_argument("--max-chars", type=int, default=MAX_CHARS, help="skip (and report) posts longer than this")
    args = parser.parse_args(argv)

    def job() -> int:
        if args.output:
            check_output(args.output, args.paths, (".parquet", ".csv", ".jsonl"))
        df = ingest(args.paths, text_col=args.text_col, id_col=args.id_col, date_col=args.date_col,
                    channel_col=args.channel_col, encoding=args.encoding, max_chars=args.max_chars)
        print(summarise(df))
        if args.output:
            write_table(df, args.output)
            print(f"wrote {len(df)} posts to {args.output}")
        return 0

    return run_main(job, debug=args.debug)




if __name__ == "__main__":
    sys.exit(main())
