"""Read tagged corpora: prevalence per label, channel and time, corrected for the model's errors.

    python -m classify.report tags.parquet -o report.html
    python -m classify.report tags_a.parquet tags_b.parquet --model models/baseline --inputs data/pool/*.jsonl -o report.html
    python -m classify.tag data/pool/*.jsonl -o tags.parquet --report report.html     # the same, right after tagging

Writes one self-contained HTML page (no network needed to view it), the same report as Markdown
(``<name>.md`` with its plots in ``<name>_plots/``) and every cell as CSV (``<name>.cells.csv``).
Shares are corrected with the error rates the model made on held-out gold (``<model>/heldout.parquet``,
saved by training): raw and corrected share with 95% intervals, per label, channel and week or
month, stance toward the West per channel, frame x topic co-occurrence, quotable evidence per frame
with the cue phrases marked, and drift warnings that say where those error rates may not hold.
The tag output does not record its model: give --model when it is not the default one.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ._cli import make_parser, run_main
from .errors import ConfigError, check_int
from .io.options import ReadOptions
from .learners import default_model_dir
from .reporting.heldout import PROTOCOLS
from .reporting.quantify import METHODS, N_BOOT
from .reporting.texts import TEXT_SAMPLE


def report(tags: list[Path], output: Path, *, model_dir: Path | None = None, inputs: list[Path] | None = None,
           gold: Path | None = Path("labels/gold.jsonl"), method: str = "acc", protocol: str | None = None,
           n_boot: int = N_BOOT, text_sample: int = TEXT_SAMPLE, seed: int = 0, opts: ReadOptions | None = None,
           skipped=None) -> list[Path]:
    """Build and write the report (see the module docstring); returns the files written."""
    from .reporting.build import build_report, check_model_dir
    from .reporting.render import write_report

    if Path(output).suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"{output}: the report is an HTML file; give -o NAME.html (the .md and .cells.csv go beside it)")
    if method not in METHODS:
        raise ConfigError(f"unknown --method {method!r}; choose one of {', '.join(METHODS)}")
    check_int("", "n_boot", n_boot, 50)
    check_int("", "text_sample", text_sample, 0)
    check_model_dir(model_dir)
    data = build_report(list(tags), model_dir=model_dir or default_model_dir(), model_given=model_dir is not None,
                        inputs=inputs, gold_path=gold, method=method, protocol=protocol, n_boot=n_boot,
                        text_sample=text_sample, seed=seed, opts=opts, skipped=skipped)
    return write_report(data, Path(output))


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m classify.report", __doc__)
    parser.add_argument("tags", nargs="+", type=Path, help="tag outputs of classify.tag (.parquet, .csv, .jsonl, or a Ray output directory)")
    parser.add_argument("-o", "--output", type=Path, default=Path("report.html"), help="the HTML report; .md, _plots/ and .cells.csv go beside it")
    parser.add_argument("--model", type=Path, default=None,
                        help="the model the tags were made with, whose heldout.parquet gives the error rates "
                             "(default: classify.tag's default, models/best.json else models/baseline)")
    parser.add_argument("--inputs", type=Path, nargs="+", default=None,
                        help="the files that were tagged, read back for a sample of post texts (default: the tag rows' "
                             "source file names, in the current directory)")
    parser.add_argument("--gold", type=Path, default=Path("labels/gold.jsonl"), help="gold file: groups and texts of the held-out posts")
    parser.add_argument("--method", choices=METHODS, default="acc",
                        help="acc: adjust the share of labelled posts (Forman 2008); pacc: adjust the mean probability "
                             "(Bella et al. 2010), which also needs the tagging model's probabilities to be scaled like "
                             "those of the held-out models (README, 'Reading a tagged corpus')")
    parser.add_argument("--protocol", choices=PROTOCOLS, default=None,
                        help="which held-out rows give the error rates (default: loso when present, else cv)")
    parser.add_argument("--n-boot", type=int, default=N_BOOT, help="bootstrap refits for the 95%% intervals")
    parser.add_argument("--text-sample", type=int, default=TEXT_SAMPLE, help="tagged posts read back for the text-based drift checks")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the text sample")
    parser.add_argument("--text-col", default=None, help="text column of tabular inputs (as given to classify.tag)")
    parser.add_argument("--encoding", default=None, help="encoding of text inputs (as given to classify.tag)")
    args = parser.parse_args(argv)

    def job() -> int:
        written = report(args.tags, args.output, model_dir=args.model, inputs=args.inputs, gold=args.gold, method=args.method,
                         protocol=args.protocol, n_boot=args.n_boot, text_sample=args.text_sample, seed=args.seed,
                         opts=ReadOptions(text_col=args.text_col, encoding=args.encoding))
        for p in written:
            print(f"wrote {p}")
        return 0

    return run_main(job, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
