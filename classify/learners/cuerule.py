"""The cue rule: the codebook's own cues as a classifier, kept as a reference system.

A label is predicted when at least one of its cues matches; evidence is the paragraph with most
hits. Stance is ``against`` when a cue of a frame that casts the West negatively fires (the
``cue_frames`` of ``against`` in the codebook), else ``none`` (``classify.cues.stance_from_frames``).
It needs no training; ``fit`` only records that it was "fitted", so it runs through the same
evaluation as the learned models. A learned model that does not beat it is not done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..codebook import Codebook
from .base import Model, Probas, as_paragraphs, check_fitted
from .card import now_iso, versions
from .cues import CueMatcher, stance_from_frames


class CueRuleModel(Model):
    """Predict a label when one of its codebook cues matches."""

    kind = "cue_rule"

    def __init__(self, codebook: Codebook | None = None) -> None:
        super().__init__(codebook)
        self.matcher_ = CueMatcher(self.codebook)

    def fit(self, posts: Any = None, gold: pd.DataFrame | None = None, groups: Any = None) -> CueRuleModel:
        """Nothing to learn; present so the cue rule runs through the same harness."""
        self.fitted_ = True
        self.thresholds_ = {"topics": 0.5, "frames": 0.5, "source": "fixed (a cue match gives 1.0)"}
        self.card_ = {"date": now_iso(), "versions": versions(), "hyperparameters": {}}
        return self

    def predict_proba(self, posts: Any) -> Probas:
        check_fitted(self)
        cb = self.codebook
        paragraphs = as_paragraphs(posts)
        nt = len(cb.topics)
        per_hits = [self.matcher_.paragraph_hits(p) for p in paragraphs]
        P = np.array([h.sum(axis=0) for h in per_hits], dtype=float).reshape(len(paragraphs), -1) > 0
        stance = np.zeros((len(paragraphs), len(cb.stances)))
        for i, row in enumerate(P[:, nt:]):
            stance[i, cb.stances.index(stance_from_frames([f for f, on in zip(cb.frames, row) if on], cb))] = 1.0
        per_para = [h[:, nt:].astype(float) for h in per_hits]
        return Probas(topics=P[:, :nt].astype(float), frames=P[:, nt:].astype(float), stance=stance, paragraph_frames=per_para)

    def _save_arrays(self, path: Path) -> None:
        return None

    def _load_arrays(self, path: Path, card: dict) -> None:
        self.matcher_ = CueMatcher(self.codebook)
