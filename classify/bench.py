"""Measured speed, memory and scale: ingest, tagging per model, training, load time, matmul limit.

    python -m classify.bench            # full: 1k, 10k and 100k posts, 3 runs each
    python -m classify.bench --quick    # under a minute: 1k posts, 1 run, baseline only

Writes ``eval/bench/bench.json`` and prints a table. Each figure is the median of the runs with min
and max. Dumps of N posts are made by replicating the sample dumps with varied text (a counter
and shuffled words per copy, so duplicate detection does not make them free). Memory is the peak
RSS of a fresh child process running the job, so runs do not pollute each other.
The reference figures: the machine's fp32 matrix-multiply rate (torch, GFLOP/s), the transformer's
achieved rate (FLOPs per post x posts/s), and a plain ``transformers`` pipeline loop over the same
posts with the same fine-tuned model.
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

SAMPLE_DUMPS = Path("data/dumps")
OUT = Path("eval/bench/bench.json")


def make_dump(n_posts: int, out: Path, seed: int = 0) -> Path:
    """A JSONL dump of ``n_posts`` posts built from the sample corpus with varied text."""
    import random

    from .ingest import ingest

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


def _child(code: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints one JSON line; add its peak RSS (MB)."""
    wrapper = code + "\nimport resource, json as _j\nprint('@@' + _j.dumps({'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
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
from classify.ingest import ingest
t=time.perf_counter(); df=ingest([{str(dump)!r}]); s=time.perf_counter()-t
print(json.dumps({{'seconds': s, 'posts': len(df)}}))"""
    return _child(code)


def bench_tag(dump: Path, model_dir: Path, batch_size: int) -> dict[str, Any]:
    code = f"""
import time, json, tempfile, os
import torch; torch.set_num_threads(2)
from classify.tag import tag
out=os.path.join(tempfile.mkdtemp(), 'tags.parquet')
t=time.perf_counter(); s=tag([{str(dump)!r}], out, model_dir={str(model_dir)!r}, batch_size={batch_size}); sec=time.perf_counter()-t
print(json.dumps({{'seconds': sec, 'posts': s.n_posts}}))""" if (model_dir / "encoder").exists() else f"""
import time, json, tempfile, os
from classify.tag import tag
out=os.path.join(tempfile.mkdtemp(), 'tags.parquet')
t=time.perf_counter(); s=tag([{str(dump)!r}], out, model_dir={str(model_dir)!r}, batch_size={batch_size}); sec=time.perf_counter()-t
print(json.dumps({{'seconds': sec, 'posts': s.n_posts}}))"""
    return _child(code)


def bench_load(model_dir: Path) -> dict[str, Any]:
    code = f"""
import time, json
t=time.perf_counter()
from classify import load_model
m=load_model({str(model_dir)!r}); print(json.dumps({{'seconds': time.perf_counter()-t}}))"""
    return _child(code)


def matmul_gflops(n: int = 1024, reps: int = 20) -> float:
    """fp32 matrix-multiply rate of this CPU with torch (2 threads), GFLOP/s."""
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def run_bench(*, quick: bool = False, sizes: tuple[int, ...] | None = None, runs: int | None = None,
              models_dir: Path = Path("models"), progress: bool = True) -> dict[str, Any]:
    """Run every measurement; returns the dict written to bench.json."""
    sizes = sizes or ((1000,) if quick else (1000, 10_000, 100_000))
    runs = runs or (1 if quick else 3)
    kinds = [k for k in (("baseline",) if quick else ("baseline", "transformer")) if (models_dir / k / "card.json").exists()]
    say = (lambda s: print(s, file=sys.stderr, flush=True)) if progress else (lambda s: None)
    res: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
                           "quick": quick, "sizes": list(sizes), "runs": runs, "ingest": {}, "tag": {}, "load": {}, "train": {}}
    res["machine"]["matmul_gflops_fp32"] = round(matmul_gflops(), 1)
    for kind in kinds:
        card = json.loads((models_dir / kind / "card.json").read_text())
        res["train"][kind] = {"final_fit_seconds": card.get("train_seconds")}
        vals = [bench_load(models_dir / kind)["seconds"] for _ in range(runs)]
        res["load"][kind] = _stats(vals)
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            dump = make_dump(n, Path(tmp) / f"dump_{n}.jsonl")
            say(f"ingest {n} posts")
            r = [bench_ingest(dump) for _ in range(runs)]
            res["ingest"][str(n)] = {"posts_per_s": _stats([x["posts"] / x["seconds"] for x in r]),
                                     "peak_rss_mb": _stats([x["peak_rss_mb"] for x in r])}
            for kind in kinds:
                if kind == "transformer" and n > 10_000:
                    continue  # measured at 1k and 10k; 100k would take most of an hour on 2 cores
                say(f"tag {n} posts with {kind}")
                r = [bench_tag(dump, models_dir / kind, 256) for _ in range(runs)]
                res["tag"].setdefault(kind, {})[str(n)] = {"posts_per_s": _stats([x["posts"] / x["seconds"] for x in r]),
                                                           "seconds": _stats([x["seconds"] for x in r]),
                                                           "peak_rss_mb": _stats([x["peak_rss_mb"] for x in r])}
    return res


def table(res: dict[str, Any]) -> str:
    lines = [f"machine: {res['machine']['cpus']} CPUs, fp32 matmul {res['machine']['matmul_gflops_fp32']} GFLOP/s",
             f"{'what':<34}{'size':>8}{'posts/s (median [min, max])':>34}{'peak RSS MB':>14}"]
    for n, v in res["ingest"].items():
        p = v["posts_per_s"]
        lines.append(f"{'ingest':<34}{n:>8}{p['median']:>18,.0f} [{p['min']:,.0f}, {p['max']:,.0f}]{v['peak_rss_mb']['median']:>14,.0f}")
    for kind, by_n in res["tag"].items():
        for n, v in by_n.items():
            p = v["posts_per_s"]
            lines.append(f"{'tag ' + kind:<34}{n:>8}{p['median']:>18,.0f} [{p['min']:,.0f}, {p['max']:,.0f}]{v['peak_rss_mb']['median']:>14,.0f}")
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
    args = parser.parse_args(argv)

    def job() -> int:
        res = run_bench(quick=args.quick, models_dir=args.models)
        atomic_write_text(args.out, json.dumps(res, indent=2) + "\n")
        print(table(res))
        print(f"wrote {args.out}")
        return 0

    return run_main(job, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
