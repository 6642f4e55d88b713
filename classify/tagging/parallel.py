"""Local multi-process tagging (``classify.tag --jobs N``): the CPU work of a batch in worker processes.

Why: cleaning a post (language identification above all) and the baseline's sparse arithmetic run
in one Python thread, so the serial path keeps one core busy however many there are. Here the
parent process reads the dump (cheap: JSON parsing and file I/O), hands batches of raw posts to
``N`` workers, each holding its own copy of the model, and takes the results back **in input
order**. A worker cleans its posts and predicts the first copy of every post id in the batch;
the parent then applies exactly the serial path's first-copy cache (``classify.tag.tag_batch``),
so the output is the same row for row, whatever ``N`` is. At most ``2 N`` batches are in flight,
so memory stays flat on a large dump.

Workers are started with the ``spawn`` method (no state forked from the parent, safe with torch).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from ..errors import ConfigError
from ..io.formats import read_file
from ..io.options import ReadOptions
from ..io.posts import finish_posts, post_identity
from ..io.readers.base import Skipped

_STATE: dict = {}


PARALLEL_MIN_BYTES = 16_000_000
"""Below this much input, starting workers (a few seconds each) costs more than it saves: measured with
the baseline on 2 cores (``classify.bench``), 1,000 posts (2.3 MB) tag at 222 posts/s with 2 workers and
448 in one process; 10,000 posts (23 MB) at 1,479 and 1,414; 100,000 posts at 3,143 and 1,677."""


def auto_jobs(kind: str, input_bytes: int) -> int:
    """Default worker count: every core (at most 4) for the baseline on inputs of 16 MB or more; 1 for
    smaller inputs, and for the transformer, whose PyTorch or ONNX Runtime kernels already use
    every core of this process."""
    if kind == "transformer" or input_bytes < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(4, _cores()))


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _exit_with_parent(parent: int, every: float = 0.5) -> None:
    """Exit this worker as soon as the parent process is gone (killed with SIGKILL, crashed).

    Why: a worker waits on its task queue, which never closes if the parent dies without cleaning
    up; it would hold its model's memory forever. A daemon thread polls the parent's PID instead.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _init(model_dir: str, runtime: str, opts: ReadOptions, threads: int, parent: int | None = None) -> None:
    from ..learners import load_model
    from ..learners.transformer.network import THREADS_ENV

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops the workers
    _exit_with_parent(parent if parent is not None else os.getppid())

    os.environ[THREADS_ENV] = str(threads)  # N workers share the cores instead of each taking them all
    model = load_model(model_dir, runtime=runtime, threads=threads)
    _STATE.update(model=model, opts=opts)


ROW_FIELDS = ("post_id", "message_id", "source", "locator", "date", "channel", "lang", "empty_text", "media", "too_long")
"""What the parent needs of a cleaned post to write its row (not its text or paragraphs)."""


def _work(items: list) -> tuple[list, dict[str, dict]]:
    """Clean a batch of raw posts and predict the first copy of each post id.

    Returns the posts reduced to ``ROW_FIELDS`` and the encoded predictions: the text went one
    way already, sending it back would only cost pickling.
    """
    from .rows import predict_first_copies

    opts = _STATE["opts"]
    done = iter(finish_posts([it for it in items if not isinstance(it, Skipped)], opts))
    finished = [it if isinstance(it, Skipped) else next(done) for it in items]
    predicted = predict_first_copies(_STATE["model"], [p for p in finished if not isinstance(p, Skipped)])
    return [it if isinstance(it, Skipped) else {k: it[k] for k in ROW_FIELDS} for it in finished], predicted


def _raw_items(paths: Iterable[str | Path], opts: ReadOptions) -> Iterator:
    for path in paths:
        yield from read_file(Path(path), opts)


def batched(it: Iterable, size: int) -> Iterator[list]:
    """Lists of ``size`` items (the last may be shorter), read lazily from ``it``."""
    batch: list = []
    for x in it:
        batch.append(x)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def skip_written(items: Iterable, opts: ReadOptions, n_posts: int, last_post_id: str | None, skipped: list[Skipped],
                 what_changed: str) -> Iterator:
    """The raw items after the first ``n_posts`` posts (those an interrupted run wrote already).

    Why: on ``--resume`` the parent drops them before they reach a worker, so they are neither
    cleaned with language identification nor predicted again; only their ids are made (cheap), to
    count posts exactly as the serial path does and to
    check that the last one is the post the parts end with. Skipped items still go to ``skipped``.
    """
    it = iter(items)
    seen = 0
    while seen < n_posts:
        item = next(it, None)
        if item is None:
            return
        ident = item if isinstance(item, Skipped) else post_identity(item, opts)
        if isinstance(ident, Skipped):
            skipped.append(ident)
            continue
        seen += 1
        if seen == n_posts and last_post_id is not None and ident[1] != last_post_id:
            raise ConfigError(what_changed)
    yield from it


def parallel_batches(paths: Iterable[str | Path], opts: ReadOptions, *, model_dir: Path, runtime: str, jobs: int,
                     batch_size: int, skipped: list[Skipped], skip_posts: int = 0, last_post_id: str | None = None,
                     what_changed: str = "") -> Iterator[tuple[list[dict], dict[str, dict]]]:
    """``(posts, predictions by post id)`` per batch, in input order; skipped items go to ``skipped``.

    ``skip_posts``: posts already written (``--resume``), dropped by ``skip_written`` before the workers.
    """
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=_init,
                               initargs=(str(model_dir), runtime, opts, max(1, _cores() // jobs), os.getpid()))
    inflight: deque = deque()
    try:
        raw = skip_written(_raw_items(paths, opts), opts, skip_posts, last_post_id, skipped, what_changed)
        for chunk in batched(raw, batch_size):
            inflight.append(pool.submit(_work, chunk))
            if len(inflight) >= 2 * jobs:
                yield _collect(inflight.popleft().result(), skipped)
        while inflight:
            yield _collect(inflight.popleft().result(), skipped)
    except BaseException:  # an error, Ctrl-C, SIGTERM or the consumer closing early: stop now, not after the queue
        stop_workers(pool)
        raise
    pool.shutdown(wait=True)


def stop_workers(pool: ProcessPoolExecutor, timeout: float = 5.0) -> None:
    """Cancel the queued batches and end the worker processes (terminate, then kill if they hang)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # the executor has no public handle on them
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)


def _collect(result: tuple[list, dict[str, dict]], skipped: list[Skipped]) -> tuple[list[dict], dict[str, dict]]:
    finished, predicted = result
    posts = []
    for item in finished:
        if isinstance(item, Skipped):
            skipped.append(item)
        else:
            posts.append(item)
    return posts, predicted
