"""The baseline's features: TF-IDF of word and character n-grams per distinct paragraph, summed per post,
plus the codebook's cue hits and, optionally, multilingual sentence vectors (``classify.learners.sentvec``)
and their cosines to the codebook's label descriptions (``label_vectors``; always the last columns).

Each distinct paragraph is counted (and later scored) once; a post's counts are the sum of its
paragraphs', so the same rows give post scores and paragraph evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.preprocessing import normalize

from ...codebook import Codebook
from ..cues import CueMatcher
from ..sentvec import sentence_vectors
from .fastvec import CharNgramCounter, WordNgramCounter


class Featuriser:
    """Paragraph count vectors -> post and paragraph TF-IDF (+ cue hits, + sentence vectors, + label cosines) features."""

    def __init__(self, cfg: Any, matcher: CueMatcher) -> None:  # cfg: a BaselineConfig (no import cycle)
        self.cfg = cfg
        self.matcher = matcher
        self.word = CountVectorizer(ngram_range=cfg.word_ngrams, max_features=cfg.max_word_features, lowercase=True,
                                    token_pattern=r"(?u)\b\w\w+\b", dtype=np.float64)
        self.char = CountVectorizer(analyzer="char_wb", ngram_range=cfg.char_ngrams, max_features=cfg.max_char_features,
                                    lowercase=True, dtype=np.float64)
        self.idf_word: np.ndarray | None = None
        self.idf_char: np.ndarray | None = None
        self.prototypes: np.ndarray | None = None

    def fit_transform(self, posts: list[list[str]]) -> Features:
        """Learn the vocabularies (from distinct paragraphs) and idf (from posts); return features."""
        return self.transform(posts, fit=True)

    def transform(self, posts: list[list[str]], fit: bool = False) -> Features:
        """Post features, features of the distinct paragraphs, and how paragraphs map to both.

        Post counts are sums of the counts of its distinct paragraphs, so each distinct paragraph
        is vectorised (and later scored) once, whether it repeats within a post, across posts or
        across dumps.
        """
        uniq: dict[str, int] = {}
        para_rows = []
        owner = []
        for i, paras in enumerate(posts):
            for p in paras:
                para_rows.append(uniq.setdefault(p, len(uniq)))
                owner.append(i)
        texts = list(uniq)
        if fit:
            Uw, Uc = self.word.fit_transform(texts), self.char.fit_transform(texts)
            self._fast = None
        else:
            Uw, Uc = (c.transform(texts) for c in self._counters())
        U_cue = self.matcher.paragraph_hits(texts).astype(np.float64)
        U_vec = sentence_vectors(texts) if (self.cfg.sentence_vectors or self.cfg.label_similarity) else None
        owner = np.asarray(owner, dtype=np.int64)
        para_rows = np.asarray(para_rows, dtype=np.int64)
        S = sp.csr_matrix((np.ones(len(owner)), (owner, para_rows)), shape=(len(posts), len(texts)))
        Pw, Pc = S @ Uw, S @ Uc
        if fit:
            # smoothed idf over posts
            self.idf_word, self.idf_char = (TfidfTransformer().fit(P).idf_ for P in (Pw, Pc))
        # Cues never span a line break, so a post's hits are the sum of its paragraphs' hits.
        H = np.asarray(S @ U_cue)
        # a post's vector is the direction of its paragraphs' sum (unit L2 norm; zero rows stay zero)
        P_vec = None if U_vec is None else normalize(np.asarray(S @ U_vec))
        return Features(post=self._weight(Pw, Pc, H, P_vec), para=self._weight(Uw, Uc, U_cue, U_vec), para_rows=para_rows,
                        owner=owner, post_hits=H, para_hits=U_cue)

    def _prototypes(self) -> np.ndarray:
        """The label vectors (``label_vectors``), computed from the codebook when not loaded with a model."""
        if self.prototypes is None:
            self.prototypes = label_vectors(self.matcher.codebook, self.matcher.label_ids)
        return self.prototypes

    def _counters(self) -> tuple[WordNgramCounter, CharNgramCounter]:
        """Fast counters equal to the fitted vectorisers' ``transform`` (see ``classify.fastvec``)."""
        if getattr(self, "_fast", None) is None:
            self._fast = (WordNgramCounter(self.word.vocabulary_, self.cfg.word_ngrams, self.word.token_pattern),
                          CharNgramCounter(self.char.vocabulary_, self.cfg.char_ngrams))
        return self._fast

    def _weight(self, Cw: sp.spmatrix, Cc: sp.spmatrix, Ccue: np.ndarray, V: np.ndarray | None = None) -> sp.csr_matrix:
        blocks = [_tfidf(Cw, self.idf_word), _tfidf(Cc, self.idf_char)]
        if self.cfg.use_cues:
            blocks.append(sp.csr_matrix(np.log1p(Ccue) * self.cfg.cue_weight))
        if V is not None and self.cfg.sentence_vectors:
            blocks.append(sp.csr_matrix(V * self.cfg.sentence_vectors))
        if V is not None and self.cfg.label_similarity:
            blocks.append(sp.csr_matrix((V @ self._prototypes().T) * self.cfg.label_similarity))
        return sp.hstack(blocks, format="csr")


@dataclass
class Features:
    """What the featuriser gives: post rows, distinct-paragraph rows and the maps between them.

    ``para[para_rows]`` are the rows of every paragraph occurrence in post order; ``owner`` is the
    post of each occurrence. Scoring the distinct rows and indexing the scores is what makes
    repeated paragraphs free.
    """

    post: sp.csr_matrix
    para: sp.csr_matrix
    para_rows: np.ndarray
    owner: np.ndarray
    post_hits: np.ndarray
    para_hits: np.ndarray


def label_vectors(codebook: Codebook, label_ids: tuple[str, ...]) -> np.ndarray:
    """One unit vector per label: the direction of the mean sentence vector of its codebook definition and
    include lines. A post's cosine to it says how near the post is to the label's description, in any
    language the sentence vectors share, which weights learned on words cannot say."""
    rows = [sentence_vectors([lab.definition, *lab.include]).mean(0) for lab in map(codebook.label, label_ids)]
    return normalize(np.vstack(rows))


def _tfidf(counts: sp.spmatrix, idf: np.ndarray) -> sp.csr_matrix:
    """Sublinear TF x idf, rows L2-normalised in place (zero rows stay zero)."""
    X = sp.csr_matrix(counts, dtype=np.float64, copy=True)
    X.data = (1.0 + np.log(X.data)) * idf[X.indices]
    return normalize(X, copy=False)
