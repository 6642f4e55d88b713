"""Fast n-gram counting against a fixed vocabulary, equal to scikit-learn's ``CountVectorizer.transform``.

Why: tagging with the baseline spent most of its time in scikit-learn's pure-Python n-gram loops
(``_char_wb_ngrams`` and the per-n-gram dictionary look-up), about 2,300 paragraphs/s on this
CPU. Once the vocabulary is fixed (after ``fit``), counting needs no n-gram strings at all:

* **character n-grams** (``char_wb``): the lower-cased words of a batch of texts, each padded with
  one space as scikit-learn does, are laid end to end in one array of code points, with a 0
  between words. A rolling polynomial hash gives every window of length ``n`` a 64-bit key in a
  few vectorised numpy operations; windows that contain a 0 cross a word boundary and are
  dropped. Keys are looked up in the sorted keys of the vocabulary (``np.searchsorted``).
* **word n-grams**: tokens come from the same regular expression as scikit-learn's
  ``token_pattern`` (C speed); a token's key is Python's ``hash`` (stable within one process,
  which is all that is needed: the vocabulary keys are computed in the same process), a bigram's
  key combines its two tokens' keys.

Counts are then one sparse matrix built from (row, column) pairs. With 64-bit keys the chance that
an n-gram outside the vocabulary takes the key of one inside is about (n-grams seen x vocabulary
size) / 2**64, below 1e-8 for a million-post dump; ``tests/test_fastvec.py`` checks equality with
scikit-learn on the sample dumps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

_P = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime: odd, spreads code points over the key
_Q = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio constant, combines two token keys


class _Table:
    """Vocabulary keys -> column numbers: an open hash table of ``2**bits`` slots plus a sorted overflow.

    A key's slot is the top ``bits`` bits of ``key * _Q``; the first key of a slot lives in the table,
    later ones in the overflow, searched only for the keys the table did not find. One random memory
    access per n-gram instead of the ~16 of a binary search over 60,000 keys.
    """

    def __init__(self, keys: np.ndarray, cols: np.ndarray, bits: int = 20) -> None:
        keys = np.asarray(keys, dtype=np.uint64)
        if len(np.unique(keys)) != len(keys):
            raise ValueError("two vocabulary entries share a hash key")
        self.shift = np.uint64(64 - bits)
        slots = self._slot(keys)
        _, first = np.unique(slots, return_index=True)
        in_table = np.zeros(len(keys), dtype=bool)
        in_table[first] = True
        self.keys = np.zeros(1 << bits, dtype=np.uint64)
        self.cols = np.full(1 << bits, -1, dtype=np.int64)
        self.keys[slots[in_table]] = keys[in_table]
        self.cols[slots[in_table]] = cols[in_table]
        order = np.argsort(keys[~in_table])
        self.over_keys = keys[~in_table][order]
        self.over_cols = cols[~in_table][order]

    def _slot(self, keys: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return ((keys * _Q) >> self.shift).astype(np.int64)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions in ``keys`` found in the vocabulary, and their columns."""
        slots = self._slot(keys)
        hit = (self.keys[slots] == keys) & (self.cols[slots] >= 0)
        found = np.flatnonzero(hit)
        cols = self.cols[slots[found]]
        if len(self.over_keys):
            miss = np.flatnonzero(~hit)
            pos = np.searchsorted(self.over_keys, keys[miss])
            pos[pos == len(self.over_keys)] = 0
            ok = self.over_keys[pos] == keys[miss]
            if ok.any():
                found = np.concatenate([found, miss[ok]])
                cols = np.concatenate([cols, self.over_cols[pos[ok]]])
        return found, cols


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


def _char_key(s: str) -> np.uint64:
    """The rolling-hash key of one string, as ``CharNgramCounter`` computes it for a window."""
    h = np.uint64(0)
    with np.errstate(over="ignore"):
        for c in _code_points(s):
            h = h * _P + c
    return h


class CharNgramCounter:
    """``CountVectorizer(analyzer="char_wb", ngram_range=(lo, hi), lowercase=True)`` counts, fast."""

    def __init__(self, vocabulary: dict[str, int], ngram_range: tuple[int, int]) -> None:
        self.lo, self.hi = ngram_range
        self.n_features = len(vocabulary)
        self.tables: dict[int, _Table] = {}
        for n in range(self.lo, self.hi + 1):
            items = [(t, i) for t, i in vocabulary.items() if len(t) == n and "\x00" not in t]
            keys = np.array([_char_key(t) for t, _ in items], dtype=np.uint64)
            self.tables[n] = _Table(keys, np.array([i for _, i in items], dtype=np.int64))
        # Entries shorter than lo come from words shorter than lo: sklearn emits the whole padded word once.
        self.short = {t: i for t, i in vocabulary.items() if len(t) < self.lo}

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        parts, owner_len = [], []
        for t in texts:
            words = t.lower().replace("\x00", " ").split()
            s = " " + " \x00 ".join(words) + " \x00" if words else "\x00"
            parts.append(s)
            owner_len.append(len(s))
        big = "".join(parts)
        c = _code_points(big)
        owner = np.repeat(np.arange(len(texts), dtype=np.int64), owner_len)
        rows, cols = [], []
        with np.errstate(over="ignore"):
            h = np.zeros(len(c), dtype=np.uint64)
            ok = np.ones(len(c), dtype=bool)
            for n in range(1, self.hi + 1):
                m = len(c) - n + 1
                if m <= 0:
                    break
                h = h[:m] * _P + c[n - 1 :]
                ok = ok[:m] & (c[n - 1 :] != 0)
                if n >= self.lo:
                    where = np.flatnonzero(ok)
                    found, col = self.tables[n].lookup(h[where])
                    rows.append(owner[where[found]])
                    cols.append(col)
        if self.short:
            self._add_short(texts, rows, cols)
        return _counts(rows, cols, len(texts), self.n_features)

    def _add_short(self, texts: Sequence[str], rows: list, cols: list) -> None:
        """Padded words shorter than ``lo`` (only possible when ``lo`` > 3)."""
        r, k = [], []
        for i, t in enumerate(texts):
            for w in t.lower().split():
                col = self.short.get(f" {w} ")
                if col is not None:
                    r.append(i)
                    k.append(col)
        rows.append(np.array(r, dtype=np.int64))
        cols.append(np.array(k, dtype=np.int64))


class WordNgramCounter:
    """``CountVectorizer(ngram_range=(1, n), token_pattern=..., lowercase=True)`` counts, fast (n <= 2)."""

    def __init__(self, vocabulary: dict[str, int], ngram_range: tuple[int, int], token_pattern: str) -> None:
        if ngram_range[1] > 2:
            raise ValueError("WordNgramCounter handles word n-grams up to bigrams")
        self.lo, self.hi = ngram_range
        self.n_features = len(vocabulary)
        self.pattern = re.compile(token_pattern)
        uni, bi = [], []
        for t, i in vocabulary.items():
            toks = t.split(" ")
            (uni if len(toks) == 1 else bi).append((toks, i))
        self.uni = _Table(np.array([_tok_key(t[0]) for t, _ in uni], dtype=np.uint64), np.array([i for _, i in uni], dtype=np.int64))
        self.bi = _Table(np.array([_pair_key(_tok_key(a), _tok_key(b)) for (a, b), _ in bi], dtype=np.uint64),
                         np.array([i for _, i in bi], dtype=np.int64))

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        findall = self.pattern.findall
        toks = [findall(t.lower()) for t in texts]
        lens = np.fromiter((len(x) for x in toks), dtype=np.int64, count=len(toks))
        flat = [w for x in toks for w in x]
        keys = np.fromiter(map(hash, flat), dtype=np.int64, count=len(flat)).view(np.uint64)
        owner = np.repeat(np.arange(len(texts), dtype=np.int64), lens)
        rows, cols = [], []
        if self.lo <= 1:
            found, col = self.uni.lookup(keys)
            rows.append(owner[found])
            cols.append(col)
        if self.hi >= 2 and len(keys) > 1:
            same = owner[:-1] == owner[1:]  # a bigram never spans two texts
            pk = _pair_key(keys[:-1], keys[1:])
            where = np.flatnonzero(same)
            found, col = self.bi.lookup(pk[where])
            rows.append(owner[where[found]])
            cols.append(col)
        return _counts(rows, cols, len(texts), self.n_features)


def _tok_key(token: str) -> np.uint64:
    return np.array([hash(token)], dtype=np.int64).view(np.uint64)[0]


def _pair_key(a, b):
    with np.errstate(over="ignore"):
        return (a * _Q) ^ (b + _P)


def _counts(rows: list[np.ndarray], cols: list[np.ndarray], n_rows: int, n_cols: int) -> sp.csr_matrix:
    """Count matrix of (row, column) pairs, duplicates summed, indices sorted.

    One sort of ``row * n_cols + col`` codes (32-bit when they fit) instead of scipy's COO to CSR
    conversion plus ``sum_duplicates``, which sorts every row's indices again: half the time.
    """
    dt = np.int32 if n_rows * n_cols < 2**31 else np.int64
    code = np.concatenate([r.astype(dt) * dt(n_cols) + k.astype(dt) for r, k in zip(rows, cols)]) if rows else np.zeros(0, dtype=dt)
    code.sort()
    first = np.ones(len(code), dtype=bool)
    np.not_equal(code[1:], code[:-1], out=first[1:])
    start = np.flatnonzero(first)
    counts = np.diff(start, append=len(code)).astype(np.float64)
    code = code[start]
    indptr = np.searchsorted(code, np.arange(n_rows + 1, dtype=np.int64) * n_cols)
    col = code - np.repeat(np.arange(n_rows, dtype=dt) * dt(n_cols), np.diff(indptr))
    return sp.csr_matrix((counts, col, indptr), shape=(n_rows, n_cols))
