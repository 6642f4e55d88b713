"""Checks a model folder passes on load: its card's kind and thresholds, its files, its arrays.

Why: a model folder is data that can be damaged or edited by hand. Without these checks a string
threshold, a truncated array or a NaN weight surfaces as an internal error at predict time, or
worse, is accepted and writes NaN scores or wrong labels. Every failure is a one-line
``ModelError`` naming the file and what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError

MARKER_FILES = {"baseline": "weights.safetensors", "transformer": "heads.safetensors"}
"""The file that only a model of that kind has."""

RETRAIN = "the model is corrupt or tampered; retrain it with `python -m classify.train`"


def check_kind_files(path: Path, kind: str) -> None:
    """Refuse a card whose kind disagrees with the files beside it (e.g. ``cue_rule`` over a baseline's weights)."""
    for other, marker in MARKER_FILES.items():
        if other != kind and (path / marker).exists() and not (kind in MARKER_FILES and (path / MARKER_FILES[kind]).exists()):
            raise ModelError(f"{path / 'card.json'}: kind '{kind}' but the folder holds a {other} model's {marker}; {RETRAIN}")


def _threshold_ok(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def check_thresholds(path: Path, thresholds: Any, labels: Mapping[str, Sequence[str]]) -> None:
    """Thresholds are a number in [0, 1] per task, or one per label of the codebook."""
    where = path / "card.json"
    if not isinstance(thresholds, Mapping):
        raise ModelError(f"{where}: 'thresholds' is a {type(thresholds).__name__}, expected an object; {RETRAIN}")
    for task in ("topics", "frames"):
        if task not in thresholds:
            continue
        value = thresholds[task]
        if isinstance(value, Mapping):
            if set(value) != set(labels[task]):
                raise ModelError(f"{where}: thresholds.{task} does not name exactly the codebook's {task}; {RETRAIN}")
            bad = next((f"{task}.{k} = {v!r}" for k, v in value.items() if not _threshold_ok(v)), None)
        else:
            bad = None if _threshold_ok(value) else f"{task} = {value!r}"
        if bad:
            raise ModelError(f"{where}: threshold {bad} is not a number in [0, 1]; {RETRAIN}")


def check_arrays(source: Path, arrays: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Each named array has its expected shape and only finite values."""
    for name, shape in shapes.items():
        a = np.asarray(arrays[name]) if name in arrays else None
        if a is None:
            raise ModelError(f"{source}: no '{name}' array; {RETRAIN}")
        if a.shape != tuple(shape):
            raise ModelError(f"{source}: '{name}' has shape {a.shape}, expected {tuple(shape)}; {RETRAIN}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ModelError(f"{source}: '{name}' holds {int((~np.isfinite(a)).sum())} non-finite values (NaN or inf); {RETRAIN}")


def check_vocab(source: Path, vocab: Any, names: Sequence[str]) -> None:
    """The vocabularies are lists of distinct strings (columns of the weights, in order)."""
    if not isinstance(vocab, Mapping):
        raise ModelError(f"{source}: expected an object with {', '.join(names)}; {RETRAIN}")
    for name in names:
        terms = vocab.get(name)
        if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
            raise ModelError(f"{source}: '{name}' is not a list of strings; {RETRAIN}")
        if len(set(terms)) != len(terms):
            raise ModelError(f"{source}: '{name}' repeats {len(terms) - len(set(terms))} entries; {RETRAIN}")


def check_model_name(best_file: Path, name: Any) -> str:
    """``models/best.json`` may only name a model folder inside ``models/`` (no path, no ``..``, no link out)."""
    models = best_file.parent
    ok = isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name and "\\" not in name
    if not ok or not (models / name).resolve().is_relative_to(models.resolve()):
        raise ModelError(f"{best_file}: 'best' is {name!r}; it must name a model folder inside {models}/ "
                         "(rerun `python -m classify.train` or pass --model)")
    return name
