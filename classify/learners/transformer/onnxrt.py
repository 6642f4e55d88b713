"""An optional ONNX Runtime path for the transformer's encoder (``classify.tag --runtime onnx``).

Why: PyTorch runs the encoder op by op (eager mode). ONNX Runtime reads the whole graph at once and
fuses what PyTorch keeps apart (attention, layer norm, GELU, bias additions), so the same fp32
arithmetic spends more of its time in matrix products. Nothing about the model changes: the
fine-tuned encoder (frozen and fine-tuned layers, mean pooling) is exported from the loaded
safetensors weights. The graph starts after the token lookup: the vocabulary matrix (most of the
weights) stays in the model's safetensors file, memory-mapped, and the lookup is a numpy gather,
so the graph and its session are small. The model directory stays what training saved; the exported graph
goes to a cache beside the encoder build (``$CLASSIFY_CACHE/onnx`` or ``./models/.cache/onnx``;
``$CLASSIFY_ONNX_CACHE`` overrides it),
named by a key of the model's files (sizes, modification times, the hash of the fine-tuned heads)
and the torch/onnx versions, so the next run of the same model starts in about a second; a
retrained or edited model gets a new key. The cache keeps the ``KEEP_GRAPHS`` newest graphs. An
ONNX file is a graph of operators and tensors: loading it runs no code from the file. Where the
cache cannot be written, the graph stays in memory. The heads run as on the PyTorch path. ``classify.bench`` checks that the labels on the sample dumps are the same and states the
largest probability difference.

``--runtime auto`` (the default of ``classify.tag``) takes ONNX Runtime for transformer models
when it is installed (onnxruntime and onnx, dependencies of classify), else PyTorch. The fourth
runtime, ``bf16`` (``TransformerModel.use_bf16``), stays in PyTorch and multiplies in bfloat16; it
is validated here (``native_bf16``) with the others, and never chosen by ``auto``: its
probabilities differ from fp32 by up to about 0.005, so the default labels do not depend on the CPU.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError

RUNTIMES = ("auto", "torch", "onnx", "bf16")
KEEP_GRAPHS = 2
"""Exported graphs kept in the cache (each the encoder's weights less its vocabulary matrix: 86 MB for
multilingual-e5-small)."""
GRAPH_FORMAT = 2
"""Bump when ``export_encoder`` changes what it exports: old cached graphs are then not used."""


def onnx_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def check_runtime(runtime: str) -> str:
    """Validate ``--runtime`` and that its packages are installed (one clear line if not)."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"The 'runtime' parameter must be one of {', '.join(RUNTIMES)}. Got {runtime!r} instead.")
    if runtime == "onnx" and not onnx_available():
        raise ConfigError("--runtime onnx needs onnxruntime and onnx: pip install onnxruntime onnx")
    if runtime == "bf16" and not native_bf16():
        raise ConfigError("--runtime bf16 needs bfloat16 instructions (AMX-BF16 or AVX512-BF16) that oneDNN may use "
                          "(this CPU has neither, or ONEDNN_MAX_CPU_ISA holds them off, so it would be slower than fp32): "
                          "use --runtime onnx")
    return runtime


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX-BF16 or AVX512-BF16).

    Why it matters: without them PyTorch emulates bfloat16 and ``--runtime bf16`` is slower than
    fp32. Read from torch's CPU report, else from ``/proc/cpuinfo``'s flags; False when oneDNN (which
    runs torch's CPU matrix products) is held below those instructions by ``ONEDNN_MAX_CPU_ISA``, as
    the budget runs hold it to AVX2: bfloat16 is then emulated there too.
    """
    held = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if held and held != "ALL" and not any(k in held for k in ("BF16", "AMX", "AVX10")):
        return False
    try:
        import torch

        caps = torch._C._cpu._get_cpu_capability()
        return bool(caps.get("amx_bf16") or caps.get("avx512_bf16"))
    except Exception:  # a torch without that (private) report
        try:
            flags = Path("/proc/cpuinfo").read_text().split()
        except OSError:
            return False
        return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_runtime(runtime: str, kind: str) -> str:
    """``torch``, ``onnx`` or ``bf16`` for a model of ``kind``: ``auto`` is ONNX Runtime for a transformer when installed."""
    check_runtime(runtime)
    if runtime == "auto":
        return "onnx" if kind == "transformer" and onnx_available() else "torch"
    if runtime in ("onnx", "bf16") and kind != "transformer":
        raise ConfigError(f"--runtime {runtime} is for transformer models; this is a {kind} model (drop --runtime)")
    return runtime


def graph_key(model_dir: Path, extra: dict[str, Any]) -> str:
    """Cache key of a model directory's exported encoder (see the module docstring)."""
    import torch

    files = {}
    for f in sorted(model_dir.rglob("*")):
        if f.is_file() and f.suffix in (".safetensors", ".json"):
            st = f.stat()
            files[str(f.relative_to(model_dir))] = [st.st_size, st.st_mtime_ns]
    heads = model_dir / "heads.safetensors"
    blob = {"format": GRAPH_FORMAT, "files": files, "torch": torch.__version__, "onnx": importlib.metadata.version("onnx"),
            "heads_sha256": hashlib.sha256(heads.read_bytes()).hexdigest() if heads.exists() else None, **extra}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:24]


GRAPH_CACHE_ENV = "CLASSIFY_ONNX_CACHE"


def graph_cache_dir() -> Path:
    """``$CLASSIFY_ONNX_CACHE``, else ``$CLASSIFY_CACHE/onnx``, else ``./models/.cache/onnx``."""
    from .encoder import CACHE_ENV

    if os.environ.get(GRAPH_CACHE_ENV):
        return Path(os.environ[GRAPH_CACHE_ENV]).expanduser()
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.cwd() / "models" / ".cache") / "onnx"


def cached_graph_path(key: str) -> str | None:
    """The cached graph file of ``key``, if there is one."""
    path = graph_cache_dir() / f"{key}.onnx"
    return str(path) if path.is_file() else None


def cached_graph(key: str, export: Callable[[], bytes]) -> bytes | str:
    """The exported graph for ``key``: the cached file's path, else ``export()`` (then cached)."""
    cached = cached_graph_path(key)
    if cached is not None:
        return cached
    folder = graph_cache_dir()
    path = folder / f"{key}.onnx"
    graph = export()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_bytes(graph)
        os.replace(tmp, path)
        for old in sorted(folder.glob("*.onnx"), key=lambda f: f.stat().st_mtime, reverse=True)[KEEP_GRAPHS:]:
            old.unlink(missing_ok=True)
    except OSError:
        return graph  # read-only or full disk: tag from memory, as before the cache existed
    return graph


WORD_TABLE = "word_embeddings.weight"
"""Suffix of the token-embedding matrix's name in an encoder's ``model.safetensors``."""


def _wrapper(embeddings: Any, layers: list, pool: Any):
    """One torch module: token vectors and mask -> the pooled window representation.

    The graph starts after the token lookup (``inputs_embeds``): position and type embeddings,
    layer norm, the layers and pooling are in it, the vocabulary matrix is not (see
    :class:`OrtEncoder`).
    """
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = embeddings
            self.low = torch.nn.ModuleList(layers)
            self.pool = pool

        def forward(self, embeds, mask):
            h = self.embeddings(inputs_embeds=embeds)
            ext = (1.0 - mask[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min
            for layer in self.low:
                out = layer(h, attention_mask=ext)
                h = out[0] if isinstance(out, tuple) else out
            return self.pool.embed(h, mask)

    return Encoder().eval()


def export_encoder(embeddings: Any, layers: list, pool: Any) -> bytes:
    """The ONNX graph (bytes) of token vectors -> embeddings' sum and norm -> ``layers`` -> ``pool.embed``,
    batch and length dynamic."""
    import torch

    module = _wrapper(embeddings, layers, pool)
    mask = torch.ones((2, 16), dtype=torch.long)
    mask[1, 9:] = 0  # a padded row, so the traced graph keeps the mask arithmetic
    embeds = embeddings.word_embeddings(torch.full((2, 16), 5, dtype=torch.long)).detach()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow on shapes
        torch.onnx.export(module, (embeds, mask), buf, input_names=["embeds", "mask"], output_names=["pooled"],
                          dynamic_axes={"embeds": {0: "batch", 1: "length"}, "mask": {0: "batch", 1: "length"},
                                        "pooled": {0: "batch"}}, opset_version=17, dynamo=False)
    return buf.getvalue()


def torch_word_table(embeddings: Any) -> np.ndarray:
    """The token-embedding matrix of a loaded torch encoder, as a float32 array (no copy)."""
    return embeddings.word_embeddings.weight.detach().float().numpy()


def safetensors_word_table(path: Path) -> np.ndarray:
    """The token-embedding matrix in ``path`` (a ``model.safetensors``), memory-mapped, not read.

    Why a memory map: the matrix is most of the encoder (250k x 384 floats, 384 MB of
    multilingual-e5-small's 470 MB) and a dump uses a few thousand of its rows; mapping it costs
    nothing and the rows are paged in as looked up. The safetensors layout is an 8-byte header
    length, a JSON header of names, dtypes, shapes and offsets, then the raw little-endian data.
    """
    from ...errors import ModelError

    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n > os.fstat(f.fileno()).st_size:
                raise ValueError(f"header length {n} beyond the end of the file")
            header = json.loads(f.read(n))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read the safetensors header ({exc}); the model is corrupt") from None
    names = [k for k in header if k.endswith(WORD_TABLE)]
    if len(names) != 1:
        raise ModelError(f"{path}: expected one '*{WORD_TABLE}' tensor, found {len(names)}; "
                         f"tag with --runtime torch")
    info = header[names[0]]
    start, end = info["data_offsets"]
    if info["dtype"] != "F32":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return f.get_tensor(names[0]).float().numpy()
    table = np.memmap(path, dtype="<f4", mode="r", offset=8 + n + start, shape=tuple(info["shape"]))
    if table.nbytes != end - start:
        raise ModelError(f"{path}: tensor {names[0]} has inconsistent offsets; the model is corrupt")
    return table


class OrtEncoder:
    """An ONNX Runtime session over :func:`export_encoder`'s graph (bytes or a file); called like the torch path.

    The token lookup runs in numpy on ``table`` (the vocabulary matrix, see
    :func:`safetensors_word_table`): the graph holds only the layers (86 MB instead of 470 MB for
    multilingual-e5-small), so the session is built in a fraction of the time (bench: model load).
    """

    def __init__(self, graph: bytes | str, table: np.ndarray, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or max(1, min(2, os.cpu_count() or 1))
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
        self.table = table

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        embeds = np.ascontiguousarray(self.table[ids], dtype=np.float32)
        return self.session.run(None, {"embeds": embeds, "mask": mask.astype(np.int64)})[0]
