"""Models: the shared interface, the cue rule, the baseline and the transformer, and ``load_model``.

Every kind implements ``fit``, ``predict_proba``, ``predict``, ``save`` and ``load``
(``classify.learners.base.Model``); ``load_model`` dispatches on the kind in the saved card.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError, ModelError
from .base import Model
from .card import CARD_FILE, read_card
from .checks import check_model_name

KINDS = {"baseline": "classify.learners.baseline.model:BaselineModel", "transformer": "classify.learners.transformer.model:TransformerModel",
         "cue_rule": "classify.learners.cuerule:CueRuleModel"}


def model_class(kind: str) -> type[Model]:
    """The class for a model kind, imported lazily (torch only when a transformer is asked for)."""
    import importlib

    if kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    mod, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(mod), name)


def load_model(path: str | Path, runtime: str = "torch", threads: int | None = None) -> Model:
    """Load any saved model directory, dispatching on the kind recorded in its card.

    ``runtime="onnx"``: a transformer that will run its encoder with ONNX Runtime
    (``classify.onnxrt``); when the directory's exported graph is cached, its PyTorch encoder
    weights are not even read (seconds and hundreds of MB saved); ``threads`` are ONNX Runtime's.
    ``runtime="bf16"``: a transformer whose encoder multiplies in bfloat16 (``use_bf16``).
    Other kinds ignore ``runtime``.

    Examples
    --------
    >>> m = load_model("models/baseline")  # doctest: +SKIP
    >>> m.predict(["Russia and ASEAN discussed nuclear energy."])  # doctest: +SKIP
    """
    path = Path(path)
    card = read_card(path)
    kind = card.get("kind")
    if kind not in KINDS:
        raise ModelError(f"{path}: unknown model kind {kind!r} in {CARD_FILE}")
    if kind == "transformer" and runtime == "onnx":
        model = model_class(kind).load(path, onnx_threads=threads or 0)
        if getattr(model, "ort_", None) is None:  # no cached graph: export it (outside load's error wrapping)
            model.use_onnx(threads)
        return model
    if kind == "transformer" and runtime == "bf16":
        return model_class(kind).load(path).use_bf16()
    return model_class(kind).load(path)


def default_model_dir(models_dir: Path = Path("models")) -> Path:
    """The model ``classify.train`` ranked best, else the baseline.

    ``best.json`` may only name a folder inside ``models_dir``; anything else is a ``ModelError``.
    """
    best = models_dir / "best.json"
    if best.exists():
        try:
            name = json.loads(best.read_text(encoding="utf-8"))["best"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            raise ModelError(f"{best}: unreadable (expected {{\"best\": \"<kind>\"}}); rerun `python -m classify.train` or pass --model") from None
        if (models_dir / check_model_name(best, name)).exists():
            return models_dir / name
    return models_dir / "baseline"
