"""The active-learning queue: which unlabelled posts to label next, and why each was picked.

Four strategies share the ``n`` picks by stated weights. Three rank candidates by a score:
``rare`` (the probability, from the model or a cue match, of a label the gold has few of; the listed
labels take turns, so each gets its share of these picks),
``disagreement`` (labels on which the model and the codebook cue rule differ) and ``uncertainty``
(how close the model's least sure label sits to its threshold). The fourth, ``diversity``, is
small-text's greedy coreset over encoder embeddings: the post farthest from everything labelled or
picked. Every pick skips candidates whose embedding is a near-duplicate of a labelled or picked post,
so one story told five times is not labelled five times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..errors import ConfigError
from ..learners.base import Probas

STRATEGIES = ("rare", "disagreement", "uncertainty", "diversity")
DEFAULT_WEIGHTS = {"rare": 0.4, "disagreement": 0.2, "uncertainty": 0.2, "diversity": 0.2}
DEFAULT_RARE = ("cyber", "brics", "sanctions_illegitimate", "stance:favor")
NEAR_DUPLICATE = 0.95


@dataclass
class QueueScores:
    """Per-candidate scores, each in [0, 1], in candidate order."""

    rare: np.ndarray
    disagreement: np.ndarray
    uncertainty: np.ndarray
    rare_label: list[str] = field(default_factory=list)
    rare_order: list[int] | None = None
    """Candidates in the order the rare strategy takes them (None: by ``rare``, highest first)."""


def check_rare(codebook: Codebook, rare: Sequence[str]) -> None:
    """Refuse rare labels the codebook does not have, before any model is fit for the queue."""
    known = set(codebook.topics) | set(codebook.frames) | {f"stance:{s}" for s in codebook.stances}
    bad = [lab for lab in rare if lab not in known]
    if bad:
        raise ConfigError(f"rare label {bad[0]!r} is not in the codebook (topics, frames or stance:<class>)")


def strategy_scores(model: Probas, rule: Probas, codebook: Codebook, thresholds: dict[str, np.ndarray],
                    rare: Sequence[str] = DEFAULT_RARE) -> QueueScores:
    """Score candidates from the model's and the cue rule's outputs."""
    labels = list(codebook.topics) + list(codebook.frames)
    P = np.hstack([model.topics, model.frames])
    R = np.hstack([rule.topics, rule.frames]) >= 0.5
    th = np.concatenate([thresholds["topics"], thresholds["frames"]])
    check_rare(codebook, rare)
    cols, names = [], []
    for lab in rare:
        if lab.startswith("stance:"):
            cols.append(model.stance[:, codebook.stances.index(lab.split(":", 1)[1])])
        else:
            j = labels.index(lab)
            cols.append(np.maximum(P[:, j], R[:, j].astype(float)))
        names.append(lab)
    rare_m = np.column_stack(cols) if cols else np.zeros((len(P), 1))
    order, turn = take_turns(rare_m)
    disagreement = ((th <= P) != R).sum(1) / P.shape[1]
    closeness = 1 - np.abs(P - th) / np.maximum(th, 1 - th)
    top2 = np.sort(model.stance, axis=1)[:, -2:]
    stance_closeness = 1 - (top2[:, 1] - top2[:, 0])
    uncertainty = np.maximum(closeness.max(1), stance_closeness)
    return QueueScores(rare_m[np.arange(len(P)), turn], disagreement, uncertainty,
                       [names[k] for k in turn] if names else [], order)


def take_turns(M: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Candidates ranked by letting each column (a rare label) take its next most likely candidate in
    turn, and the column that placed each candidate.

    Why: ranked by the highest of their probabilities, a label the model finds likely on many posts
    (stance ``against`` in a pool of polemics) took every rare pick and the others none.
    """
    ranks = np.argsort(-M, axis=0, kind="stable")
    order: list[int] = []
    turn = np.zeros(len(M), dtype=int)
    seen = np.zeros(len(M), dtype=bool)
    for row in ranks:
        for j, i in enumerate(row):
            if not seen[i]:
                seen[i] = True
                order.append(int(i))
                turn[i] = j
    return order, turn


def strategy_quotas(n: int, weights: dict[str, float]) -> dict[str, int]:
    """Split ``n`` picks among strategies by weight (largest remainders get the leftovers)."""
    unknown = set(weights) - set(STRATEGIES)
    if unknown or not weights or min(weights.values()) < 0 or sum(weights.values()) <= 0:
        raise ConfigError(f"strategy weights must be non-negative, not all zero, from {', '.join(STRATEGIES)}")
    total = sum(weights.values())
    raw = {s: n * w / total for s, w in weights.items()}
    quota = {s: int(v) for s, v in raw.items()}
    for s in sorted(raw, key=lambda s: raw[s] - quota[s], reverse=True)[: n - sum(quota.values())]:
        quota[s] += 1
    return quota


def pick(scores: QueueScores, emb: np.ndarray, labelled_emb: np.ndarray, n: int,
         weights: dict[str, float] = DEFAULT_WEIGHTS, near_duplicate: float = NEAR_DUPLICATE) -> list[tuple[int, str]]:
    """``(candidate index, strategy)`` for ``n`` picks: scored strategies in turn, then the coreset."""
    quota = strategy_quotas(n, weights)
    taken: list[tuple[int, str]] = []
    blocked = np.zeros(len(emb), bool)
    if len(labelled_emb):
        blocked |= (emb @ labelled_emb.T).max(1) >= near_duplicate
    ranked = {s: list(np.argsort(-getattr(scores, s), kind="stable")) for s in STRATEGIES[:3]}
    if scores.rare_order is not None:
        ranked["rare"] = list(scores.rare_order)
    left = {s: quota.get(s, 0) for s in STRATEGIES[:3]}
    while any(left.values()):
        for s in STRATEGIES[:3]:
            if not left[s]:
                continue
            i = next((i for i in ranked[s] if not blocked[i]), None)
            if i is None:
                left[s] = 0
                continue
            taken.append((int(i), s))
            left[s] -= 1
            blocked |= emb @ emb[i] >= near_duplicate
            blocked[i] = True
    taken += [(i, "diversity") for i in coreset(emb, labelled_emb, [i for i, _ in taken], blocked, n - len(taken))]
    return taken


def coreset(emb: np.ndarray, labelled_emb: np.ndarray, picked: list[int], blocked: np.ndarray, k: int) -> list[int]:
    """``k`` candidates by small-text's greedy coreset, with labelled and picked posts as the covered set."""
    # Euclidean distance on unit vectors orders like cosine, without arccos of rounding-error values above 1.
    from small_text.query_strategies.coresets import greedy_coreset

    free = np.flatnonzero(~blocked)
    k = min(k, len(free))
    if k <= 0:
        return []
    covered_emb = np.vstack([labelled_emb.reshape(-1, emb.shape[1]), emb[picked]])
    head: list[int] = []
    if not len(covered_emb):  # nothing labelled or picked: the first free candidate seeds the cover
        head, covered_emb, free, k = [int(free[0])], emb[free[:1]], free[1:], k - 1
        if k <= 0 or not len(free):
            return head
    x = np.vstack([emb[free], covered_emb])
    chosen = greedy_coreset(x, np.arange(len(free)), np.arange(len(free), len(x)), k, distance_metric="euclidean")
    return head + [int(free[j]) for j in chosen]


def queue_records(cand: pd.DataFrame, picks: list[tuple[int, str]], scores: QueueScores, emb: np.ndarray,
                  labelled_emb: np.ndarray, records: Callable[[pd.DataFrame, dict[str, list]], list[dict[str, Any]]]
                  ) -> list[dict[str, Any]]:
    """One record per pick, in pick order: the post, its reason and its scores."""
    idx = [i for i, _ in picks]
    nearest = (emb[idx] @ labelled_emb.T).max(1) if len(labelled_emb) and idx else np.zeros(len(idx))
    extra: dict[str, list] = {"rank": list(range(1, len(idx) + 1)), "reason": [], "scores": []}
    for k, (i, s) in enumerate(picks):
        extra["reason"].append(reason_text(s, scores, i, float(nearest[k])))
        extra["scores"].append({"rare": round(float(scores.rare[i]), 4), "disagreement": round(float(scores.disagreement[i]), 4),
                                "uncertainty": round(float(scores.uncertainty[i]), 4),
                                "nearest_labelled_cosine": round(float(nearest[k]), 4), "strategy": s})
    return records(cand.iloc[idx], extra)


def reason_text(strategy: str, scores: QueueScores, i: int, nearest: float) -> str:
    """A one-line reason for a pick, in words an annotator or reviewer reads."""
    if strategy == "rare":
        return f"rare label: {scores.rare_label[i]} likely ({scores.rare[i]:.2f})"
    if strategy == "disagreement":
        return f"model and cue rule disagree on {scores.disagreement[i]:.0%} of labels"
    if strategy == "uncertainty":
        return f"model unsure: a label sits near its threshold (uncertainty {scores.uncertainty[i]:.2f})"
    return f"diversity: far from every labelled post (nearest cosine {nearest:.2f})"


def post_texts(df: pd.DataFrame) -> list[str]:
    """Each post's paragraphs joined, the text the encoder embeds."""
    return ["\n".join(p) for p in df["paragraphs"]]


def encoder_embedder(path: Any = None, max_length: int = 128) -> Callable[[list[str]], np.ndarray]:
    """Embed texts with the transformer's encoder (default multilingual e5-small), L2-normalised."""
    def run(texts: list[str]) -> np.ndarray:
        from ..learners.transformer.encoder import embed, ensure_encoder, load_encoder

        tok, mdl = load_encoder(ensure_encoder(path, progress=True))
        return embed(texts, tok, mdl, max_length=max_length)
    return run


def build_queue(cand: pd.DataFrame, labelled: pd.DataFrame, model: Any, n: int, embedder: Callable[[list[str]], np.ndarray],
                records: Callable[[pd.DataFrame, dict[str, list]], list[dict[str, Any]]], *,
                weights: dict[str, float] = DEFAULT_WEIGHTS, rare: Sequence[str] = DEFAULT_RARE,
                near_duplicate: float = NEAR_DUPLICATE) -> list[dict[str, Any]]:
    """The queue of ``n`` picks from ``cand`` (unlabelled posts), given the ``labelled`` posts and a fitted model."""
    from ..learners.cuerule import CueRuleModel

    if n > len(cand):
        raise ConfigError(f"{n} picks asked for but only {len(cand)} unlabelled candidate posts")
    cand = cand.reset_index(drop=True)
    codebook = model.codebook
    rule = CueRuleModel(codebook).fit().predict_proba(cand)
    th = {t: model.threshold_vector(t) for t in ("topics", "frames")}
    scores = strategy_scores(model.predict_proba(cand), rule, codebook, th, rare)
    emb = embedder(post_texts(cand) + post_texts(labelled))
    emb, labelled_emb = emb[: len(cand)], emb[len(cand):]
    picks = pick(scores, emb, labelled_emb, n, weights, near_duplicate)
    return queue_records(cand, picks, scores, emb, labelled_emb, records)
