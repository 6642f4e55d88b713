"""The fast counters give exactly scikit-learn's CountVectorizer counts (the baseline relies on it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from classify.io.posts import ingest
from classify.learners.baseline.fastvec import CharNgramCounter, WordNgramCounter

DUMPS = sorted(Path("data/dumps").glob("*.txt"))
EDGE = ["", "   ", "a", "Ab", "İstanbul ÀÉ ŒUVRE", "😀 emoji 👍🏽 ok", "Россия и Китай — БРИКС!",
        "tab\there\nnew line", "x y z", "aaaa aaaa aaaa", "l'Ambassadrice «droit» — 2024", "ё Ё ъ", "\u200b zero\u00a0width"]


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    df = ingest(DUMPS)
    return [p for paras in df["paragraphs"] for p in paras] + EDGE


def _dense(m) -> np.ndarray:
    return np.asarray(m.todense())


@pytest.mark.parametrize("ngrams,max_features", [((2, 5), 60000), ((1, 3), 500), ((3, 3), None)])
def test_char_counts_equal_sklearn(paragraphs, ngrams, max_features):
    train, test = paragraphs[::2], paragraphs  # test includes n-grams never seen in training
    cv = CountVectorizer(analyzer="char_wb", ngram_range=ngrams, max_features=max_features, lowercase=True).fit(train)
    fast = CharNgramCounter(cv.vocabulary_, ngrams)
    np.testing.assert_array_equal(_dense(fast.transform(test)), _dense(cv.transform(test)))


@pytest.mark.parametrize("ngrams,max_features", [((1, 2), 30000), ((1, 1), 200), ((2, 2), None)])
def test_word_counts_equal_sklearn(paragraphs, ngrams, max_features):
    pattern = r"(?u)\b\w\w+\b"
    train, test = paragraphs[1::2], paragraphs
    cv = CountVectorizer(ngram_range=ngrams, max_features=max_features, lowercase=True, token_pattern=pattern).fit(train)
    fast = WordNgramCounter(cv.vocabulary_, ngrams, pattern)
    np.testing.assert_array_equal(_dense(fast.transform(test)), _dense(cv.transform(test)))


def test_empty_batch_and_empty_vocabulary():
    fast = CharNgramCounter({"ab": 0}, (2, 5))
    assert fast.transform([]).shape == (0, 1)
    assert fast.transform(["zz"]).nnz == 0
    words = WordNgramCounter({}, (1, 2), r"(?u)\b\w\w+\b")
    assert words.transform(["hello world"]).shape == (1, 0)


def test_word_trigrams_refused():
    with pytest.raises(ValueError, match="bigrams"):
        WordNgramCounter({"a b c": 0}, (1, 3), r"(?u)\b\w\w+\b")
