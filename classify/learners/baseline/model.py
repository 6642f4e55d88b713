"""TF-IDF + logistic regression baseline, with the codebook's cues as extra features.

Design, and why:

* **Features for English and Russian together**: word 1-2-grams and character 2-5-grams inside
  word boundaries (robust to Russian inflection), sublinear TF, plus per-label cue-hit counts from
  the codebook (``log1p`` of hits), and multilingual sentence vectors (``sentence_vectors``; they carry
  what is learned on English posts to Russian ones). On held-out posts the cues alone beat TF-IDF trained on ~60
  posts, and as features they lift it to the cue rule's level and beyond.
* **Paragraphs first**: counts are computed once per distinct paragraph and summed per post, so the
  same vectors give post-level scores and paragraph-level evidence (the paragraph whose score for
  a frame is highest), and repeated paragraphs cost nothing extra when tagging.
* **One-vs-rest logistic regression** with balanced class weights per topic and frame; a
  multinomial logistic regression for stance. A label with fewer than two positives in training
  cannot be learned; it backs off to its cues (probability ``cue_backoff_hit`` when a cue fires).
* **Thresholds from inner out-of-fold predictions** (see ``classify.thresholds``).

Saved as arrays (safetensors) + JSON: no pickle, nothing executes on load.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit, softmax
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from ...codebook import Codebook
from ...errors import ConfigError, ModelError, check_float, check_folds, check_int
from ...evaluation.splits import group_folds, stacked_targets
from ..base import Model, Probas, as_paragraphs, check_fitted, gold_targets
from ..card import now_iso, versions
from ..checks import check_arrays, check_vocab
from ..cues import CueMatcher
from ..sentvec import DIM as SENTENCE_DIM
from ..stacking import apply_stacker, fit_stacker, label_rows, post_hits
from ..thresholds import choose
from ..west import gate_stance
from .features import Featuriser


@dataclass
class BaselineConfig:
    """Hyperparameters of the baseline, validated in one place."""

    word_ngrams: tuple[int, int] = (1, 2)
    """Word n-gram range."""
    char_ngrams: tuple[int, int] = (2, 5)
    """Character n-gram range (``char_wb`` analyser)."""
    max_word_features: int = 30000
    max_char_features: int = 60000
    C: float = 4.0
    """Inverse regularisation strength of every logistic regression."""
    use_cues: bool = True
    """Add the codebook's cue-hit counts as features."""
    cue_weight: float = 1.0
    """Scale of the cue features relative to the unit-norm TF-IDF block."""
    threshold_folds: int = 5
    """Inner folds for out-of-fold thresholds (0: fixed 0.5)."""
    per_label_min_positives: int = 15
    """A label gets its own threshold only with at least this many positives."""
    cue_backoff_hit: float = 0.75
    """Probability given to an unlearnable label (< 2 positives) when one of its cues fires."""
    stack_cues: bool = False
    """Combine each label's score with its cue hits by a small logistic regression per task
    (inputs: the score's logit and ``log1p`` of the post's cue hits), fitted on the inner
    out-of-fold predictions. Off by default: since the features carry the sentence vectors the
    stacker no longer helps (fitted on English posts it carried the English cues' reliability to
    other sources); without it the baseline tied its comparison and is the simpler (eval/SELECTION.md)."""
    stack_frames_per_label: bool = True
    """With ``stack_cues``: one stacker row per frame (shared weights plus per-frame deviations kept
    small by the L2 penalty, ``classify.learners.stacking``) instead of one shared by all frames."""
    stack_topics_per_label: bool = False
    """The same for the topics (default: one stacker row shared by all four topics)."""
    stance_needs_west: bool = True
    """Give stance ``none`` to a post that names no Western actor (``classify.learners.west``): the
    codebook's stance evaluates Western governments and alliances, which such a post does not name.
    It won its comparison (eval/SELECTION.md)."""
    cue_hashtags: bool = True
    """Match the cues with a hashtag read as its word (``#BRICS`` as ``BRICS``; ``CueMatcher``), for
    the cue features and the stacker; the cue rule itself keeps the codebook's cues as written. Tweets
    name their subject by hashtag where the codebook's cues skip bare hashtags; the option won its
    comparison (eval/SELECTION.md)."""
    sentence_vectors: float = 1.0
    """Weight of a block of multilingual sentence vectors (``classify.learners.sentvec``: USE v3, unit
    norm) appended to the features; 0 leaves it out. Why: TF-IDF weights learned on English words do
    not carry over to Russian posts or new sources, the sentence vectors do. It won its comparison
    (eval/SELECTION.md)."""
    label_similarity: float = 5.0
    """Weight of a block of cosines between a post's (or paragraph's) sentence vector and each topic's
    and frame's description in the codebook (``features.label_vectors``), for the frames and the stance;
    0 leaves it out. The topics do not see it (on left-out sources it cost them precision). Why: a
    cosine to a label's description means the same in English and Russian and on a new source, where
    512 free vector weights fitted on English posts need not. It won its comparison, most on the stance
    of left-out sources (eval/SELECTION.md); a model saved before the option loads with it off."""
    seed: int = 0

    def __post_init__(self) -> None:
        self.word_ngrams = tuple(self.word_ngrams)
        self.char_ngrams = tuple(self.char_ngrams)
        for name in ("word_ngrams", "char_ngrams"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or not all(isinstance(v, int) and v >= 1 for v in lo_hi) or lo_hi[0] > lo_hi[1]:
                raise ConfigError(f"The '{name}' parameter of BaselineConfig must be two ints 1 <= lo <= hi. Got {lo_hi!r} instead.")
        for name in ("max_word_features", "max_char_features"):
            check_int("BaselineConfig", name, getattr(self, name), 1)
        check_float("BaselineConfig", "C", self.C, 0, lo_open=True)
        check_float("BaselineConfig", "sentence_vectors", self.sentence_vectors, 0, 100)
        check_float("BaselineConfig", "label_similarity", self.label_similarity, 0, 100)
        check_folds("BaselineConfig", "threshold_folds", self.threshold_folds)
        if not 0 < self.cue_backoff_hit < 1:
            raise ConfigError(f"The 'cue_backoff_hit' parameter of BaselineConfig must be in (0, 1). Got {self.cue_backoff_hit!r} instead.")

    @classmethod
    def from_dict(cls, d: dict) -> BaselineConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown BaselineConfig parameter(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return cls(**d)


class BaselineModel(Model):
    """TF-IDF (+ cues) and logistic regression for topics, frames and stance.

    Parameters
    ----------
    config : BaselineConfig, optional
        Hyperparameters; defaults are the ones evaluated in ``eval/latest``.
    codebook : Codebook, optional
        Label space; the project codebook by default.

    Examples
    --------
    >>> m = BaselineModel().fit(posts, gold)  # doctest: +SKIP
    >>> m.predict(["Rosatom will build a nuclear power plant."])  # doctest: +SKIP
    """

    kind = "baseline"
    fits_on_one_core = True  # liblinear, lbfgs and the sentence vectors run on one thread

    def __init__(self, config: BaselineConfig | None = None, codebook: Codebook | None = None) -> None:
        super().__init__(codebook)
        self.config = config or BaselineConfig()

    @classmethod
    def config_class(cls) -> type[BaselineConfig]:
        return BaselineConfig

    # ----------------------------------------------------------------- training
    def fit(self, posts: Any, gold: pd.DataFrame, groups: Any = None) -> BaselineModel:
        """Fit on posts and gold labels; thresholds come from inner out-of-fold predictions.

        Parameters
        ----------
        posts : DataFrame or list
            See ``classify.model.as_paragraphs``.
        gold : DataFrame
            ``topics``, ``frames`` (lists of ids) and ``stance_west``, aligned with ``posts``.
        groups : sequence, optional
            Duplicate/translation group per post for the inner folds (default: ``gold["group"]``
            or ``gold["dup_group"]`` when present, else one group per post).
        """
        start = time.perf_counter()
        paragraphs = as_paragraphs(posts)
        if len(paragraphs) != len(gold):
            raise ConfigError(f"posts and gold must have the same length (posts: {len(paragraphs)}, gold: {len(gold)})")
        if len(paragraphs) < 4:
            raise ConfigError(f"need at least 4 posts to fit; got {len(paragraphs)}")
        groups = _groups(gold, groups)
        Yt, Yf, ys = gold_targets(gold, self.codebook)
        evidence = _evidence(gold)
        self._fit_core(paragraphs, Yt, Yf, ys, evidence)
        self.thresholds_ = self._oof_thresholds(paragraphs, Yt, Yf, ys, groups, evidence)
        self.fitted_ = True
        self.card_ = {
            "hyperparameters": asdict(self.config), "seed": self.config.seed, "n_posts": len(paragraphs),
            "label_counts": _label_counts(self.codebook, Yt, Yf, ys), "train_seconds": round(time.perf_counter() - start, 2),
            "date": now_iso(), "versions": versions(),
        }
        return self

    def _fit_core(self, paragraphs: list[list[str]], Yt: np.ndarray, Yf: np.ndarray, ys: np.ndarray,
                  evidence: list[dict[str, list[int]]] | None = None) -> None:
        self.stackers_ = None
        self.matcher_ = CueMatcher(self.codebook, self.config.cue_hashtags)
        self.feat_ = Featuriser(self.config, self.matcher_)
        F = self.feat_.fit_transform(paragraphs)
        X, Xp, owner = F.post, F.para[F.para_rows], F.owner
        Y = np.hstack([Yt, Yf])
        n_labels = Y.shape[1]
        nt = Yt.shape[1]
        self.coef_ = np.zeros((n_labels, X.shape[1]))
        self.intercept_ = np.zeros(n_labels)
        self.backoff_ = np.zeros(n_labels, dtype=bool)
        by_paragraph = evidence is not None
        X_topics = X[:, :X.shape[1] - n_labels] if self.config.label_similarity else X
        for j in range(n_labels):
            n_pos = int(Y[:, j].sum())
            if n_pos < 2 or n_pos > len(Y) - 2:
                self.backoff_[j] = True
                continue
            Xj, yj = X, Y[:, j]
            if j < nt and self.config.label_similarity:  # the topics do not see the similarity block (the last columns)
                Xj = X_topics
            if by_paragraph and j >= nt:
                Xj, yj = _paragraph_rows(Xp, owner, paragraphs, Y[:, j], evidence, self.codebook.frames[j - nt])
            # dual=True: far faster when features (~90k) outnumber posts (~60), same optimum.
            lr = LogisticRegression(C=self.config.C, class_weight="balanced", solver="liblinear", dual=True,
                                    max_iter=2000, random_state=self.config.seed)
            lr.fit(Xj, yj)
            self.coef_[j, :Xj.shape[1]] = lr.coef_[0]
            self.intercept_[j] = lr.intercept_[0]
        n_st = len(self.codebook.stances)
        self.stance_coef_ = np.zeros((n_st, X.shape[1]))
        self.stance_intercept_ = np.full(n_st, -30.0)
        present = np.unique(ys)
        if len(present) == 1:
            self.stance_intercept_[present[0]] = 0.0
        else:
            lr = LogisticRegression(C=self.config.C, class_weight="balanced", max_iter=1000, tol=1e-3, random_state=self.config.seed)
            lr.fit(X, ys)
            rows = lr.coef_ if len(present) > 2 else np.vstack([-lr.coef_[0] / 2, lr.coef_[0] / 2])
            icpt = lr.intercept_ if len(present) > 2 else np.array([-lr.intercept_[0] / 2, lr.intercept_[0] / 2])
            for k, cls in enumerate(lr.classes_):
                self.stance_coef_[cls] = rows[k]
                self.stance_intercept_[cls] = icpt[k]

    def _oof_thresholds(self, paragraphs, Yt, Yf, ys, groups, evidence=None) -> dict[str, Any]:
        k = self.config.threshold_folds
        if k == 0:
            return {"topics": 0.5, "frames": 0.5, "source": "fixed"}
        Pt = np.zeros(Yt.shape)
        Pf = np.zeros(Yf.shape)
        Y = stacked_targets(Yt, Yf, ys, len(self.codebook.stances))
        inner = BaselineModel(BaselineConfig(**{**asdict(self.config), "threshold_folds": 0}), self.codebook)
        for tr, te in group_folds(Y, groups, n_splits=k, seed=self.config.seed):
            sub = [paragraphs[i] for i in tr]
            inner._fit_core(sub, Yt[tr], Yf[tr], ys[tr], None if evidence is None else [evidence[i] for i in tr])
            inner.fitted_ = True
            pr = inner.predict_proba([paragraphs[i] for i in te])
            Pt[te] = pr.topics
            Pf[te] = pr.frames
        if self.config.stack_cues:
            H = post_hits(self.matcher_, paragraphs)
            nt = Yt.shape[1]
            self.stackers_ = np.vstack([fit_stacker(Pt, H[:, :nt], Yt, per_label=self.config.stack_topics_per_label),
                                        fit_stacker(Pf, H[:, nt:], Yf, per_label=self.config.stack_frames_per_label)])
            Pt = apply_stacker(self.stackers_[:nt], Pt, H[:, :nt])
            Pf = apply_stacker(self.stackers_[nt:], Pf, H[:, nt:])
        mp = self.config.per_label_min_positives
        return {"topics": choose(Yt, Pt, self.codebook.topics, average="micro", per_label_min_positives=mp),
                "frames": choose(Yf, Pf, self.codebook.frames, average="macro", per_label_min_positives=mp),
                "source": f"inner {k}-fold out-of-fold predictions on the training posts"}

    # ----------------------------------------------------------------- prediction
    def predict_proba(self, posts: Any) -> Probas:
        """Probabilities for topics, frames (codebook order), stance, and per-paragraph frame scores."""
        check_fitted(self)
        paragraphs = as_paragraphs(posts)
        F = self.feat_.transform(paragraphs)
        X, H = F.post, F.post_hits
        nt = len(self.codebook.topics)
        W, Wf = self._score_matrices()
        Z = np.asarray(X @ W)  # labels and stance in one pass over the post features
        n_labels = len(self.intercept_)
        P = self._label_proba_from(Z[:, :n_labels], H, slice(None))
        S = softmax(Z[:, n_labels:] + self.stance_intercept_, axis=1)
        Zp = np.asarray(F.para @ Wf)  # distinct paragraphs, frame columns only, scored once
        Pp = self._label_proba_from(Zp, F.para_hits, slice(nt, None))[F.para_rows]
        counts = np.bincount(F.owner, minlength=len(paragraphs))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        per_para = np.split(Pp, starts[1:])
        topics, frames = P[:, :nt], P[:, nt:]
        frames = np.zeros_like(frames)  # a post's frame score is its best paragraph's
        has = counts > 0
        if has.any():
            frames[has] = np.maximum.reduceat(Pp, starts[has], axis=0)
        frames[:, self.backoff_[nt:]] = P[:, nt:][:, self.backoff_[nt:]]
        if getattr(self, "stackers_", None) is not None:
            topics = apply_stacker(self.stackers_[:nt], topics, H[:, :nt])
            frames = apply_stacker(self.stackers_[nt:], frames, H[:, nt:])
        if self.config.stance_needs_west:
            S = gate_stance(S, paragraphs, self.codebook)
        return Probas(topics=topics, frames=frames, stance=S, paragraph_frames=per_para)

    def _label_proba_from(self, Z: np.ndarray, hits: np.ndarray, cols: slice) -> np.ndarray:
        """Probabilities from linear scores ``Z`` of the labels ``cols`` (``hits``: all labels' cue hits)."""
        P = expit(Z + self.intercept_[cols])
        backoff = self.backoff_[cols]
        if backoff.any():
            fired = hits[:, cols][:, backoff] > 0
            low = 1.0 - self.config.cue_backoff_hit
            P[:, backoff] = np.where(fired, self.config.cue_backoff_hit, low / 20)
        return P

    def _score_matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """C-contiguous (features x outputs) weights: labels + stance for posts, frames for paragraphs.

        Built once per fitted model; a sparse-times-dense product reads the sparse rows once for
        all of its columns, so one product replaces one per task.
        """
        key = (id(self.coef_), id(self.stance_coef_))
        if getattr(self, "_W_key", None) != key:
            nt = len(self.codebook.topics)
            self._W = np.ascontiguousarray(np.vstack([self.coef_, self.stance_coef_]).T)
            self._Wf = np.ascontiguousarray(self.coef_[nt:].T)
            self._W_key = key
        return self._W, self._Wf

    # ----------------------------------------------------------------- persistence
    def _save_arrays(self, path: Path) -> None:
        from safetensors.numpy import save_file

        save_file({"coef": self.coef_, "intercept": self.intercept_, "backoff": self.backoff_.astype(np.int8),
                   "stance_coef": self.stance_coef_, "stance_intercept": self.stance_intercept_,
                   "idf_word": self.feat_.idf_word, "idf_char": self.feat_.idf_char,
                   **({"stackers": self.stackers_} if getattr(self, "stackers_", None) is not None else {}),
                   **({"label_vectors": self.feat_.prototypes} if self.config.label_similarity else {})},
                  str(path / "weights.safetensors"))
        vocab = {"word": _vocab_list(self.feat_.word), "char": _vocab_list(self.feat_.char)}
        (path / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (path / "config.json").write_text(json.dumps(asdict(self.config), indent=2), encoding="utf-8")

    def _load_arrays(self, path: Path, card: dict) -> None:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        for name in ("weights.safetensors", "vocab.json", "config.json"):
            if not (path / name).exists():
                raise ModelError(f"{path}: missing {name}; the model directory is incomplete, retrain it")
        try:
            w = load_file(str(path / "weights.safetensors"))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"{path / 'weights.safetensors'}: not a valid safetensors file ({exc}); the model is corrupt or tampered") from None
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
        for key in ("stack_frames_per_label", "stack_topics_per_label"):  # saved before the options: one stacker per task
            cfg.setdefault(key, False)
        cfg.setdefault("stack_cues", "stackers" in w)  # saved when the stacker was always fitted
        cfg.setdefault("label_similarity", 0.0)  # saved before the option
        cfg.setdefault("stance_needs_west", False)
        cfg.setdefault("cue_hashtags", False)
        cfg.setdefault("sentence_vectors", 0.0)
        if cfg.pop("frame_unit", "paragraph") != "paragraph":
            raise ModelError(f"{path}: trained with frame_unit='post', an option this version no longer has; retrain it")
        cfg.pop("extra", None)
        self.config = BaselineConfig.from_dict(cfg)
        vocab = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
        check_vocab(path / "vocab.json", vocab, ("word", "char"))
        self._check_weights(path / "weights.safetensors", w, vocab)
        self.matcher_ = CueMatcher(self.codebook, self.config.cue_hashtags)
        self.feat_ = Featuriser(self.config, self.matcher_)
        for name, vec in (("word", self.feat_.word), ("char", self.feat_.char)):
            vec.vocabulary_ = {t: i for i, t in enumerate(vocab[name])}
        self.feat_.idf_word, self.feat_.idf_char = w["idf_word"], w["idf_char"]
        self.feat_.prototypes = w.get("label_vectors")  # as fitted, whatever the codebook's wording is now
        self.coef_, self.intercept_ = w["coef"], w["intercept"]
        self.backoff_ = w["backoff"].astype(bool)
        self.stance_coef_, self.stance_intercept_ = w["stance_coef"], w["stance_intercept"]
        self.stackers_ = label_rows(w.get("stackers"), len(self.codebook.topics), len(self.codebook.frames), path / "weights.safetensors")

    def _check_weights(self, source: Path, w: dict, vocab: dict) -> None:
        """Every array has the shape the vocabulary and codebook give it, and finite values."""
        n_labels = len(self.codebook.topics) + len(self.codebook.frames)
        n_st = len(self.codebook.stances)
        n_feat = (len(vocab["word"]) + len(vocab["char"]) + (n_labels if self.config.use_cues else 0)
                  + (SENTENCE_DIM if self.config.sentence_vectors else 0) + (n_labels if self.config.label_similarity else 0))
        shapes = {"coef": (n_labels, n_feat), "intercept": (n_labels,), "backoff": (n_labels,), "stance_coef": (n_st, n_feat),
                  "stance_intercept": (n_st,), "idf_word": (len(vocab["word"]),), "idf_char": (len(vocab["char"]),)}
        if self.config.label_similarity:
            shapes["label_vectors"] = (n_labels, SENTENCE_DIM)
        if "stackers" in w:
            shapes["stackers"] = w["stackers"].shape  # its shape is label_rows' to judge; its values must be finite
        check_arrays(source, w, shapes)


def _evidence(gold: pd.DataFrame) -> list[dict[str, list[int]]] | None:
    if "evidence" not in gold.columns:
        return None
    return [dict(e) if isinstance(e, dict) else {} for e in gold["evidence"]]


def _paragraph_rows(Xp: sp.csr_matrix, owner: np.ndarray, paragraphs: list[list[str]], y_post: np.ndarray,
                    evidence: list[dict[str, list[int]]], frame: str) -> tuple[sp.csr_matrix, np.ndarray]:
    """Training rows for one frame at paragraph level.

    Positives: the gold evidence paragraphs of posts with the frame. Negatives: every paragraph of
    posts without it. The other paragraphs of posts with the frame are left out: they may or may not
    express it, so they are neither.
    """
    keep, label = [], []
    start = np.concatenate([[0], np.cumsum([len(p) for p in paragraphs])])
    for i in range(len(paragraphs)):
        rows = range(start[i], start[i + 1])
        if y_post[i]:
            ev = [k for k in evidence[i].get(frame, []) if k < len(paragraphs[i])] or list(range(len(paragraphs[i])))
            keep += [start[i] + k for k in ev]
            label += [1] * len(ev)
        else:
            keep += list(rows)
            label += [0] * len(rows)
    return Xp[keep], np.array(label)


def _vocab_list(vec: CountVectorizer) -> list[str]:
    out = [""] * len(vec.vocabulary_)
    for term, i in vec.vocabulary_.items():
        out[i] = term
    return out


def _groups(gold: pd.DataFrame, groups: Any) -> list[str]:
    if groups is not None:
        return [str(g) for g in groups]
    for col in ("group", "dup_group"):
        if col in gold.columns:
            return gold[col].astype(str).tolist()
    return [str(i) for i in range(len(gold))]


def _label_counts(cb: Codebook, Yt: np.ndarray, Yf: np.ndarray, ys: np.ndarray) -> dict[str, dict[str, int]]:
    return {"topics": {t: int(Yt[:, j].sum()) for j, t in enumerate(cb.topics)},
            "frames": {f: int(Yf[:, j].sum()) for j, f in enumerate(cb.frames)},
            "stance_west": {s: int((ys == k).sum()) for k, s in enumerate(cb.stances)}}
