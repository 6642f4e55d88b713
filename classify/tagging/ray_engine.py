"""Tag on a Ray cluster with Ray Data: the rows of ``classify.tag``, spread over workers.

    python -m classify.tag data/dumps/*.txt --engine ray --workers 2 -o tags/              # local Ray
    python -m classify.tag 'exports/*.jsonl' --engine ray --address auto -o /shared/tags/   # a cluster

How a run goes:

1. **Posts.** The driver (this process) reads the inputs (files, directories, globs; any format the
   ingest reads) with the ingest's readers, numbers the posts (``row``), gives each its ``post_id``
   and puts them, raw, in Ray's object store, one block per batch (the unit Ray schedules and
   retries). A copy of an earlier post whose text differs (emoji, case) carries the first copy's
   paragraphs, so every copy is tagged from the same text on whichever worker it lands, as the
   local engine's cache does.
2. **Tagging.** ``ray.data.from_arrow_refs(blocks).map_batches(TaggerActor, compute=ActorPoolStrategy(size=workers))``:
   a fixed pool of actors, each loading the model once; for each batch an actor finishes the posts
   with ``classify.io.posts.finish_posts`` (cleaning, language: the costly part of reading) and tags
   them with ``classify.tag.tag_batch``. It writes each batch as ``part-<first row>.parquet``
   (atomically) with exactly the local engine's columns. A worker whose process dies is restarted and its batch
   run again (Ray Data's defaults); the rerun writes the same file names, so a retried batch
   replaces its files instead of adding rows.
3. **Check.** The part files must tile rows ``0..n-1`` exactly (each row once, in order of the file
   names); then ``_SUCCESS`` (the run summary, JSON) is written and the directory moved into place,
   so ``output_dir`` only ever holds a complete result. ``read_output`` reads it in input order.

Ray is imported only when a run starts, so the rest of classify works without it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import sys
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._cli import atomic_write
from ..errors import ClassifyError, ConfigError, InputError, check_int
from ..io.formats import read_file
from ..io.inputs import expand_inputs
from ..io.options import ReadOptions
from ..io.posts import finish_posts as ingest_finish_posts
from ..io.posts import post_identity
from ..io.readers.base import RawPost, Skipped
from ..learners import default_model_dir
from ..learners.transformer.onnxrt import resolve_runtime
from .lock import OutputLock
from .rows import CACHE_POSTS, read_tags, tag_batch, to_table
from .summary import TagSummary

INSTALL_HINT = "--engine ray needs Ray: pip install -e '.[ray]'"
FAIL_ONCE_ENV = "CLASSIFY_RAY_FAIL_ONCE"
"""Test hook: a marker file path; the first batch to run makes its worker process die once."""
SUCCESS_FILE = "_SUCCESS"
RAW_COLUMNS = ("source", "locator", "text", "message_id", "channel", "date")
"""The fields of a ``RawPost`` the tag rows need, besides ``media``."""
_PART_RE = re.compile(r"part-(\d{12})\.parquet")
_CLASSIFY_ERROR_RE = re.compile(r"classify\.errors\.(\w+): ([^\n]+)")
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


class IncompleteOutputError(ClassifyError, RuntimeError):
    """The cluster run finished without exactly one row for every input post."""


@dataclass
class RaySummary(TagSummary):
    """The local engine's counts, plus where the time went and the run's settings."""

    workers: int = 0
    n_files: int = 0
    seconds_prepare: float = 0.0
    seconds_ray_start: float = 0.0
    seconds_tagging: float = 0.0

    def text(self) -> str:
        lines = super().text().splitlines()
        lines.insert(1, f"ray: {self.workers} workers, {self.n_files} Parquet files; starting Ray {self.seconds_ray_start:.1f} s, "
                        f"reading inputs {self.seconds_prepare:.1f} s, tagging {self.seconds_tagging:.1f} s")
        return "\n".join(lines)

    def to_json(self) -> dict:
        rate = self.n_posts / self.seconds if self.seconds > 0 else None
        return {"engine": "ray", "workers": self.workers, "n_posts": self.n_posts, "n_files": self.n_files,
                "status": dict(self.status.most_common()), "labels": dict(self.labels.most_common()),
                "stance": dict(self.stance.most_common()), "skipped": len(self.skipped),
                "seconds": round(self.seconds, 3), "posts_per_s": round(rate, 1) if rate else None,
                "seconds_prepare": round(self.seconds_prepare, 3), "seconds_ray_start": round(self.seconds_ray_start, 3),
                "seconds_tagging": round(self.seconds_tagging, 3)}


# --------------------------------------------------------------------------- the actor
class TaggerActor:
    """One Ray Data worker: loads the model once, then tags batches into part files.

    ``fail_once`` is the fault-injection hook (``$CLASSIFY_RAY_FAIL_ONCE``): if that marker file
    does not exist, the first batch creates it and kills its process after writing its files, so
    exactly one crash happens in a run and the retried batch rewrites files that already exist.
    """

    def __init__(self, model_dir: str, out_dir: str, opts: ReadOptions, codebook: str | None = None, threads: int = 1,
                 fail_once: str | None = None, runtime: str = "torch") -> None:
        if codebook:  # the driver's $CLASSIFY_CODEBOOK, for workers on other nodes
            from ..codebook import ENV_VAR

            os.environ[ENV_VAR] = codebook
        from ..learners import load_model

        self.model = load_model(model_dir, runtime=runtime, threads=threads)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        self.out_dir = Path(out_dir)
        self.opts = opts
        self.cache: OrderedDict = OrderedDict()
        self.fail_once = fail_once

    def __call__(self, batch) -> dict:
        recs = batch.to_pylist()
        rows = np.array([r["row"] for r in recs], dtype=np.int64)
        import pyarrow.parquet as pq

        table = to_table(tag_batch(self.model, finish_posts(recs, self.opts), self.cache))
        starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)  # contiguous runs of rows, one file each
        ends = [*starts[1:], len(rows)]
        for a, b in zip(starts, ends):
            part = table.slice(a, b - a)
            atomic_write(self.out_dir / f"part-{rows[a]:012d}.parquet", lambda p, part=part: pq.write_table(part, p))
        if self.fail_once:
            _crash_once(self.fail_once)
            self.fail_once = None
        return {"first_row": rows[starts], "n_rows": np.subtract(ends, starts)}


def _crash_once(marker: str) -> None:
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, f"simulated worker crash in pid {os.getpid()}\n".encode())
    os.close(fd)
    print(f"{FAIL_ONCE_ENV}: simulated worker crash (pid {os.getpid()})", file=sys.stderr, flush=True)
    os._exit(1)


# --------------------------------------------------------------------------- inputs
def _postsoutput_schema():
    import pyarrow as pa

    return pa.schema([("row", pa.int64()), ("post_id", pa.string()), *[(c, pa.string()) for c in RAW_COLUMNS],
                      ("media", pa.bool_()), ("tag_paragraphs", pa.list_(pa.string()))])


def post_blocks(files: Sequence[Path], opts: ReadOptions, skipped: list[Skipped], block_rows: int) -> Iterator:
    """The input posts, raw, as Arrow tables of ``block_rows`` rows numbered by ``row``.

    Only what is needed to number the posts and find copies is done here (reading, cleaning the
    paragraphs, the id); the workers finish the posts with ``classify.io.posts.finish_posts``, so the
    costly language identification runs in parallel. A copy of an earlier post (same ``post_id``,
    within the local engine's cache window of ``CACHE_POSTS`` posts) whose text differs (emoji,
    case) gets the first copy's paragraphs in ``tag_paragraphs``: it is tagged from that text, as the
    local engine tags it, on whichever worker it lands.
    """
    import pyarrow as pa

    schema = _postsoutput_schema()
    first: OrderedDict[str, list[str]] = OrderedDict()
    rows: list[dict] = []
    n = 0
    for path in files:
        for item in read_file(Path(path), opts):
            ident = item if isinstance(item, Skipped) else post_identity(item, opts)  # as finish_post makes it
            if isinstance(ident, Skipped):
                skipped.append(ident)
                continue
            paragraphs, post_id = ident
            tag_paragraphs = None
            if paragraphs:
                known = first.get(post_id)
                if known is None:
                    first[post_id] = paragraphs
                    if len(first) > CACHE_POSTS:
                        first.popitem(last=False)
                elif known != paragraphs:
                    tag_paragraphs = known
            rows.append({"row": n, "post_id": post_id, **{c: _str(getattr(item, c)) for c in RAW_COLUMNS},
                         "media": bool(item.media), "tag_paragraphs": tag_paragraphs})
            n += 1
            if len(rows) == block_rows:
                yield pa.Table.from_pylist(rows, schema=schema)
                rows = []
    if rows:
        yield pa.Table.from_pylist(rows, schema=schema)


def _str(v) -> str | None:
    return None if v is None else str(v)


def finish_posts(batch: list[dict], opts: ReadOptions) -> list[dict]:
    """``post_blocks`` rows into the posts ``iter_posts`` yields (on a worker)."""
    posts = []
    for rec, post in zip(batch, ingest_finish_posts([RawPost(**{c: rec[c] for c in RAW_COLUMNS}, media=rec["media"]) for rec in batch], opts)):
        if post["post_id"] != rec["post_id"]:
            raise InputError(f"{rec['source']}:{rec['locator']}: the driver and the worker disagree on this post; "
                             "classify.ray_engine.post_blocks is out of step with classify.io.posts.finish_post")
        if rec["tag_paragraphs"] is not None:
            post["paragraphs"] = rec["tag_paragraphs"]
        posts.append(post)
    return posts


# --------------------------------------------------------------------------- the output
def _parts(directory: Path) -> list[tuple[int, Path]]:
    return sorted((int(m.group(1)), f) for f in directory.iterdir() if (m := _PART_RE.fullmatch(f.name)))


def check_output(directory: str | Path, n_rows: int, summary: TagSummary) -> int:
    """Check that the part files hold each row ``0..n_rows-1`` exactly once; count into ``summary``.

    Returns the number of part files; raises ``IncompleteOutputError`` on a missing or repeated row.
    """
    import pyarrow.parquet as pq

    directory = Path(directory)
    parts = _parts(directory)
    expect = 0
    for first, f in parts:
        table = pq.read_table(f, columns=["status", "topics", "frames", "stance_west"])
        if first != expect:
            what = f"rows {expect}..{first - 1} are missing" if first > expect else f"rows from {first} are there twice"
            raise IncompleteOutputError(f"{f}: {what}; the output is incomplete, rerun the job")
        expect += table.num_rows
        summary.status.update(table.column("status").to_pylist())
        summary.stance.update(s for s in table.column("stance_west").to_pylist() if s)
        for col in ("topics", "frames"):
            for v in table.column(col).to_pylist():
                summary.labels.update(v or [])
    if expect != n_rows:
        raise IncompleteOutputError(f"{directory}: {n_rows - expect} of {n_rows} input rows have no output row "
                                    f"(first missing: {expect}); rerun the job")
    return len(parts)


def read_output(directory: str | Path) -> pd.DataFrame:
    """A ``tag_ray`` output directory as one DataFrame in input order, lists and maps decoded (``read_tags``)."""
    return read_tags(directory)


def _check_output_dir(output_dir: Path) -> None:
    if output_dir.suffix.lower() in (".csv", ".jsonl", ".json"):
        raise ConfigError(f"{output_dir}: with --engine ray, -o is a directory of Parquet files; give a directory name")
    if output_dir.exists():
        if not output_dir.is_dir():
            raise ConfigError(f"{output_dir}: exists and is a file; with --engine ray, -o is a directory of Parquet files")
        if any(output_dir.iterdir()) and not (output_dir / SUCCESS_FILE).exists():
            raise ConfigError(f"{output_dir}: exists and is not the output of an earlier ray run (no {SUCCESS_FILE}); "
                              "remove it or choose another -o")


def _replace_dir(new: Path, dest: Path) -> None:
    """Move ``new`` to ``dest``; an earlier run's output there is replaced."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        dest.rename(old)
    new.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- Ray
def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def _reachable(address: str) -> None:
    """Fail fast on a ``host:port`` or ``ray://host:port`` where nothing listens (Ray would retry for minutes)."""
    m = re.fullmatch(r"(?:ray://)?\[?([^\]/]+?)\]?:(\d+)", address)
    if not m:
        return  # "auto", or a form Ray itself will judge
    try:
        socket.create_connection((m.group(1), int(m.group(2))), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); start one with "
                          "`ray start --head` or omit --address for a local instance") from None


def _start_ray(ray, address: str | None, cpus: float, gpus: float, verbose: bool) -> bool:
    """Connect to ``address`` or start a local instance (unless this process already has Ray running);
    check that the worker pool fits. True if this call started Ray."""
    started = not ray.is_initialized()
    level = logging.INFO if verbose else logging.ERROR
    if started and address is None:  # a local instance with a logical CPU per worker at least (they share the cores)
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, int(np.ceil(cpus))), include_dashboard=False,
                 logging_level=level, log_to_driver=verbose)
    elif started:
        _reachable(address)
        try:
            ray.init(address=address, logging_level=level, log_to_driver=verbose)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"--address {address}: cannot connect to a Ray cluster ({' '.join(str(exc).split())})") from None
    have = ray.cluster_resources()
    if have.get("CPU", 0) < cpus or have.get("GPU", 0) < gpus:
        msg = (f"the Ray cluster has {have.get('CPU', 0):g} CPUs and {have.get('GPU', 0):g} GPUs; the workers ask for "
               f"{cpus:g} CPUs and {gpus:g} GPUs (--workers x --cpus-per-worker, --gpus-per-worker)")
        if address is None:  # a local instance does not grow: the run would wait for ever
            if started:
                ray.shutdown()
            raise ConfigError(msg)
        print(f"warning: {msg}; the run waits for more nodes (lower --workers if none will come)", file=sys.stderr)
    return started


def _classify_cause(exc: BaseException) -> ClassifyError | None:
    """The ``ClassifyError`` a worker raised (e.g. ``ModelError`` for a model missing on its node).

    Ray hands it to the driver only as text inside its own errors, so the last
    ``classify.errors.<Class>: <message>`` line of the chain is rebuilt.
    """
    from .. import errors

    found = None
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        for m in _CLASSIFY_ERROR_RE.finditer(_ANSI_RE.sub("", str(e))):
            cls = getattr(errors, m.group(1), None)
            if isinstance(cls, type) and issubclass(cls, ClassifyError):
                found = cls(m.group(2).strip())
        e = e.__cause__ or e.__context__
    return found


def tag_ray(paths: Sequence[str | Path] | str | Path, output_dir: str | Path, *, model_dir: str | Path | None = None,
            workers: int = 2, address: str | None = None, batch_size: int = 256, cpus_per_worker: float = 1.0,
            gpus_per_worker: float = 0.0, opts: ReadOptions | None = None, progress: bool = False,
            verbose: bool = False, runtime: str = "auto") -> RaySummary:
    """Tag ``paths`` on Ray into the Parquet directory ``output_dir``; see the module docstring.

    Parameters
    ----------
    paths : files, directories or glob patterns
        Any format the ingest reads; they are read by this process, as the local engine reads them.
    output_dir : path
        Directory of ``part-<first row>.parquet`` files with the local engine's columns, plus
        ``_SUCCESS`` (the summary, JSON). It appears only once the run is complete and checked; an
        earlier run's output there is replaced. On a multi-node cluster it must be on storage that
        every node and this machine see (NFS or similar): the workers write into it.
    model_dir : path, default=None
        Model directory, at the same path on every node; ``None``: as ``classify.tag``.
    workers : int, default=2
        Actors in the pool, each with one copy of the model.
    address : str, default=None
        ``None``: start a local Ray instance (or use the one this process already started);
        ``"auto"``: the cluster this machine joined with ``ray start``; ``"host:6379"`` or
        ``"ray://host:10001"`` (Ray Client, needs ``ray[client]``): a cluster elsewhere.
    batch_size : int, default=256
        Posts per prediction batch; each batch is one output file.
    cpus_per_worker, gpus_per_worker : float, default=1.0, 0.0
        Resources each actor reserves (the transformer uses ``cpus_per_worker`` torch threads).
    progress : bool, default=False
        Ray Data's progress bars.
    verbose : bool, default=False
        Ray's log and the workers' output on stderr.
    runtime : {"auto", "torch", "onnx", "bf16"}, default="auto"
        As ``classify.tag``'s ``--runtime``: a transformer's encoder in ONNX Runtime (each node
        exports or reads its own cached graph), PyTorch, or PyTorch in bfloat16 (checked on this
        machine, and again on each node's CPU when its actor loads the model); ``auto`` takes ONNX
        Runtime when installed.
    """
    start = time.perf_counter()
    check_int("", "workers", workers, 1)
    check_int("", "batch_size", batch_size, 1)
    if cpus_per_worker < 0 or gpus_per_worker < 0 or cpus_per_worker + gpus_per_worker <= 0:
        raise ConfigError("each worker needs CPUs or GPUs: --cpus-per-worker and --gpus-per-worker must be >= 0, not both 0")
    output_dir = Path(output_dir).resolve()
    _check_output_dir(output_dir)
    model_dir = Path(model_dir or default_model_dir()).resolve()
    from ..codebook import ENV_VAR, Codebook
    from ..learners.card import check_codebook, read_card

    card = read_card(model_dir)
    check_codebook(model_dir, card, Codebook.load())  # fail here, in one line, before Ray starts
    runtime = resolve_runtime(runtime, card.get("kind"))
    ray = _import_ray()
    opts = opts or ReadOptions()
    files = expand_inputs(paths)
    for f in files:
        if not f.exists():
            raise InputError(f"{f}: no such file")
        if f.resolve().is_relative_to(output_dir):
            raise ConfigError(f"{output_dir}: holds the input {f}; the run would replace it, choose another -o")

    summary = RaySummary(workers=workers)
    staging = output_dir.with_name(f".{output_dir.name}.ray-staging")
    lock = OutputLock(output_dir)
    lock.acquire()  # before the staging folder: another run may be using it
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    started = False
    try:
        # Posts go to the object store as they are read, so Ray starts first.
        started = _start_ray(ray, address, workers * cpus_per_worker, workers * gpus_per_worker, verbose)
        t_ray = time.perf_counter()
        blocks, n_rows = [], 0
        for block in post_blocks(files, opts, summary.skipped, batch_size):
            blocks.append(ray.put(block))
            n_rows += block.num_rows
        t_read = time.perf_counter()
        if n_rows:
            _run_pipeline(ray, blocks, staging, model_dir=model_dir, opts=opts, workers=workers, batch_size=batch_size,
                          cpus=cpus_per_worker, gpus=gpus_per_worker, codebook=os.environ.get(ENV_VAR),
                          fail_once=os.environ.get(FAIL_ONCE_ENV) or None, progress=progress, verbose=verbose,
                          runtime=runtime)
        else:  # nothing to tag: an empty, well-formed output
            import pyarrow.parquet as pq

            pq.write_table(to_table([]), staging / f"part-{0:012d}.parquet")
        del blocks
        t_tagged = time.perf_counter()
        summary.n_files = check_output(staging, n_rows, summary)
        summary.n_posts = summary.n_tagged = n_rows
        summary.seconds = time.perf_counter() - start
        summary.seconds_ray_start, summary.seconds_prepare = t_ray - start, t_read - t_ray
        summary.seconds_tagging = t_tagged - t_read
        (staging / SUCCESS_FILE).write_text(json.dumps(summary.to_json(), indent=2) + "\n", encoding="utf-8")
        _replace_dir(staging, output_dir)
    finally:
        if started:
            ray.shutdown()
        shutil.rmtree(staging, ignore_errors=True)
        lock.release()
    return summary


def _run_pipeline(ray, blocks: list, out_dir: Path, *, model_dir: Path, opts: ReadOptions, workers: int, batch_size: int,
                  cpus: float, gpus: float, codebook: str | None, fail_once: str | None, progress: bool, verbose: bool,
                  runtime: str = "torch") -> None:
    ctx = ray.data.DataContext.get_current()
    saved = ctx.enable_progress_bars
    ctx.enable_progress_bars = progress
    data_logger = logging.getLogger("ray.data")
    level = data_logger.level
    if not verbose:
        data_logger.setLevel(logging.ERROR)
    try:
        ds = ray.data.from_arrow_refs(blocks).map_batches(
            TaggerActor, batch_size=batch_size, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=cpus, num_gpus=gpus,
            fn_constructor_kwargs={"model_dir": str(model_dir), "out_dir": str(out_dir), "opts": opts,
                                   "codebook": codebook, "threads": max(1, int(cpus)), "fail_once": fail_once,
                                   "runtime": runtime})
        with warnings.catch_warnings():  # an input smaller than a batch per worker is fine
            warnings.filterwarnings("ignore", message="The minimum number of concurrent actors")
            ds.take_all()  # the actors write the files; what comes back is a few numbers per batch
    except Exception as exc:  # a ClassifyError on a worker arrives wrapped by Ray: show it in one line
        cause = _classify_cause(exc)
        if cause is None:
            raise
        raise cause from exc
    finally:
        data_logger.setLevel(level)
        ctx.enable_progress_bars = saved
