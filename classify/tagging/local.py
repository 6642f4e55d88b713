"""Tagging in this process (or in local worker processes): stream posts, predict, write parts, merge.

Memory stays flat as the dump grows: posts are read lazily and rows are written in parts of
``PART_ROWS``; the output appears only when the run is complete (parts live in ``<output>.parts/``
until then), and ``--resume`` continues from the parts already written.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from .._cli import atomic_write, check_output
from ..errors import ConfigError, ModelError, check_int
from ..io.inputs import expand_inputs
from ..io.options import ReadOptions
from ..io.posts import iter_posts
from ..learners import default_model_dir, load_model, read_card
from ..learners.transformer.onnxrt import check_runtime, resolve_runtime
from .lock import OutputLock
from .parallel import auto_jobs, batched, parallel_batches
from .rows import LAYOUT, output_schema, tag_batch, text_lines, to_table
from .summary import TagSummary

PART_ROWS = 5000



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
        self.fresh = True
        if self.dir.exists():
            manifest = self._manifest()
            if resume and manifest.get("fingerprint") == fingerprint:
                self.parts = sorted(self.dir.glob("part-*.parquet"))
                self.fresh = not self.parts
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

    def rows_written(self) -> int:
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(p).metadata.num_rows for p in self.parts)

    def count_written(self, summary: TagSummary) -> None:
        """Add the statuses, labels and stances of the parts already written (``--resume``) to ``summary``,
        so its counts cover every row of the output, not only the rows tagged now."""
        import pyarrow.parquet as pq

        for part in self.parts:
            t = pq.read_table(part, columns=["status", "topics", "frames", "stance_west"]).to_pydict()
            summary.status.update(t["status"])
            summary.stance.update(s for s in t["stance_west"] if s)
            for labels in (*t["topics"], *t["frames"]):
                summary.labels.update(labels or [])

    def discard(self) -> None:
        """Remove the parts folder (a failed run: nothing in it can be resumed usefully)."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        import pyarrow.parquet as pq

        part = self.dir / f"part-{len(self.parts):06d}.parquet"
        table = to_table(rows)
        atomic_write(part, lambda p: pq.write_table(table, p))
        self.parts.append(part)

    def finish(self) -> Path:
        """Merge the parts into the output (streaming, flat memory), atomically; drop the parts."""
        fmt = self.output.suffix.lower()

        def write(tmp: Path) -> None:
            import pyarrow.parquet as pq

            if fmt == ".parquet":
                with pq.ParquetWriter(tmp, output_schema()) as w:
                    for part in self.parts:
                        w.write_table(pq.read_table(part, schema=output_schema()))
                return
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                for k, part in enumerate(self.parts):
                    fh.writelines(text_lines(pq.read_table(part, schema=output_schema()), fmt, header=(k == 0)))
                if not self.parts and fmt == ".csv":
                    fh.writelines(text_lines(to_table([]), fmt, header=True))

        atomic_write(self.output, write)
        shutil.rmtree(self.dir)
        return self.output


OUTPUT_SUFFIXES = (".parquet", ".csv", ".jsonl")


def tag(paths: Sequence[str | Path], output: str | Path, *, model_dir: str | Path | None = None, batch_size: int = 256,
        resume: bool = False, progress: bool = False, opts: ReadOptions | None = None, stop_after: int | None = None,
        runtime: str = "auto", jobs: int | None = None) -> TagSummary:
    """Tag ``paths`` into ``output`` (.parquet, .csv or .jsonl); see the module docstring.

    ``stop_after`` stops after that many posts without merging (simulates a killed run in tests).
    ``runtime``: ``"onnx"`` runs a transformer's encoder with ONNX Runtime (``classify.onnxrt``),
    ``"torch"`` with PyTorch, ``"bf16"`` with PyTorch multiplying in bfloat16 (CPUs with AMX or
    AVX512-BF16; ``TransformerModel.use_bf16``), ``"auto"`` with ONNX Runtime when it is installed.
    ``jobs``: worker processes (``classify.parallel``; default ``auto_jobs``); 1 tags in this process.

    The output is checked before any work (``check_output``) and locked for the run
    (``OutputLock``). A run that fails removes the parts it started; an interrupted one (Ctrl-C,
    SIGTERM) keeps them, with the rows tagged so far, for ``--resume``.
    """
    paths = expand_inputs(paths)
    output = check_output(output, paths, OUTPUT_SUFFIXES)
    check_int("", "batch_size", batch_size, 1)
    model_dir = Path(model_dir) if model_dir else default_model_dir()
    check_runtime(runtime)
    if jobs is not None:
        check_int("", "jobs", jobs, 1)
    with OutputLock(output):
        model, runtime, jobs = _load(model_dir, runtime, jobs, paths)
        fingerprint = {"inputs": [str(Path(p).resolve()) for p in paths], "sizes": [Path(p).stat().st_size if Path(p).exists() else None for p in paths],
                       "model": str(Path(model_dir).resolve()), "model_card": model.card_.get("date"), "layout": LAYOUT}
        writer = PartWriter(output, resume, fingerprint)
        try:
            return _run(paths, writer, model, model_dir=model_dir, runtime=runtime, jobs=jobs, batch_size=batch_size,
                        progress=progress, opts=opts or ReadOptions(), stop_after=stop_after)
        except KeyboardInterrupt as exc:
            kept = f"{writer.rows_written()} rows kept in {writer.dir}/; rerun with --resume to continue"
            raise type(exc)(kept) from None
        except BaseException:
            if writer.fresh:
                writer.discard()
            raise


def _load(model_dir: Path, runtime: str, jobs: int | None, paths: Sequence[Path]):
    """The model (in this process: for its runtime, or PyTorch when workers load their own), the
    runtime in use and the number of worker processes."""
    kind = read_card(model_dir).get("kind")
    asked, runtime = runtime, resolve_runtime(runtime, kind)
    jobs = jobs or auto_jobs(kind, sum(Path(p).stat().st_size for p in paths if Path(p).is_file()))
    here = runtime if jobs == 1 else "torch"  # with workers, each worker loads its own copy for its runtime
    try:
        return load_model(model_dir, runtime=here), runtime, jobs
    except (ModelError, ConfigError):
        raise
    except Exception as exc:  # an encoder the ONNX exporter cannot handle: PyTorch gives the same labels
        if here != "onnx":
            raise
        if asked == "onnx":
            raise ConfigError(f"{model_dir}: the encoder could not be exported to ONNX ({type(exc).__name__}: {exc}); use --runtime torch") from None
        print(f"note: ONNX export failed ({type(exc).__name__}); tagging with PyTorch", file=sys.stderr)
        return load_model(model_dir), "torch", jobs


def _run(paths: Sequence[Path], writer: PartWriter, model, *, model_dir: Path, runtime: str, jobs: int, batch_size: int,
         progress: bool, opts: ReadOptions, stop_after: int | None) -> TagSummary:
    """Stream the batches through the model into ``writer``'s parts, then merge them (unless ``stop_after``)."""
    summary = TagSummary(n_resumed=writer.done_rows, jobs=jobs)
    writer.count_written(summary)
    changed = f"{writer.dir}: the input changed since the interrupted run; run without --resume"
    skip = writer.done_rows
    if jobs > 1:
        batches: Iterator[tuple[list[dict], dict | None]] = parallel_batches(
            paths, opts, model_dir=model_dir, runtime=runtime, jobs=jobs, batch_size=batch_size,
            skipped=summary.skipped, skip_posts=skip, last_post_id=writer.last_post_id, what_changed=changed)
        skip = 0  # dropped before the workers
    else:
        batches = ((b, None) for b in batched(iter_posts(paths, opts, summary.skipped), batch_size))
    cache: OrderedDict = OrderedDict()
    bar = _progress(progress)
    start = time.perf_counter()
    pending: list[dict] = []
    seen = 0
    try:
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
            summary.count(rows)
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
    except KeyboardInterrupt:
        writer.write(pending)  # whole rows: kept for --resume
        raise
    finally:
        if hasattr(batches, "close"):
            batches.close()  # stops the worker processes now, on success, error or interrupt
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

