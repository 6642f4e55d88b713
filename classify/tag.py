"""Tag every post of new dumps with a trained model.

    python -m classify.tag data/dumps/*.txt -o tags.parquet
    python -m classify.tag big_export.json -o tags.parquet --resume     # continue an interrupted run
    python -m classify.tag data/dumps/*.txt --engine ray -o tags/       # on Ray: -o is a directory of Parquet files

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

import json
import shutil
import sys
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ._cli import atomic_write, make_parser, run_main
from .errors import ConfigError, ModelError, check_int
from .io.options import ReadOptions
from .io.posts import iter_posts
from .io.readers.base import Skipped
from .model import Model, load_model, read_card
from .onnxrt import RUNTIMES, check_runtime, resolve_runtime
from .parallel import auto_jobs, batched, parallel_batches

OUTPUT_COLUMNS = ("post_id", "message_id", "source", "locator", "date", "channel", "lang", "topics", "frames",
                  "stance_west", "scores", "stance_scores", "evidence", "status")
JSON_COLUMNS = ("topics", "frames", "scores", "stance_scores", "evidence")
PART_ROWS = 5000
CACHE_POSTS = 20000


def default_model_dir(models_dir: Path = Path("models")) -> Path:
    """The model ``classify.train`` ranked best, else the baseline."""
    best = models_dir / "best.json"
    if best.exists():
        try:
            kind = json.loads(best.read_text(encoding="utf-8"))["best"]
            if (models_dir / kind).exists():
                return models_dir / kind
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    return models_dir / "baseline"


@dataclass
class TagSummary:
    """Counts for the closing summary."""

    n_posts: int = 0
    n_tagged: int = 0
    n_resumed: int = 0
    status: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    stance: Counter = field(default_factory=Counter)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    jobs: int = 1

    def text(self) -> str:
        rate = self.n_tagged / self.seconds if self.seconds > 0 else float("nan")
        workers = f", {self.jobs} worker processes" if self.jobs > 1 else ""
        lines = [f"posts: {self.n_posts} rows written ({self.n_resumed} from a previous run), {self.n_tagged} tagged now in {self.seconds:.1f} s ({rate:,.0f} posts/s{workers})",
                 "status: " + ", ".join(f"{k} {v}" for k, v in self.status.most_common())]
        if self.labels:
            lines.append("labels: " + ", ".join(f"{k} {v}" for k, v in self.labels.most_common()))
        if self.stance:
            lines.append("stance_west: " + ", ".join(f"{k} {v}" for k, v in self.stance.most_common()))
        if self.skipped:
            lines.append(f"skipped input items (not posts, or unreadable): {len(self.skipped)}")
            for reason, n in Counter(s.reason.split(" (")[0] for s in self.skipped).most_common():
                lines.append(f"  {n} x {reason}")
        return "\n".join(lines)


def _status(post: dict) -> str:
    if not post["empty_text"]:
        return "ok"
    return "media_only" if post.get("media") else "empty"


def predict_first_copies(model: Model, posts: list[dict]) -> dict[str, dict]:
    """Encoded predictions (``encode_prediction``) of the first copy of each post id with text, by post id.

    Copies share a post_id but may differ in emoji or case: the first one is tagged, for all of
    them (as when the copies fall in different batches: see ``tag_batch``).
    """
    first: dict[str, dict] = {}
    for p in posts:
        if not p["empty_text"]:
            first.setdefault(p["post_id"], p)
    if not first:
        return {}
    pred = model.predict([p["paragraphs"] for p in first.values()])
    return dict(zip(first, map(encode_prediction, pred.to_dict("records"))))


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def encode_prediction(pred: dict) -> dict:
    """A prediction as its output columns, the lists and maps already JSON text.

    Why: the JSON is made once per distinct post (in a worker process when ``--jobs`` > 1) and the
    first-copy cache holds compact strings instead of nested dicts of floats, so neither the
    parent's writing nor its memory grows with the number of labels and paragraphs.
    ``labels`` (not an output column) keeps the predicted ids for the closing summary.
    """
    out = {c: _dumps(pred[c]) for c in JSON_COLUMNS}
    out["stance_west"] = pred["stance_west"]
    out["labels"] = (*pred["topics"], *pred["frames"])
    return out


NO_PREDICTION = encode_prediction({"topics": [], "frames": [], "scores": {}, "stance_scores": {}, "evidence": {}, "stance_west": None})
"""The columns of a post that is not tagged (``empty`` or ``media_only``)."""


def tag_batch(model: Model | None, posts: list[dict], cache: OrderedDict, predicted: dict[str, dict] | None = None) -> list[dict]:
    """Rows for a batch; posts already seen (same ``post_id``) reuse the cached prediction.

    ``predicted``: predictions a worker made for this batch (``predict_first_copies`` over all of
    it); only those of posts not in ``cache`` are taken, so the rows equal the serial path's.
    Rows hold the output columns as strings (``_to_frame``), plus ``labels``.
    """
    todo = [p for p in posts if p["post_id"] not in cache]
    if predicted is None:
        predicted = predict_first_copies(model, todo)
    for pid in dict.fromkeys(p["post_id"] for p in todo if not p["empty_text"]):
        cache[pid] = predicted[pid]
        if len(cache) > CACHE_POSTS:
            cache.popitem(last=False)
    rows = []
    for p in posts:
        status = _status(p)
        pred = cache[p["post_id"]] if status == "ok" else NO_PREDICTION
        rows.append({
            "post_id": p["post_id"], "message_id": p["message_id"], "source": p["source"], "locator": p["locator"],
            "date": p["date"], "channel": p["channel"], "lang": p["lang"], **pred, "status": status,
        })
    return rows


def _str(v) -> str | None:
    return None if v is None or (isinstance(v, float) and v != v) else str(v)


def _to_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a DataFrame of strings, maps/lists as JSON, so every format has the same columns.

    Rows from ``tag_batch`` are strings already; other values (lists, maps, numbers) are encoded
    here. ``read_tags`` decodes the JSON columns back into lists and dicts.
    """
    df = pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))
    for col in OUTPUT_COLUMNS:
        values = df[col].tolist()
        if col in JSON_COLUMNS:
            values = [v if isinstance(v, str) else _dumps(v) for v in values]
        else:
            values = [v if isinstance(v, str) else _str(v) for v in values]
        df[col] = pd.Series(values, index=df.index, dtype=object)
    return df


def _schema():
    import pyarrow as pa

    return pa.schema([(c, pa.string()) for c in OUTPUT_COLUMNS])


def read_tags(path: str | Path) -> pd.DataFrame:
    """Read a tag output file back, with lists and maps decoded."""
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt == ".parquet":
        df = pd.read_parquet(path)
    elif fmt == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    else:
        df = pd.read_json(path, lines=True, dtype=False)
    for col in JSON_COLUMNS:
        df[col] = df[col].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    return df


class PartWriter:
    """Rows go to numbered part files (each written atomically) in ``<output>.parts/``.

    A killed run leaves whole parts only; ``--resume`` counts their rows and skips that many posts
    of the (deterministic) input stream, checking that the post ids line up.
    """

    def __init__(self, output: Path, resume: bool, fingerprint: dict) -> None:
        self.output = output
        self.dir = output.with_name(output.name + ".parts")
        self.fingerprint = fingerprint
        self.parts: list[Path] = []
        self.done_rows = 0
        self.last_post_id: str | None = None
        if self.dir.exists():
            manifest = self._manifest()
            if resume and manifest.get("fingerprint") == fingerprint:
                self.parts = sorted(self.dir.glob("part-*.parquet"))
                for part in self.parts:
                    ids = pd.read_parquet(part, columns=["post_id"])["post_id"]
                    self.done_rows += len(ids)
                    if len(ids):
                        self.last_post_id = ids.iloc[-1]
            elif resume and manifest:
                raise ConfigError(f"{self.dir}: was started with other inputs or model; remove it or run without --resume")
            else:
                shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.dir / "manifest.json", lambda p: p.write_text(json.dumps({"fingerprint": fingerprint}), encoding="utf-8"))

    def _manifest(self) -> dict:
        try:
            return json.loads((self.dir / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        part = self.dir / f"part-{len(self.parts):06d}.parquet"
        frame = _to_frame(rows)
        atomic_write(part, lambda p: frame.to_parquet(p, index=False, schema=_schema()))
        self.parts.append(part)

    def finish(self) -> Path:
        """Merge the parts into the output (streaming, flat memory), atomically; drop the parts."""
        fmt = self.output.suffix.lower()

        def write(tmp: Path) -> None:
            import pyarrow.parquet as pq

            if fmt == ".parquet":
                schema = _schema()
                with pq.ParquetWriter(tmp, schema) as w:
                    for part in self.parts:
                        w.write_table(pq.read_table(part).cast(schema))
            else:
                with tmp.open("w", encoding="utf-8", newline="") as fh:
                    for k, part in enumerate(self.parts):
                        df = pd.read_parquet(part)
                        if fmt == ".csv":
                            df.to_csv(fh, index=False, header=(k == 0))
                        else:
                            for rec in df.to_dict("records"):
                                for col in JSON_COLUMNS:
                                    rec[col] = json.loads(rec[col])
                                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    if not self.parts and fmt == ".csv":
                        _to_frame([]).to_csv(fh, index=False)

        atomic_write(self.output, write)
        shutil.rmtree(self.dir)
        return self.output


def tag(paths: Sequence[str | Path], output: str | Path, *, model_dir: str | Path | None = None, batch_size: int = 256,
        resume: bool = False, progress: bool = False, opts: ReadOptions | None = None, stop_after: int | None = None,
        runtime: str = "auto", jobs: int | None = None) -> TagSummary:
    """Tag ``paths`` into ``output`` (.parquet, .csv or .jsonl); see the module docstring.

    ``stop_after`` stops after that many posts without merging (simulates a killed run in tests).
    ``runtime``: ``"onnx"`` runs a transformer's encoder with ONNX Runtime (``classify.onnxrt``),
    ``"torch"`` with PyTorch, ``"bf16"`` with PyTorch multiplying in bfloat16 (CPUs with AMX or
    AVX512-BF16; ``TransformerModel.use_bf16``), ``"auto"`` with ONNX Runtime when it is installed.
    ``jobs``: worker processes (``classify.parallel``; default ``auto_jobs``); 1 tags in this process.
    """
    output = Path(output)
    if output.suffix.lower() not in (".parquet", ".csv", ".jsonl"):
        raise ConfigError(f"{output}: output must end in .parquet, .csv or .jsonl")
    check_int("", "batch_size", batch_size, 1)
    model_dir = Path(model_dir) if model_dir else default_model_dir()
    check_runtime(runtime)
    if jobs is not None:
        check_int("", "jobs", jobs, 1)
    kind = read_card(model_dir).get("kind")
    asked, runtime = runtime, resolve_runtime(runtime, kind)
    jobs = jobs or auto_jobs(kind, sum(Path(p).stat().st_size for p in paths if Path(p).is_file()))
    here = runtime if jobs == 1 else "torch"  # with workers, each worker loads its own copy for its runtime
    try:
        model = load_model(model_dir, runtime=here)
    except (ModelError, ConfigError):
        raise
    except Exception as exc:  # an encoder the ONNX exporter cannot handle: PyTorch gives the same labels
        if here != "onnx":
            raise
        if asked == "onnx":
            raise ConfigError(f"{model_dir}: the encoder could not be exported to ONNX ({type(exc).__name__}: {exc}); use --runtime torch") from None
        print(f"note: ONNX export failed ({type(exc).__name__}); tagging with PyTorch", file=sys.stderr)
        model, runtime = load_model(model_dir), "torch"
    fingerprint = {"inputs": [str(Path(p).resolve()) for p in paths], "sizes": [Path(p).stat().st_size if Path(p).exists() else None for p in paths],
                   "model": str(Path(model_dir).resolve()), "model_card": model.card_.get("date")}
    writer = PartWriter(output, resume, fingerprint)
    summary = TagSummary(n_resumed=writer.done_rows, jobs=jobs)
    changed = f"{writer.dir}: the input changed since the interrupted run; run without --resume"
    skip = writer.done_rows
    if jobs > 1:
        batches: Iterator[tuple[list[dict], dict | None]] = parallel_batches(
            paths, opts or ReadOptions(), model_dir=model_dir, runtime=runtime, jobs=jobs, batch_size=batch_size,
            skipped=summary.skipped, skip_posts=skip, last_post_id=writer.last_post_id, what_changed=changed)
        skip = 0  # dropped before the workers
    else:
        batches = ((b, None) for b in batched(iter_posts(paths, opts, summary.skipped), batch_size))
    cache: OrderedDict = OrderedDict()
    bar = _progress(progress)
    start = time.perf_counter()
    pending: list[dict] = []
    seen = 0
    for batch, predicted in batches:
        if skip:
            take = min(skip, len(batch))
            if take and writer.last_post_id is not None and skip == take and batch[take - 1]["post_id"] != writer.last_post_id:
                raise ConfigError(changed)
            skip -= take
            batch = batch[take:]
            if not batch:
                continue
        rows = tag_batch(model, batch, cache, predicted)
        for r in rows:
            summary.status[r["status"]] += 1
            summary.labels.update(r["labels"])
            if r["stance_west"]:
                summary.stance[r["stance_west"]] += 1
        summary.n_tagged += len(rows)
        pending += rows
        seen += len(rows)
        bar(len(rows))
        if len(pending) >= PART_ROWS:
            writer.write(pending)
            pending = []
        if stop_after is not None and seen >= stop_after:
            writer.write(pending)
            summary.seconds = time.perf_counter() - start
            summary.n_posts = writer.done_rows + seen
            return summary
    writer.write(pending)
    summary.seconds = time.perf_counter() - start
    summary.n_posts = writer.done_rows + summary.n_tagged
    writer.finish()
    bar(0, close=True)
    return summary


def _progress(enabled: bool):
    if not enabled:
        return lambda n, close=False: None
    from tqdm import tqdm

    bar = tqdm(unit=" posts", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

    def update(n: int, close: bool = False) -> None:
        bar.update(n)
        if close:
            bar.close()

    return update


def summary_html(tags_path: Path, out: Path) -> Path:
    """A small report: label prevalence by week (posts with dates), as a plot, plus counts."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = read_tags(tags_path)
    ok = df[df["status"] == "ok"].copy()
    ok["when"] = pd.to_datetime(ok["date"], errors="coerce", utc=True)
    dated = ok.dropna(subset=["when"])
    parts = [f"<h1>classify: tagging summary</h1><p>{len(df)} posts, {len(ok)} tagged, source file {tags_path.name}.</p>"]
    counts = Counter(lbl for row in ok["topics"].tolist() + ok["frames"].tolist() for lbl in row)
    parts.append("<table><tr><th>label</th><th>posts</th><th>share</th></tr>" + "".join(
        f"<tr><td>{k}</td><td>{v}</td><td>{v / max(len(ok), 1):.1%}</td></tr>" for k, v in counts.most_common()) + "</table>")
    if len(dated):
        dated["week"] = dated["when"].dt.tz_convert(None).dt.to_period("W").dt.start_time
        labels = [k for k, _ in counts.most_common(8)]
        table = pd.DataFrame({lbl: dated.apply(lambda r, lbl=lbl: lbl in r["topics"] or lbl in r["frames"], axis=1) for lbl in labels})
        table["week"] = dated["week"].values
        prev = table.groupby("week").mean()
        fig, ax = plt.subplots(figsize=(9, 4), dpi=110)
        prev.plot(ax=ax, marker="o")
        ax.set_ylabel("share of posts")
        ax.set_title("Label prevalence by week")
        ax.legend(fontsize=9, ncol=2)
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png")
        plt.close(fig)
        parts.append(f'<img alt="prevalence by week" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">')
    else:
        parts.append("<p>No post in the input has a date (web-view copies carry none), so there is no plot over time.</p>")
    html = "<!doctype html><meta charset='utf-8'><title>classify tagging summary</title><style>body{font-family:sans-serif;max-width:1000px;margin:auto}td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style>" + "".join(parts)
    atomic_write(out, lambda p: p.write_text(html, encoding="utf-8"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m classify.tag", __doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="dumps to tag (any format the ingest reads)")
    parser.add_argument("-o", "--output", type=Path, default=Path("tags.parquet"),
                        help="output file: .parquet, .csv or .jsonl; with --engine ray a DIRECTORY of Parquet files (plus _SUCCESS, the run summary)")
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: the best one of models/best.json, else models/baseline)")
    parser.add_argument("--batch-size", type=int, default=256, help="posts per prediction batch")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its written parts")
    parser.add_argument("--summary-html", type=Path, default=None, help="also write a small HTML report with label prevalence by week")
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

    def job() -> int:
        opts = ReadOptions(text_col=args.text_col, encoding=args.encoding)
        if args.engine == "ray":
            if args.resume or args.summary_html:
                raise ConfigError("--resume and --summary-html work with --engine local only")
            from .ray_engine import tag_ray

            summary = tag_ray(args.paths, args.output, model_dir=args.model, workers=args.workers, address=args.address,
                              batch_size=args.batch_size, cpus_per_worker=args.cpus_per_worker,
                              gpus_per_worker=args.gpus_per_worker, opts=opts, progress=not args.no_progress,
                              verbose=args.debug, runtime=args.runtime)
            print(summary.text())
            print(f"wrote {args.output}/ (Parquet files in input order by name; _SUCCESS holds the summary)")
            return 0
        if args.address:
            raise ConfigError("--address needs --engine ray")
        summary = tag(args.paths, args.output, model_dir=args.model, batch_size=args.batch_size, resume=args.resume,
                      progress=not args.no_progress, opts=opts, runtime=args.runtime, jobs=args.jobs)
        print(summary.text())
        print(f"wrote {args.output}")
        if args.summary_html:
            summary_html(args.output, args.summary_html)
            print(f"wrote {args.summary_html}")
        return 0

    return run_main(job, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
