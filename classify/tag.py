"""Tag every post of new dumps with a trained model.

    python -m classify.tag data/dumps/*.txt -o tags.parquet
    python -m classify.tag big_export.json -o tags.parquet --resume     # continue an interrupted run
    python -m classify.tag data/dumps/*.txt --engine ray -o tags/       # on Ray: -o is a directory of Parquet files
    python -m classify.tag data/pool/*.jsonl -o tags.parquet --report report.html   # and the corpus report (classify.report)

Reads any format the ingest supports, streams posts in batches through the model and writes one row
per input post, in input order: ids, source, date, channel, language, labels, probabilities,
evidence paragraphs and a ``status`` (``ok``, or why a post was not tagged: ``empty``,
``media_only``). Memory stays flat as the dump grows: posts are read lazily and rows are written in
parts; identical posts are predicted once. The output file appears only when the run is complete
(parts live in ``<output>.parts/`` until then), so it is never half-written; ``--resume`` continues
from the parts already written. The default model is the one the last ``classify.train`` ranked
best (``models/best.json``), else ``models/baseline``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from ._cli import make_parser, run_main
from .errors import ConfigError
from .io.options import ReadOptions
from .learners.transformer.onnxrt import RUNTIMES
from .tagging.local import tag
from .tagging.rows import read_tags  # noqa: F401 (the documented way to read an output back)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m classify.tag", __doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="dumps to tag (any format the ingest reads)")
    parser.add_argument("-o", "--output", type=Path, default=Path("tags.parquet"),
                        help="output file: .parquet, .csv or .jsonl; with --engine ray a DIRECTORY of Parquet files (plus _SUCCESS, the run summary)")
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: the best one of models/best.json, else models/baseline)")
    parser.add_argument("--batch-size", type=int, default=256, help="posts per prediction batch")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its written parts")
    parser.add_argument("--report", type=Path, default=None,
                        help="also write the corpus report (python -m classify.report): corrected prevalence per label, "
                             "channel and time, evidence, drift warnings; HTML here, .md and .cells.csv beside it")
    parser.add_argument("--summary-html", type=Path, default=None, help=argparse.SUPPRESS)  # the report's old name
    parser.add_argument("--text-col", default=None, help="text column of tabular input (default: auto-detect)")
    parser.add_argument("--encoding", default=None, help="decode text input with this encoding (e.g. cp1251)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="transformer models: run the encoder in PyTorch (torch), ONNX Runtime (onnx: fp32, same labels, "
                             "faster than PyTorch on some CPUs; the exported graph is cached in models/.cache/onnx), or PyTorch with bfloat16 "
                             "matrix products (bf16: CPUs with AMX or AVX512-BF16 only, fastest there; probabilities change "
                             "slightly); auto: onnx when installed, else torch. See README 'Speed and memory'")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes that clean and predict batches (same output for any value); "
                             "default: every core, up to 4, for the baseline on 16 MB of input or more; otherwise 1")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: in this process; ray: on a Ray cluster with Ray Data (pip install -e '.[ray]'), "
                             "-o is then a directory of Parquet files (see README, 'Running on a cluster')")
    parser.add_argument("--address", default=None,
                        help="with --engine ray: the cluster, 'auto' (the one this machine joined with `ray start`), "
                             "host:6379 or ray://host:10001; default: start a local Ray instance")
    parser.add_argument("--workers", type=int, default=2, help="with --engine ray: model copies (Ray actors) tagging in parallel")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="with --engine ray: CPUs each worker reserves")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help="with --engine ray: GPUs each worker reserves")
    args = parser.parse_args(argv)

    report_path = args.report or args.summary_html

    def job() -> int:
        opts = ReadOptions(text_col=args.text_col, encoding=args.encoding)
        if report_path is not None and report_path.suffix.lower() not in (".html", ".htm"):
            raise ConfigError(f"{report_path}: --report is an HTML file; give NAME.html (the .md and .cells.csv go beside it)")
        if args.engine == "ray":
            if args.resume:
                raise ConfigError("--resume works with --engine local only")
            from .tagging.ray_engine import tag_ray

            summary = tag_ray(args.paths, args.output, model_dir=args.model, workers=args.workers, address=args.address,
                              batch_size=args.batch_size, cpus_per_worker=args.cpus_per_worker,
                              gpus_per_worker=args.gpus_per_worker, opts=opts, progress=not args.no_progress,
                              verbose=args.debug, runtime=args.runtime)
            print(summary.text())
            print(f"wrote {args.output}/ (Parquet files in input order by name; _SUCCESS holds the summary)")
            _report(args, report_path, opts, None)
            return 0
        if args.address:
            raise ConfigError("--address needs --engine ray")
        summary = tag(args.paths, args.output, model_dir=args.model, batch_size=args.batch_size, resume=args.resume,
                      progress=not args.no_progress, opts=opts, runtime=args.runtime, jobs=args.jobs)
        print(summary.text())
        print(f"wrote {args.output}")
        _report(args, report_path, opts, Counter(s.reason.split(" (")[0] for s in summary.skipped))
        return 0

    return run_main(job, debug=args.debug)


def _report(args: argparse.Namespace, path: Path | None, opts: ReadOptions, skipped: Counter | None) -> None:
    """The corpus report of the tags just written, with the model and inputs of this run."""
    if path is None:
        return
    from .learners import default_model_dir
    from .report import report

    for p in report(
        [args.output], path, model_dir=args.model or default_model_dir(), inputs=list(args.paths), opts=opts, skipped=skipped
    ):
        print(f"wrote {p}")


if __name__ == "__main__":
    sys.exit(main())
