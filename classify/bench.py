"""Measured speed, memory and scale: ingest, tagging per model, training, load time, matmul limit.

    python -m classify.bench                           # full: 1k, 10k (3 runs) and 100k posts (1 run)
    python -m classify.bench --quick                   # under a minute: 1k posts, 1 run, baseline only
    python -m classify.bench --sizes 1000,10000 --runs 5

Writes ``eval/bench/bench.json`` and prints a table. Each figure is the median of the runs with min
and max. Dumps of N posts are made by replicating the sample dumps with varied text (a counter
and shuffled words per copy, so duplicate detection does not make them free). Memory is the peak
RSS of a fresh child process running the job, so runs do not pollute each other.
Two kinds of tagging figure: ``tag`` is the whole ``classify.tag`` command in a fresh process
(reading, cleaning, language ID, model, writing Parquet), for the baseline with its default
``--jobs`` (worker processes on every core) and with one process, for the transformer with
PyTorch, with ONNX Runtime (``--runtime onnx``, when installed) and with bfloat16 matrix products
(``--runtime bf16``, on CPUs with AMX or AVX512-BF16); ``model`` is the model alone
in one process on posts already ingested (``Model.predict`` on batches of 256 posts). The faster
transformer paths (ONNX Runtime, bfloat16) are compared with PyTorch fp32 on the sample dumps: posts
with the same labels, largest probability difference.
The reference figures: the machine's fp32 (and, where the CPU has it, bfloat16) matrix-multiply
rate (torch, GFLOP/s, 2 threads), the
transformer's achieved rate (encoder FLOPs of the tokens it encoded / model seconds, see
``classify.transformer.encoder_flops``) as a fraction of it, and a plain ``transformers``
``feature-extraction`` pipeline loop over the posts of the sample dumps with the same fine-tuned
model, heads and cue stacking (one call per paragraph, no deduplication, no length bucketing),
against ``classify.tag`` on the same dumps, both timed with their model loading, with the largest
probability difference between the two.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._cli import atomic_write_text, make_parser, run_main
from .errors import ConfigError
from .learners.transformer.onnxrt import native_bf16, onnx_available

SAMPLE_DUMPS = Path("data/dumps")
POOLS = Path("data/pool")
OUT = Path("eval/bench/bench.json")
REPORT_OUT = Path("eval/bench/report.json")


def make_dump(n_posts: int, out: Path, seed: int = 0) -> Path:
    """A JSONL dump of ``n_posts`` posts built from the sample corpus with varied text."""
    import random

    from .io.posts import ingest

    base = ingest(sorted(SAMPLE_DUMPS.glob("*.txt")))
    texts = [t for t in base["text"] if t]
    rng = random.Random(seed)
    with out.open("w", encoding="utf-8") as fh:
        for i in range(n_posts):
            paras = texts[i % len(texts)].split("\n")
            k = rng.randrange(len(paras))
            words = paras[k].split()
            rng.shuffle(words)
            paras[k] = " ".join(words)
            paras.insert(0, f"Post {i} of the benchmark dump.")
            fh.write(json.dumps({"id": i, "date": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}", "channel": "bench",
                                 "text": "\n".join(paras)}, ensure_ascii=False) + "\n")
    return out


def make_pool_dump(n_posts: int, out: Path, seed: int = 0) -> Path:
    """A JSONL dump of ``n_posts`` real pool posts (``data/pool``) with their channels, each copy's text
    varied (so no two posts share an id) and dates spread over two years (monthly buckets)."""
    import random
    from datetime import datetime, timedelta

    pool = [json.loads(line) for p in sorted(POOLS.glob("*.jsonl")) for line in p.open(encoding="utf-8")]
    rng = random.Random(seed)
    with out.open("w", encoding="utf-8") as fh:
        for i in range(n_posts):
            src = pool[i % len(pool)]
            when = datetime(2023, 1, 1) + timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
            fh.write(json.dumps({"id": i, "date": when.isoformat() + "+00:00", "channel": src["channel"],
                                 "text": f"{src['text']}\n(copy {i // len(pool)})"}, ensure_ascii=False) + "\n")
    return out


def bench_report(n_posts: int, model_dir: Path, work: Path) -> dict[str, Any]:
    """``classify.report`` on ``n_posts`` tagged posts in a fresh process (wall seconds, peak RSS); tagging is setup."""
    dump = make_pool_dump(n_posts, work / "pool_dump.jsonl")
    tags = work / "tags.parquet"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "classify.tag", str(dump), "-o", str(tags), "--model", str(model_dir), "--no-progress"],
                   check=True, capture_output=True)
    tag_seconds = time.perf_counter() - t
    code = f"""
import time, json
from classify.report import report
t=time.perf_counter(); report([{str(tags)!r}], {str(work / 'report.html')!r}, model_dir={str(model_dir)!r}, inputs=[{str(dump)!r}])
print(json.dumps({{'seconds': time.perf_counter()-t}}))"""
    out = _child(code)
    return {"posts": n_posts, "report_seconds": round(out["seconds"], 1), "peak_rss_mb": round(out["peak_rss_mb"]),
            "tag_seconds_setup": round(tag_seconds, 1), "model": str(model_dir),
            "heldout": (model_dir / "heldout.parquet").exists()}


def _child(code: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints one JSON line; add its peak RSS (MB) and that of its
    largest child process (``classify.tag``'s workers), 0 without children."""
    wrapper = code + ("\nimport resource, json as _j\nprint('@@' + _j.dumps({'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
                      "'worker_peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n")
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "child failed")
    out: dict[str, Any] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            out.update(json.loads(line))
        elif line.startswith("@@"):
            out.update(json.loads(line[2:]))
    return out


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": float(statistics.median(values)), "min": float(min(values)), "max": float(max(values)), "runs": len(values)}


def bench_ingest(dump: Path) -> dict[str, Any]:
    code = f"""
import time, json
from classify.io.posts import ingest
t=time.perf_counter(); df=ingest([{str(dump)!r}]); s=time.perf_counter()-t
print(json.dumps({{'seconds': s, 'posts': len(df)}}))"""
    return _child(code)


def bench_tag(dump: Path, model_dir: Path, batch_size: int, runtime: str = "torch", jobs: int | None = None) -> dict[str, Any]:
    """The whole ``classify.tag`` job (model load, reading, cleaning, tagging, writing) in a fresh process."""
    code = f"""
import time, json, tempfile, os
from classify.tagging.local import tag
out=os.path.join(tempfile.mkdtemp(), 'tags.parquet')
t=time.perf_counter(); s=tag([{str(dump)!r}], out, model_dir={str(model_dir)!r}, batch_size={batch_size}, runtime={runtime!r}, jobs={jobs!r})
sec=time.perf_counter()-t
print(json.dumps({{'seconds': sec, 'posts': s.n_posts, 'jobs': s.jobs}}))"""
    return _child(code)


def bench_model(dump: Path, model_dir: Path, batch_size: int = 256, runtime: str = "torch") -> dict[str, Any]:
    """The model alone: ``predict`` on batches of already-ingested posts; FLOPs for the transformer."""
    code = f"""
import time, json
import torch; torch.set_num_threads(2)
from classify.io.posts import ingest
from classify import load_model
df = ingest([{str(dump)!r}]); posts = [list(p) for p, e in zip(df['paragraphs'], df['empty_text']) if not e]
m = load_model({str(model_dir)!r})
if {runtime!r} == 'onnx': m.use_onnx()
if {runtime!r} == 'bf16': m.use_bf16()
m.predict(posts[:8])
flops = [0.0, 0.0]
t = time.perf_counter()
for b in range(0, len(posts), {batch_size}):
    m.predict(posts[b:b + {batch_size}])
    if hasattr(m, 'last_flops_'):
        flops = [flops[0] + m.last_flops_[0], flops[1] + m.last_flops_[1]]
sec = time.perf_counter() - t
print(json.dumps({{'seconds': sec, 'posts': len(posts), 'flops_useful': flops[0], 'flops_padded': flops[1]}}))"""
    return _child(code)


def bench_pipeline(model_dir: Path, dumps: list[Path], runtime: str = "torch", cache_dir: Path | None = None) -> dict[str, Any]:
    """A plain ``transformers`` pipeline loop vs ``classify.tag`` on the same posts and model.

    Both timings include loading: the pipeline's construction from the model's encoder folder,
    and ``classify.tag``'s model load (the in-process cache of loaded encoders is emptied first, so
    ``tag`` reads the weights from disk as the pipeline does). The plain loop applies the same heads
    and the model's own steps after them (TF-IDF frame blend, cue stacking, topics from the cues), in
    fp32 (the reference for every runtime). For ``runtime="bf16"`` the same
    loop is also timed under the same bfloat16 autocast (``plain_bf16_seconds``), so the gain of
    the project's batching, deduplication and bucketing alone is a ratio too.
    ``cache_dir``: the ``CLASSIFY_CACHE`` of the run (where ONNX graphs are cached).
    """
    code = f"""
import time, json, tempfile, os
if {str(cache_dir) if cache_dir else None!r}: os.environ['CLASSIFY_CACHE'] = {str(cache_dir) if cache_dir else None!r}
import numpy as np, torch; torch.set_num_threads(2)
from transformers import pipeline
from classify import load_model
from classify.io.posts import ingest
from classify.learners.cues import CueMatcher
from classify.learners.transformer.encoder import ENCODER_PREFIX
from classify.learners.transformer.network import windows
from classify.learners.stacking import apply_stacker
from classify.learners.transformer.model import blend
from classify.tagging.local import tag
from classify.tagging.rows import read_tags
model_dir = {str(model_dir)!r}; dumps = {[str(d) for d in dumps]!r}
m = load_model(model_dir)
df = ingest(dumps)
posts = [list(p) for p, e in zip(df['paragraphs'], df['empty_text']) if not e]
matcher = CueMatcher(m.codebook)
W, b = m.net_.label_head.weight.detach().numpy(), m.net_.label_head.bias.detach().numpy()
nt = len(m.codebook.topics)
def plain_loop():
    t = time.perf_counter()
    pipe = pipeline('feature-extraction', model=os.path.join(model_dir, 'encoder'), tokenizer=os.path.join(model_dir, 'encoder'),
                    framework='pt', device=-1, tokenize_kwargs={{'truncation': True, 'max_length': m.config.max_length}})
    load_sec = time.perf_counter() - t
    plain = []
    for paras in posts:
        Z, H = [], np.zeros(len(matcher.label_ids))
        for p in paras:
            h = np.asarray(pipe(ENCODER_PREFIX + p)[0], dtype=np.float64)
            hits = matcher.vector(p)
            H = H + hits
            Z.append(np.concatenate([h.mean(0), np.log1p(hits)]) if m.config.use_cues else h.mean(0))
        Z = np.array(Z)
        prob = 1 / (1 + np.exp(-(Z @ W.T + b).max(0)))
        T, F = prob[None, :nt], prob[None, nt:]
        if getattr(m, 'tfidf_', None) is not None:  # the model's own TF-IDF blend, as in predict_proba
            F = blend(F, m.tfidf_.predict_proba([paras]).frames, m.config.frames_tfidf)
        if m.stackers_ is not None:
            T, F = apply_stacker(m.stackers_[:nt], T, H[None, :nt]), apply_stacker(m.stackers_[nt:], F, H[None, nt:])
        if m.config.topics_from_cues:
            T = (m._topic_cue_hits([paras], H[None, :nt]) > 0).astype(float)
        plain.append(np.concatenate([T[0], F[0]]))
    return plain, time.perf_counter() - t, load_sec
plain, plain_sec, load_sec = plain_loop()
plain_bf16_sec = None
if {runtime!r} == 'bf16':
    with torch.autocast('cpu', dtype=torch.bfloat16):
        plain_bf16_sec = plain_loop()[1]
out = os.path.join(tempfile.mkdtemp(), 'tags.parquet')
from classify.learners.transformer.network import clear_cache; clear_cache()
t = time.perf_counter(); s = tag(dumps, out, model_dir=model_dir, runtime={runtime!r}); tag_sec = time.perf_counter() - t
tags = read_tags(out)
ok = tags[tags['status'] == 'ok'].drop_duplicates('post_id')
ids = [i for i, e in zip(df['post_id'], df['empty_text']) if not e]
first = {{}}
for i, p in zip(ids, plain):
    first.setdefault(i, p)
labels = list(m.codebook.topics) + list(m.codebook.frames)
ours = np.array([[r[l] for l in labels] for r in ok['scores']])
ref = np.array([first[i] for i in ok['post_id']])
paras_of = dict(zip(df['post_id'], df['paragraphs']))
fits = np.array([all(len(w) == 1 for w in windows(m.tok_, list(paras_of[i]), m.config.max_length)) for i in ok['post_id']])
diff = np.abs(ours - ref).max(axis=1)
print(json.dumps({{'posts': len(posts), 'plain_seconds': plain_sec, 'plain_load_seconds': load_sec, 'tag_seconds': tag_sec,
                  'plain_bf16_seconds': plain_bf16_sec,
                  'tag_rows': s.n_posts, 'max_abs_diff': float(diff.max()), 'n_compared': len(ok), 'n_one_window': int(fits.sum()),
                  'max_abs_diff_one_window': float(diff[fits].max()) if fits.any() else None}}))"""
    return _child(code)


def bench_agreement(model_dir: Path, dumps: list[Path], variant: str) -> dict[str, Any]:
    """Labels and probabilities of a faster path (``onnx`` or ``bf16``) against PyTorch fp32 on the sample dumps."""
    make = {"onnx": ".use_onnx()", "bf16": ".use_bf16()"}[variant]
    code = f"""
import json
import numpy as np, torch; torch.set_num_threads(2)
from classify import load_model
from classify.io.posts import ingest
df = ingest({[str(d) for d in dumps]!r})
posts = [list(p) for p, e in zip(df['paragraphs'], df['empty_text']) if not e]
a = load_model({str(model_dir)!r}).predict(posts)
b = load_model({str(model_dir)!r}){make}.predict(posts)
same = [x['topics'] == y['topics'] and x['frames'] == y['frames'] and x['stance_west'] == y['stance_west']
        for x, y in zip(a.to_dict('records'), b.to_dict('records'))]
diff = max(abs(x[k] - y[k]) for x, y in zip(a['scores'], b['scores']) for k in x)
print(json.dumps({{'posts': len(posts), 'posts_same_labels': int(sum(same)), 'max_abs_prob_diff': float(diff)}}))"""
    return _child(code)


def bench_load(model_dir: Path) -> dict[str, Any]:
    code = f"""
import time, json
t=time.perf_counter()
from classify import load_model
m=load_model({str(model_dir)!r}); print(json.dumps({{'seconds': time.perf_counter()-t}}))"""
    return _child(code)


def matmul_gflops(n: int = 1024, reps: int = 20, dtype: str = "float32") -> float:
    """Matrix-multiply rate of this CPU with torch (2 threads), GFLOP/s, in ``dtype`` (float32 or bfloat16)."""
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    a = torch.randn(n, n, dtype=getattr(torch, dtype))
    b = torch.randn(n, n, dtype=getattr(torch, dtype))
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def run_bench(*, quick: bool = False, sizes: tuple[int, ...] | None = None, runs: int | None = None,
              models_dir: Path = Path("models"), transformer_max: int = 10_000, big_size: int = 10_000, big_runs: int = 1,
              progress: bool = True) -> dict[str, Any]:
    """Run every measurement; returns the dict written to bench.json."""
    sizes = sizes or ((1000,) if quick else (1000, 10_000, 100_000))
    runs = runs or (1 if quick else 3)
    kinds = [k for k in (("baseline",) if quick else ("baseline", "transformer")) if (models_dir / k / "card.json").exists()]
    say = (lambda s: print(s, file=sys.stderr, flush=True)) if progress else (lambda s: None)
    res: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                                       "processor": _cpu_name()},
                           "quick": quick, "sizes": list(sizes), "runs": runs, "ingest": {}, "tag": {}, "model": {},
                           "load": {}, "train": {}, "transformer_flops": {}, "pipeline_reference": {}}
    res["machine"]["matmul_gflops_fp32"] = round(statistics.median(matmul_gflops() for _ in range(3)), 1)
    if native_bf16():
        res["machine"]["matmul_gflops_bf16"] = round(statistics.median(matmul_gflops(dtype="bfloat16") for _ in range(3)), 1)
    for kind in kinds:
        card = json.loads((models_dir / kind / "card.json").read_text())
        res["train"][kind] = {"final_fit_seconds": card.get("train_seconds")}
        res["load"][kind] = _stats([bench_load(models_dir / kind)["seconds"] for _ in range(runs)])
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            dump = make_dump(n, Path(tmp) / f"dump_{n}.jsonl")
            n_runs = runs if n <= big_size else big_runs  # a 100k-post run takes minutes: fewer of them
            res.setdefault("runs_by_size", {})[str(n)] = n_runs
            say(f"ingest {n} posts")
            r = [bench_ingest(dump) for _ in range(n_runs)]
            res["ingest"][str(n)] = {"posts_per_s": _stats([x["posts"] / x["seconds"] for x in r]),
                                     "peak_rss_mb": _stats([x["peak_rss_mb"] for x in r])}
            for kind in kinds:
                if kind == "transformer" and n > transformer_max:
                    continue  # the transformer tags ~tens of posts/s here: 100k posts would take hours
                for name, opts in _tag_variants(kind):
                    if opts.get("jobs") == 1 and res["tag"].get(kind, {}).get(str(n), {}).get("jobs") == 1:
                        res["tag"].setdefault(name, {})[str(n)] = {**res["tag"][kind][str(n)], "same_run_as": kind}
                        continue  # the default already ran one process at this size: the same command twice
                    say(f"tag {n} posts: {name}")
                    r = [bench_tag(dump, models_dir / kind, 256, **opts) for _ in range(n_runs)]
                    res["tag"].setdefault(name, {})[str(n)] = {"posts_per_s": _stats([x["posts"] / x["seconds"] for x in r]),
                                                               "seconds": _stats([x["seconds"] for x in r]),
                                                               "peak_rss_mb": _stats([x["peak_rss_mb"] for x in r]),
                                                               "jobs": r[0]["jobs"],
                                                               "worker_peak_rss_mb": _stats([x["worker_peak_rss_mb"] for x in r]),
                                                               "all_processes_peak_rss_mb": _stats([_all_rss(x) for x in r])}
                for name, opts in _model_variants(kind):
                    say(f"model alone, {n} posts: {name}")
                    r = [bench_model(dump, models_dir / kind, **opts) for _ in range(n_runs)]
                    res["model"].setdefault(name, {})[str(n)] = {"posts_per_s": _stats([x["posts"] / x["seconds"] for x in r]),
                                                                 "peak_rss_mb": _stats([x["peak_rss_mb"] for x in r])}
                    if kind == "transformer":
                        gf = [x["flops_useful"] / x["seconds"] / 1e9 for x in r]
                        gp = [x["flops_padded"] / x["seconds"] / 1e9 for x in r]
                        peak = res["machine"]["matmul_gflops_fp32"]
                        res["transformer_flops"].setdefault(name, {})[str(n)] = {
                            "gflop_per_post": r[0]["flops_useful"] / r[0]["posts"] / 1e9, "achieved_gflops": _stats(gf),
                            "achieved_gflops_with_padding": _stats(gp), "fraction_of_matmul_peak": _stats([g / peak for g in gf])}
                        if opts.get("runtime") == "bf16":  # its own limit is the bfloat16 rate
                            bpeak = res["machine"]["matmul_gflops_bf16"]
                            res["transformer_flops"][name][str(n)]["fraction_of_bf16_matmul_peak"] = _stats([g / bpeak for g in gf])
    if "transformer" in kinds:
        dumps = sorted(SAMPLE_DUMPS.glob("*.txt"))
        for name, opts in _tag_variants("transformer"):
            say(f"plain transformers pipeline loop vs classify.tag on the sample dumps: {name}")
            with tempfile.TemporaryDirectory() as cache:  # no cached ONNX graph before the first run
                first = bench_pipeline(models_dir / "transformer", dumps, cache_dir=Path(cache), **opts)
                r = [bench_pipeline(models_dir / "transformer", dumps, cache_dir=Path(cache), **opts) for _ in range(runs)]
            res["pipeline_reference"][name] = {
                "posts": r[0]["posts"], "plain_posts_per_s": _stats([x["posts"] / x["plain_seconds"] for x in r]),
                "plain_load_seconds": _stats([x["plain_load_seconds"] for x in r]),
                "tag_posts_per_s": _stats([x["tag_rows"] / x["tag_seconds"] for x in r]),
                "speedup": _stats([x["plain_seconds"] / x["tag_seconds"] for x in r]),
                "speedup_first_run": first["plain_seconds"] / first["tag_seconds"],
                **({"plain_bf16_posts_per_s": _stats([x["posts"] / x["plain_bf16_seconds"] for x in r]),
                    "speedup_vs_plain_bf16": _stats([x["plain_bf16_seconds"] / x["tag_seconds"] for x in r])}
                   if r[0].get("plain_bf16_seconds") else {}),
                "max_abs_prob_diff": max(x["max_abs_diff"] for x in [first, *r]), "posts_compared": r[0]["n_compared"],
                "posts_one_window": r[0]["n_one_window"], "max_abs_prob_diff_one_window": r[0]["max_abs_diff_one_window"],
                "note": "both timings include loading the model; speedup_first_run: with an empty cache (ONNX Runtime "
                        "exports the graph then), speedup: the runs after it; the pipeline truncates a paragraph at "
                        "max_length tokens where classify windows it, so posts whose paragraphs all fit one window "
                        "must agree to float tolerance (bf16: to its own tolerance, see faster_paths_vs_fp32); "
                        "the plain loop runs in fp32 for every runtime, speedup_vs_plain_bf16: against the same loop "
                        "under bfloat16 autocast"}
        res["faster_paths_vs_fp32"] = {v: bench_agreement(models_dir / "transformer", dumps, v) for v in _fast_paths()}
    return res


def _all_rss(x: dict[str, Any]) -> float:
    """Upper bound of the memory of a tag run: the main process plus each worker at the largest worker's peak."""
    return x["peak_rss_mb"] + (x["jobs"] * x["worker_peak_rss_mb"] if x["jobs"] > 1 else 0.0)


def _fast_paths() -> list[str]:
    return [*(["onnx"] if onnx_available() else []), *(["bf16"] if native_bf16() else [])]


def _runtimes() -> list[tuple[str, dict[str, Any]]]:
    """The transformer's runtimes on this machine: PyTorch, ONNX Runtime when installed, bfloat16 on CPUs that have it."""
    return [("transformer", {"runtime": "torch"}), *([("transformer_onnx", {"runtime": "onnx"})] if onnx_available() else []),
            *([("transformer_bf16", {"runtime": "bf16"})] if native_bf16() else [])]


def _tag_variants(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """What ``classify.tag`` is timed with: the default (automatic ``--jobs``) and one process for the
    baseline (measured only where the default uses workers); each runtime of ``_runtimes`` for the transformer."""
    if kind == "baseline":
        return [("baseline", {}), ("baseline_1_process", {"jobs": 1})]
    return _runtimes()


def _model_variants(kind: str) -> list[tuple[str, dict[str, Any]]]:
    if kind == "baseline":
        return [("baseline", {})]
    return _runtimes()


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def table(res: dict[str, Any]) -> str:
    bf16 = f", bf16 matmul {res['machine']['matmul_gflops_bf16']} GFLOP/s" if res["machine"].get("matmul_gflops_bf16") else ""
    lines = [f"machine: {res['machine']['cpus']} CPUs, fp32 matmul {res['machine']['matmul_gflops_fp32']} GFLOP/s{bf16}",
             f"{'what':<34}{'size':>8}{'posts/s (median [min, max])':>34}{'peak RSS MB':>14}",
             "(peak RSS of tag with workers: main process + workers, each at the largest worker's peak)"]
    for n, v in res["ingest"].items():
        p = v["posts_per_s"]
        lines.append(f"{'ingest':<34}{n:>8}{p['median']:>18,.0f} [{p['min']:,.0f}, {p['max']:,.0f}]{v['peak_rss_mb']['median']:>14,.0f}")
    for kind, by_n in res["tag"].items():
        for n, v in by_n.items():
            p = v["posts_per_s"]
            rss = v.get("all_processes_peak_rss_mb", v["peak_rss_mb"])["median"]
            jobs = f" ({v['jobs']} workers)" if v.get("jobs", 1) > 1 else ""
            jobs += " (same run)" if v.get("same_run_as") else ""
            lines.append(f"{'tag ' + kind + jobs:<34}{n:>8}{p['median']:>18,.0f} [{p['min']:,.0f}, {p['max']:,.0f}]{rss:>14,.0f}")
    for kind, by_n in res.get("model", {}).items():
        for n, v in by_n.items():
            p = v["posts_per_s"]
            lines.append(f"{'model alone ' + kind:<34}{n:>8}{p['median']:>18,.0f} [{p['min']:,.0f}, {p['max']:,.0f}]{v['peak_rss_mb']['median']:>14,.0f}")
    for name, by_n in res.get("transformer_flops", {}).items():
        for n, v in by_n.items():
            f = v["fraction_of_matmul_peak"]
            of_bf16 = (f", {v['fraction_of_bf16_matmul_peak']['median']:.0%} of bf16 {res['machine']['matmul_gflops_bf16']}"
                       if "fraction_of_bf16_matmul_peak" in v else "")
            lines.append(f"{name + ' GFLOP/s':<34}{n:>8}{v['achieved_gflops']['median']:>18.1f} ({f['median']:.0%} of fp32 "
                         f"{res['machine']['matmul_gflops_fp32']}{of_bf16})")
    for name, pr in (res.get("pipeline_reference") or {}).items():
        lines.append(f"{'plain pipeline loop (sample dumps)':<34}{pr['posts']:>8}{pr['plain_posts_per_s']['median']:>18,.1f}")
        lines.append(f"{'tag ' + name + ' (sample dumps)':<34}{pr['posts']:>8}{pr['tag_posts_per_s']['median']:>18,.1f}"
                     f"   speedup {pr['speedup']['median']:.1f}x (first run {pr.get('speedup_first_run', float('nan')):.1f}x), max |dp| {pr['max_abs_prob_diff']:.3g}")
        if "speedup_vs_plain_bf16" in pr:
            lines.append(f"{'  vs the plain loop in bf16':<34}{pr['posts']:>8}{pr['plain_bf16_posts_per_s']['median']:>18,.1f}"
                         f"   speedup {pr['speedup_vs_plain_bf16']['median']:.1f}x")
    for v, q in (res.get("faster_paths_vs_fp32") or {}).items():
        lines.append(f"{v + ' vs PyTorch fp32 (sample dumps)':<34}{q['posts']:>8}   same labels on {q['posts_same_labels']} posts, max |dp| {q['max_abs_prob_diff']:.3g}")
    for kind, v in res["load"].items():
        lines.append(f"{'load ' + kind:<34}{'':>8}{v['median']:>18.2f} s")
    for kind, v in res["train"].items():
        lines.append(f"{'final fit ' + kind:<34}{'':>8}{v['final_fit_seconds']!s:>18} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m classify.bench", __doc__)
    parser.add_argument("--quick", action="store_true", help="1k posts, one run, baseline only (under a minute)")
    parser.add_argument("--models", type=Path, default=Path("models"), help="directory of trained models")
    parser.add_argument("--out", type=Path, default=OUT, help="where bench.json goes")
    parser.add_argument("--sizes", default=None, help="comma-separated dump sizes in posts (default: 1000,10000,100000; --quick: 1000)")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure, median reported (default: 3; --quick: 1)")
    parser.add_argument("--transformer-max", type=int, default=10_000, help="largest dump the transformer is timed on")
    parser.add_argument("--big-runs", type=int, default=1, help="runs per figure for dumps above 10,000 posts")
    parser.add_argument("--report", type=int, default=None, metavar="N",
                        help=f"only the corpus report on N tagged pool posts (the baseline of --models) into {REPORT_OUT}")
    args = parser.parse_args(argv)

    def job() -> int:
        if args.report:
            with tempfile.TemporaryDirectory() as work:
                res = bench_report(args.report, args.models / "baseline", Path(work))
            out = args.out if args.out != OUT else REPORT_OUT
            atomic_write_text(out, json.dumps(res, indent=2) + "\n")
            print(f"report on {res['posts']:,} tagged posts: {res['report_seconds']} s, peak RSS {res['peak_rss_mb']} MB; wrote {out}")
            return 0
        try:
            sizes = tuple(int(x) for x in args.sizes.split(",")) if args.sizes else None
        except ValueError:
            raise ConfigError(f"--sizes must be comma-separated integers, got {args.sizes!r}") from None
        if args.runs is not None and args.runs < 1:
            raise ConfigError(f"--runs must be at least 1, got {args.runs}")
        res = run_bench(quick=args.quick, sizes=sizes, runs=args.runs, models_dir=args.models, transformer_max=args.transformer_max,
                        big_runs=args.big_runs)
        atomic_write_text(args.out, json.dumps(res, indent=2) + "\n")
        print(table(res))
        print(f"wrote {args.out}")
        return 0

    return run_main(job, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
