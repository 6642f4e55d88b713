"""An optional ONNX Runtime path for the transformer's encoder (``classify.tag --runtime onnx``).

Why: PyTorch runs the encoder op by op (eager mode). ONNX Runtime reads the whole graph at once and
fuses what PyTorch keeps apart (attention, layer norm, GELU, bias additions), so the same fp32
arithmetic spends more of its time in matrix products. Nothing about the model changes: the
fine-tuned encoder (frozen and fine-tuned layers, mean pooling) is exported **in memory** from
the loaded safetensors weights when tagging starts (about 10 s) and never written to disk, so a
model directory stays what training saved and there is no second copy of the weights to trust.
The heads stay in numpy, as on the PyTorch path. ``classify.bench`` checks that the labels on the
sample dumps are the same and states the largest probability difference.

Needs ``pip install -e '.[onnx]'`` (onnxruntime and onnx from PyPI).
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Any

import numpy as np

from .errors import ConfigError

RUNTIMES = ("torch", "onnx")


def check_runtime(runtime: str) -> str:
    """Validate ``--runtime`` and that its packages are installed (one clear line if not)."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"The 'runtime' parameter must be one of {', '.join(RUNTIMES)}. Got {runtime!r} instead.")
    if runtime == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ConfigError("--runtime onnx needs onnxruntime and onnx: pip install -e '.[onnx]'") from None
    return runtime


def _wrapper(embeddings: Any, layers: list, pool: Any):
    """One torch module: token ids and mask -> the pooled window representation."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = embeddings
            self.low = torch.nn.ModuleList(layers)
            self.pool = pool

        def forward(self, ids, mask):
            h = self.embeddings(input_ids=ids)
            ext = (1.0 - mask[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min
            for layer in self.low:
                out = layer(h, attention_mask=ext)
                h = out[0] if isinstance(out, tuple) else out
            return self.pool.embed(h, mask)

    return Encoder().eval()


def export_encoder(embeddings: Any, layers: list, pool: Any) -> bytes:
    """The ONNX graph (bytes) of embeddings -> ``layers`` -> ``pool.embed``, batch and length dynamic."""
    import torch

    module = _wrapper(embeddings, layers, pool)
    ids = torch.full((2, 16), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # a padded row, so the traced graph keeps the mask arithmetic
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow on shapes
        torch.onnx.export(module, (ids, mask), buf, input_names=["ids", "mask"], output_names=["pooled"],
                          dynamic_axes={"ids": {0: "batch", 1: "length"}, "mask": {0: "batch", 1: "length"},
                                        "pooled": {0: "batch"}}, opset_version=17, dynamo=False)
    return buf.getvalue()


class OrtEncoder:
    """An ONNX Runtime session over :func:`export_encoder`'s graph; called like the torch path."""

    def __init__(self, graph: bytes, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or max(1, min(2, os.cpu_count() or 1))
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"ids": ids.astype(np.int64), "mask": mask.astype(np.int64)})[0]
