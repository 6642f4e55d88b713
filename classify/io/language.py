"""Language identification: py3langid's model, run over a whole batch of texts at once.

Why: py3langid walks its byte automaton in a Python loop, one text at a time (about 85 us for
a 240-character sample on this CPU); in tagging that was the largest single cost of reading a
post. The automaton is an Aho-Corasick machine over byte n-grams of at most ``depth`` bytes
(6 for the shipped model), so the state after any byte depends only on the last ``depth`` bytes.
``BatchIdentifier`` therefore computes every byte's state for all texts of a batch together in
``depth`` vectorised steps (each step one table look-up per byte, never crossing into the
previous text), counts the features per text in one sparse matrix and scores all texts with one
product against the model's naive-Bayes table: about 20 us per sample, 4x faster.

The scores are py3langid's (log1p of feature counts times the class table, plus the priors; the
same alias handling), summed in float32 in another order, so a tie within float32 rounding is
the only way the two can disagree; ``tests/test_language.py`` checks they agree on the sample
dumps' paragraphs and on random text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

LANGS = ("en", "ru", "fr")
OTHER_LANG = "other"
UNKNOWN_LANG = "und"
SAMPLE_CHARS = 240

NOT_LETTER_RE = re.compile(r"[\W\d_]")
CYRILLIC_RE = re.compile(r"[\u0400-\u04ff]")
LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")


class BatchIdentifier:
    """``py3langid.LanguageIdentifier.classify`` for many texts at once (language codes only)."""

    def __init__(self, ident) -> None:
        from py3langid.langid import RAW_FLOOR

        self.floor = np.float32(RAW_FLOOR)
        self.classes = list(ident.nb_classes)
        self.next_move = np.frombuffer(ident.tk_nextmove, dtype=np.uint32).astype(np.int32)
        self.row_base = np.asarray(ident._rowbase, dtype=np.int32)
        self.output = np.asarray(ident.tk_output, dtype=np.int32)
        self.table = np.asarray(ident.nb_ptc, dtype=np.float32)  # float16 on disk; scipy needs float32
        self.prior = np.asarray(ident.nb_pc, dtype=np.float32)
        self.alias_pairs = list(ident._alias_pairs)
        self.encode = ident._encode
        self.depth = self._depth()

    def _depth(self) -> int:
        """Longest n-gram of the automaton: the largest breadth-first distance of a state from the start."""
        seen = np.zeros(len(self.row_base), dtype=bool)
        seen[0] = True
        frontier, depth, step = np.array([0]), 0, np.arange(256, dtype=np.int32)
        while True:
            reached = np.zeros(len(self.row_base), dtype=bool)
            reached[self.next_move[(self.row_base[frontier][:, None] + step).ravel()]] = True
            frontier = np.flatnonzero(reached & ~seen)
            if not len(frontier):
                return depth
            seen[frontier] = True
            depth += 1

    def classify(self, texts: Sequence[str]) -> list[str]:
        """The language code py3langid gives each text."""
        if not len(texts):
            return []
        data = [self.encode(t) for t in texts]
        lens = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
        text_start = np.repeat(np.cumsum(lens) - lens, lens)
        byte = np.frombuffer(b"".join(data), dtype=np.uint8).astype(np.int32)
        pos = np.arange(len(byte))
        state = np.zeros(len(byte), dtype=np.int32)
        for back in range(self.depth - 1, -1, -1):  # step t reads the byte ``back`` places before each position
            at = np.flatnonzero(pos[back:] - back >= text_start[back:]) + back
            state[at] = self.next_move[self.row_base[state[at]] + byte[at - back]]
        feature = self.output[state]
        owner = np.repeat(np.arange(len(data)), lens)
        keep = feature >= 0
        X = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (owner[keep], feature[keep])),
                          shape=(len(data), len(self.table)))
        X.sum_duplicates()
        X.data = np.log1p(X.data)
        scores = np.asarray(X @ self.table) + self.prior
        scores[np.diff(X.indptr) == 0] = self.floor  # no feature at all: py3langid's floor for every class
        for first, dupe in self.alias_pairs:
            scores[:, first] = np.maximum(scores[:, first], scores[:, dupe])
            scores[:, dupe] = self.floor
        return [self.classes[i] for i in scores.argmax(axis=1)]


class _OneByOne:
    """py3langid's own ``classify``, text by text: the fallback for a py3langid whose internals differ."""

    def __init__(self, ident) -> None:
        self.ident = ident

    def classify(self, texts: Sequence[str]) -> list[str]:
        return [self.ident.classify(t)[0] for t in texts]


@lru_cache(maxsize=1)
def identifier() -> BatchIdentifier | _OneByOne:
    """The batch identifier over py3langid's model (built once per process)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
    try:
        return BatchIdentifier(ident)
    except (AttributeError, TypeError, ValueError):  # another py3langid layout: same answers, slower
        return _OneByOne(ident)


def _letters(text: str) -> int:
    return len(NOT_LETTER_RE.sub("", text))


def detect_languages(texts: Sequence[str]) -> list[str]:
    """``en``, ``ru``, ``fr``, ``other``, or ``und`` for text with fewer than 3 letters, per text."""
    out = [UNKNOWN_LANG] * len(texts)
    todo = [i for i, t in enumerate(texts) if _letters(t) >= 3]
    for i, code in zip(todo, identifier().classify([texts[i] for i in todo])):
        out[i] = code if code in LANGS else OTHER_LANG
    return out


def detect_language(text: str) -> str:
    """``detect_languages`` of one text."""
    return detect_languages([text])[0]


def sample(text: str, max_chars: int = SAMPLE_CHARS) -> str:
    """Start, middle and end of a long text: enough to identify its language cheaply."""
    if len(text) <= max_chars:
        return text
    third = max_chars // 3
    mid = len(text) // 2
    return text[:third] + "\n" + text[mid - third // 2 : mid + third // 2] + "\n" + text[-third:]


def detect_post_languages(posts: Sequence[Sequence[str]], max_chars: int = SAMPLE_CHARS) -> list[str]:
    """The language of each post (its paragraphs); a bilingual post gets the language of most of its letters.

    Posts in one script get one identification over a sample of their text (start, middle, end).
    Posts that mix Cyrillic and Latin script substantially (a Russian post with its English
    version) are decided by a vote of their paragraphs weighted by letters. All samples of a
    batch go through the identifier together.
    """
    texts: list[str] = []
    plan: list[tuple[int, int] | list[tuple[int, int]]] = []  # per post: (text index, weight) or the vote's list
    for paragraphs in posts:
        whole = sample("\n".join(paragraphs), max_chars)
        cyr, lat = len(CYRILLIC_RE.findall(whole)), len(LATIN_RE.findall(whole))
        if min(cyr, lat) >= 0.2 * max(cyr + lat, 1):
            plan.append([(len(texts) + k, _letters(p)) for k, p in enumerate(paragraphs)])
            texts += [sample(p, max_chars) for p in paragraphs]
        else:
            plan.append((len(texts), 1))
            texts.append(whole)
    codes = detect_languages(texts)
    out = []
    for step in plan:
        if isinstance(step, tuple):
            out.append(codes[step[0]])
            continue
        weights: Counter[str] = Counter()
        for k, w in step:
            weights[codes[k]] += w
        weights.pop(UNKNOWN_LANG, None)
        out.append(weights.most_common(1)[0][0] if weights else UNKNOWN_LANG)
    return out


def detect_post_language(paragraphs: Sequence[str], max_chars: int = SAMPLE_CHARS) -> str:
    """``detect_post_languages`` of one post."""
    return detect_post_languages([paragraphs], max_chars)[0]

