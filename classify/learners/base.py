"""The model interface shared by every model kind.

Every kind (``baseline``, ``transformer``, the ``cue_rule`` reference) implements:

* ``fit(posts, gold) -> self``: learn from posts and their gold labels.
* ``predict_proba(posts) -> Probas``: per-label probabilities (topics, frames in codebook order),
  stance probabilities (codebook order) and per-paragraph frame scores for evidence.
* ``predict(posts) -> DataFrame``: labels after thresholds, with probabilities and evidence.
* ``save(dir)`` / ``load(dir)``: no pickle; arrays in safetensors, everything else JSON.

``posts`` is a DataFrame with a ``paragraphs`` (or ``text``) column, or a list of strings (split
into paragraphs at line breaks). A bare string is rejected, as scikit-learn does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..errors import ConfigError, ModelError, NotFittedError
from .card import CARD_FILE, TASKS, check_codebook, json_default, read_card
from .checks import check_kind_files, check_thresholds


@dataclass
class Probas:
    """Model outputs for ``n`` posts.

    Attributes
    ----------
    topics : ndarray of shape (n, n_topics)
        Columns ordered as ``codebook.topics``.
    frames : ndarray of shape (n, n_frames)
        Columns ordered as ``codebook.frames``.
    stance : ndarray of shape (n, n_stances)
        Rows sum to 1; columns ordered as ``codebook.stances``.
    paragraph_frames : list of ndarray (n_paragraphs_i, n_frames)
        Per-paragraph frame scores; the top paragraph of a predicted frame is its evidence.
    """

    topics: np.ndarray
    frames: np.ndarray
    stance: np.ndarray
    paragraph_frames: list[np.ndarray] = field(default_factory=list)


def as_paragraphs(posts: Any) -> list[list[str]]:
    """Normalise the accepted ``posts`` inputs to a list of paragraph lists."""
    if isinstance(posts, str):
        raise ConfigError("Iterable over raw text documents expected, string object received; wrap it in a list")
    if isinstance(posts, pd.DataFrame):
        if "paragraphs" in posts.columns:
            return [[str(p) for p in ps] if len(ps) else [""] for ps in posts["paragraphs"]]
        if "text" in posts.columns:
            return [_split(t) for t in posts["text"]]
        raise ConfigError(f"posts DataFrame needs a 'paragraphs' or 'text' column; it has {list(posts.columns)}")
    out = []
    for p in posts:
        if isinstance(p, str):
            out.append(_split(p))
        elif isinstance(p, (list, tuple, np.ndarray)):
            out.append([str(x) for x in p] or [""])
        else:
            raise ConfigError(f"each post must be a string or a list of paragraphs; got {type(p).__name__}")
    return out


def _split(text: Any) -> list[str]:
    paras = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return paras or [""]


def gold_targets(gold: pd.DataFrame, codebook: Codebook) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Binary matrices for topics and frames and stance class indices, in codebook order."""
    def matrix(col: str, ids: Sequence[str]) -> np.ndarray:
        return np.array([[int(i in set(row)) for i in ids] for row in gold[col]], dtype=np.int64)

    stance = np.array([codebook.stances.index(s) for s in gold["stance_west"]], dtype=np.int64)
    return matrix("topics", codebook.topics), matrix("frames", codebook.frames), stance


def check_fitted(model: Any) -> None:
    """Raise ``NotFittedError`` (scikit-learn's wording plus the fix) if ``model`` is unfitted."""
    if not getattr(model, "fitted_", False):
        raise NotFittedError(
            f"This {type(model).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
            "before using this estimator, or run `python -m classify.train`."
        )


class Model:
    """Base class: thresholds, ``predict`` from ``predict_proba``, card handling.

    Subclasses set ``kind`` and implement ``fit``, ``predict_proba``, ``_save_arrays`` and
    ``_load_arrays``. Learned state ends in ``_``.
    """

    kind = "base"
    fits_on_one_core = False
    """True when ``fit`` uses one core: evaluation then fits such models in parallel processes."""

    def __init__(self, codebook: Codebook | None = None) -> None:
        self.codebook = codebook or Codebook.load()
        self.fitted_ = False
        self.thresholds_: dict[str, Any] = {}
        self.card_: dict[str, Any] = {}

    # ----------------------------------------------------------------- prediction
    def predict_proba(self, posts: Any) -> Probas:  # pragma: no cover - abstract
        raise NotImplementedError

    def threshold_vector(self, task: str) -> np.ndarray:
        """Thresholds for ``task`` as an array in codebook order (global or per label)."""
        ids = self.codebook.labels(task)
        th = self.thresholds_.get(task, 0.5)
        if isinstance(th, dict):
            return np.array([float(th[i]) for i in ids])
        return np.full(len(ids), float(th))

    def predict(self, posts: Any, *, evidence_text: bool = True) -> pd.DataFrame:
        """Labels, probabilities and evidence, one row per post, in input order.

        Columns: ``topics`` and ``frames`` (lists of ids), ``stance_west``, ``scores`` (probability
        per topic and frame), ``stance_scores``, ``evidence`` (frame -> list of ``{"paragraph": i,
        "text": ...}``, the highest-scoring paragraph for each predicted frame).
        """
        check_fitted(self)
        paragraphs = as_paragraphs(posts)
        proba = self.predict_proba(paragraphs)
        return probas_to_frame(proba, paragraphs, self.codebook, self.threshold_vector("topics"),
                               self.threshold_vector("frames"), evidence_text=evidence_text)

    # ----------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Write the model directory (arrays, JSON state, ``card.json`` and ``MODEL_CARD.md``)."""
        check_fitted(self)
        from .card import render_card

        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        self._save_arrays(tmp)
        card = {**self.card_, "kind": self.kind, "codebook_version": self.codebook.version,
                "labels": {t: list(self.codebook.labels(t)) for t in TASKS}, "thresholds": self.thresholds_}
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2, ensure_ascii=False, default=json_default), encoding="utf-8")
        (tmp / "MODEL_CARD.md").write_text(render_card(card), encoding="utf-8")
        if path.exists():
            import shutil

            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
        return path

    @classmethod
    def load(cls, path: str | Path, **options: Any) -> Model:
        """Load a directory written by ``save``; never executes code from the files.

        ``options`` go to the kind's ``_load_arrays`` (the transformer's ``onnx_threads``: see ``load_model``).
        """
        path = Path(path)
        card = read_card(path)
        if card.get("kind") != cls.kind:
            raise ModelError(f"{path}: is a '{card.get('kind')}' model, not '{cls.kind}'; use classify.load_model()")
        codebook = Codebook.load()
        check_codebook(path, card, codebook)
        check_kind_files(path, cls.kind)
        check_thresholds(path, card.get("thresholds", {}), {t: codebook.labels(t) for t in ("topics", "frames")})
        model = cls.__new__(cls)
        Model.__init__(model, codebook)
        model.card_ = card
        model.thresholds_ = card.get("thresholds", {})
        try:
            model._load_arrays(path, card, **options)
        except ModelError:
            raise
        except Exception as exc:  # corrupt arrays or JSON: never a traceback for the user
            raise ModelError(f"{path}: model files are corrupt or incomplete ({type(exc).__name__}: {exc}); retrain with `python -m classify.train`") from None
        model.fitted_ = True
        return model

    def _save_arrays(self, path: Path) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load_arrays(self, path: Path, card: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def probas_to_frame(proba: Probas, paragraphs: list[list[str]], codebook: Codebook, topic_th: np.ndarray,
                    frame_th: np.ndarray, *, evidence_text: bool = True) -> pd.DataFrame:
    """Turn probabilities into the prediction table (shared by every model kind)."""
    topic_ids, frame_ids, stance_ids = codebook.topics, codebook.frames, codebook.stances  # looked up once
    topics_on = proba.topics >= topic_th
    frames_on = proba.frames >= frame_th
    stance_idx = proba.stance.argmax(axis=1)
    t_scores = np.round(proba.topics.astype(float), 6).tolist()
    f_scores = np.round(proba.frames.astype(float), 6).tolist()
    s_scores = np.round(proba.stance.astype(float), 6).tolist()
    rows = []
    for i, paras in enumerate(paragraphs):
        on = np.flatnonzero(frames_on[i])
        frames = [frame_ids[j] for j in on]
        evidence = {}
        pf = proba.paragraph_frames[i] if proba.paragraph_frames else None
        best = pf[:, on].argmax(axis=0).tolist() if pf is not None and len(pf) and len(on) else [0] * len(on)
        for f, k in zip(frames, best):
            evidence[f] = [{"paragraph": k, "text": paras[k] if k < len(paras) else ""} if evidence_text else {"paragraph": k}]
        rows.append({
            "topics": [topic_ids[j] for j in np.flatnonzero(topics_on[i])],
            "frames": frames,
            "stance_west": stance_ids[int(stance_idx[i])],
            "scores": {**dict(zip(topic_ids, t_scores[i])), **dict(zip(frame_ids, f_scores[i]))},
            "stance_scores": dict(zip(stance_ids, s_scores[i])),
            "evidence": evidence,
        })
    return pd.DataFrame(rows, columns=["topics", "frames", "stance_west", "scores", "stance_scores", "evidence"])
