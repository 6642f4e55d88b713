"""The codebook's cues as compiled patterns, and the cue rule built on them.

Cues are used three ways: as the cue rule (``cue_rule_predict``, the reference system every learned
model must beat; ``classify.cuerule`` wraps it in the model interface), as features of the
baseline, and as extra inputs of the transformer's heads.

Matching is case-insensitive Python ``re`` (as the codebook says), with one alternation regex per
label; ё is matched as е, since Russian texts write either. Python's ``re`` scans an alternation, or a pattern that starts with ``\\b``, position by
position, which on long dumps costs seconds per megabyte. So each label also gets a prefilter: the
literal strings one of which every match must contain (read from the parsed cue, e.g. ``brics``
for ``(?<!#)\\bBRICS\\b``), checked with ``str.__contains__`` on the lower-cased text. The regex only
runs when a literal is present, which makes tagging hundreds of thousands of posts cheap without
changing any result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..codebook import Codebook

try:  # the parser behind ``re``; used only to read literals out of cues, never to match
    from re import _constants as _sre
    from re import _parser as _sre_parse  # Python >= 3.11
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

YO = str.maketrans("ёЁ", "еЕ")
"""Russian writes ё or е for the same letter; both cues and texts are matched with е (same length,
so match positions stay those of the original text)."""
MIN_LITERAL = 2
"""Literals shorter than this make a useless prefilter; such cues always run their regex."""
CACHE_SIZE = 20_000
"""Paragraphs whose hits are kept (emptied when full): enough for every paragraph of cross-validation on
the gold set, small enough that tagging a long dump (all new paragraphs) keeps flat memory."""
_CACHES: dict[tuple[str, bool], dict[str, np.ndarray]] = {}  # per codebook file and hashtag mode: text -> hit vector
HASHTAG_MARK = re.compile(r"#(?=\w)")  # the '#' of a hashtag: "#BRICS" is read as "BRICS" with ``hashtags=True``


# ----------------------------------------------------------------------------- prefilter literals
def required_literals(pattern: str) -> frozenset[str] | None:
    """Lower-cased strings one of which every match of ``pattern`` contains; ``None`` if unknown.

    Sound but not complete: when in doubt (a cue that starts with an optional group, a character
    class, ...) it returns ``None`` and the caller always runs the regex.

    Examples
    --------
    >>> sorted(required_literals(r"(?<!#)\\bBRICS\\b|New Development Bank"))
    ['brics', 'new development bank']
    >>> required_literals(r"[a-z]+") is None
    True
    """
    try:
        parsed = _sre_parse.parse(pattern, 0)
    except Exception:  # an invalid cue is the codebook loader's business, not ours
        return None
    found = _literals(list(parsed))
    return None if found is None else frozenset(s.lower() for s in found)


def _literals(seq: list[tuple[Any, Any]]) -> set[str] | None:
    """Best literal set of a parsed sequence: every item of a sequence is required, so any one
    required literal run (or required group) will do; keep the most selective."""
    best: set[str] | None = None

    def consider(cand: set[str] | None) -> None:
        nonlocal best
        if cand and min(map(len, cand)) >= MIN_LITERAL and (best is None or min(map(len, cand)) > min(map(len, best))):
            best = cand

    run: list[str] = []
    for op, av in seq:
        if op is _sre.LITERAL:
            run.append(chr(av))
            continue
        if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):  # zero-width: the literal run goes on
            continue
        consider({"".join(run)} if run else None)
        run = []
        if op is _sre.SUBPATTERN:
            consider(_literals(list(av[-1])))
        elif op is _sre.BRANCH:
            parts = [_literals(list(branch)) for branch in av[1]]
            consider(None if any(p is None for p in parts) else set().union(*parts))
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)) and av[0] >= 1:
            consider(_literals(list(av[2])))
    consider({"".join(run)} if run else None)
    return best


# ----------------------------------------------------------------------------- matching
class CueMatcher:
    """Count cue matches per topic and frame (codebook order: topics, then frames).

    A label's count is the number of non-overlapping matches of its cue alternation, so a phrase
    that two cues of one label both describe counts once.

    Parameters
    ----------
    codebook : Codebook
        Where the cues and the label order come from.
    hashtags : bool, default=False
        Read a hashtag as its word (drop the ``#``), so a cue written to skip bare hashtags such as
        ``(?<!#)\bBRICS\b`` matches ``#BRICS Summit``. The cue rule and the transformer's cue inputs
        keep False (the codebook's cues as written); the baseline's cue features (``cue_hashtags``) and
        the transformer's topics (``topics_cue_hashtags``) turn it on.

    Attributes
    ----------
    label_ids : tuple of str
        Column order of every array returned: ``(*codebook.topics, *codebook.frames)``.
    patterns : dict
        Label id -> compiled alternation of its cues (``None`` for a label without cues).

    Examples
    --------
    >>> m = CueMatcher(Codebook.load())
    >>> m.hits("Rosatom will build a nuclear power plant.")["energy"] > 0
    True
    """

    def __init__(self, codebook: Codebook, hashtags: bool = False) -> None:
        self.codebook = codebook
        self.hashtags = hashtags
        self.label_ids: tuple[str, ...] = (*codebook.topics, *codebook.frames)
        self.patterns: dict[str, re.Pattern | None] = {}
        self._cues: list[tuple[str, ...]] = []
        # Per label: (literal, cue index) pairs to look for, and the cues without literals (always run).
        self._literals: list[tuple[tuple[str, int], ...]] = []
        self._always: list[frozenset[int]] = []
        for lid in self.label_ids:
            cues = tuple(c.translate(YO) for c in codebook.label(lid).cues)
            self.patterns[lid] = _alternation(cues)
            self._cues.append(cues)
            lits = [required_literals(c) for c in cues]
            self._literals.append(tuple((x, k) for k, ls in enumerate(lits) if ls is not None for x in sorted(ls)))
            self._always.append(frozenset(k for k, ls in enumerate(lits) if ls is None))
        self._subsets: dict[tuple[int, tuple[int, ...]], re.Pattern | None] = {}
        self._automaton = _literal_automaton(self._literals)
        self._cache: dict[str, np.ndarray] = _CACHES.setdefault((codebook.sha256, hashtags), {})

    def hits(self, text: str) -> dict[str, int]:
        """Number of cue matches per label id in ``text`` (topics and frames)."""
        return dict(zip(self.label_ids, (int(x) for x in self.vector(text))))

    def vector(self, text: str) -> np.ndarray:
        """Hits as an int array in codebook order (topics then frames); repeated texts are cached.

        The cache matters in cross-validation, where the same paragraphs are matched once per fold.
        The returned array is shared with the cache: do not modify it.
        """
        cached = self._cache.get(text)
        if cached is None:
            text_e = self._prepare(text)
            low = text_e.lower()
            cached = np.zeros(len(self.label_ids), dtype=np.int64)
            active: list[set[int]] = [set(a) for a in self._always]
            for _, pairs in self._automaton.iter(low):  # every literal present, in one pass over the text
                for j, k in pairs:
                    active[j].add(k)
            for j, act in enumerate(active):
                if act:
                    cached[j] = sum(1 for _ in self._pattern(j, tuple(sorted(act))).finditer(text_e))
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[text] = cached
        return cached

    def _prepare(self, text: str) -> str:
        """The text the cues are matched on: ё as е, and hashtags as words with ``hashtags``."""
        text = text.translate(YO)
        return HASHTAG_MARK.sub("", text) if self.hashtags else text

    def _pattern(self, j: int, active: tuple[int, ...]) -> re.Pattern:
        """The alternation of label ``j``'s cues that can match (their literals are present).

        A cue whose required literals are all absent cannot match anywhere, so leaving it out
        changes no match of the alternation; it only saves the scan.
        """
        key = (j, active)
        pat = self._subsets.get(key)
        if pat is None:
            pat = self._subsets[key] = _alternation([self._cues[j][k] for k in active])
        return pat

    def paragraph_hits(self, paragraphs: Sequence[str]) -> np.ndarray:
        """Hit counts of shape ``(n_paragraphs, n_topics + n_frames)``, columns in ``label_ids`` order."""
        out = np.zeros((len(paragraphs), len(self.label_ids)), dtype=np.int64)
        for i, p in enumerate(paragraphs):
            out[i] = self.vector(p)
        return out

    def matched(self, text: str, label_id: str) -> list[str]:
        """The matched strings of one label (to show why the cue rule fired)."""
        pat = self.patterns[label_id]
        if pat is None:
            return []
        prepared = self._prepare(text)
        shown = prepared if self.hashtags else text  # ё as е keeps positions: show the post's own spelling
        return [shown[m.start():m.end()] for m in pat.finditer(prepared)]


def _literal_automaton(literals: Sequence[tuple[tuple[str, int], ...]]):
    """Aho-Corasick automaton (pyahocorasick) over every required literal: literal -> (label, cue) pairs.

    Finding which literals a paragraph contains is one linear scan instead of ~400 substring
    searches, the cost that dominated cue matching on long dumps.
    """
    import ahocorasick

    pairs: dict[str, list[tuple[int, int]]] = {}
    for j, lits in enumerate(literals):
        for x, k in lits:
            pairs.setdefault(x, []).append((j, k))
    automaton = ahocorasick.Automaton()
    for x, v in pairs.items():
        automaton.add_word(x, tuple(v))
    if pairs:
        automaton.make_automaton()
    return automaton


def _alternation(cues: Sequence[str]) -> re.Pattern | None:
    """One case-insensitive regex matching any of ``cues`` (``None`` for no cues)."""
    return re.compile("|".join(f"(?:{c})" for c in cues), re.IGNORECASE) if cues else None


# ----------------------------------------------------------------------------- the cue rule
def stance_from_frames(frames_fired: Iterable[str], codebook: Codebook) -> str:
    """The cue rule's stance: the first stance whose ``cue_frames`` fired, else ``none``.

    In codebook v1 only ``against`` has cue frames (western_hegemony, western_security_threat,
    sanctions_illegitimate); nothing in the cues signals ``favor``, so the rule never predicts it.
    """
    fired = set(frames_fired)
    for sid in codebook.stances:
        if fired & set(codebook.label(sid).cue_frames):
            return sid
    return codebook.no_stance


def cue_rule_predict(posts: Any, codebook: Codebook | None = None, *, matcher: CueMatcher | None = None,
                     evidence_text: bool = True) -> pd.DataFrame:
    """Predict with the cue rule: a topic or frame whenever one of its cues matches in the post.

    This is the reference system: no training, fully explainable, and written from the codebook
    alone, so a learned model that does not beat it has learned nothing the codebook did not say.

    Parameters
    ----------
    posts : DataFrame with ``paragraphs`` (or ``text``), or list of str or of paragraph lists
        A bare string is rejected (wrap it in a list), as in scikit-learn.
    codebook : Codebook, default=None
        ``Codebook.load()`` when omitted.
    matcher : CueMatcher, default=None
        Reuse a matcher (and its cache) across calls.
    evidence_text : bool, default=True
        Include each evidence paragraph's text, not only its number.

    Returns
    -------
    DataFrame
        One row per post, in input order, with the columns of ``Model.predict``: ``topics`` and
        ``frames`` (lists of ids in codebook order), ``stance_west``, ``scores`` (1.0 or 0.0 per
        topic and frame), ``stance_scores``, ``evidence`` (frame -> list of
        ``{"paragraph": i, "text": ...}``: every paragraph in which a cue of the frame fired), plus
        ``cue_hits`` (label -> number of matches, labels with hits only).

    Examples
    --------
    >>> cue_rule_predict(["The BRICS summit backed a multipolar world."])[["topics", "frames"]]  # doctest: +SKIP
    """
    from .base import as_paragraphs

    codebook = codebook or Codebook.load()
    matcher = matcher or CueMatcher(codebook)
    nt = len(codebook.topics)
    rows = []
    for paras in as_paragraphs(posts):
        per_par = matcher.paragraph_hits(paras)
        total = per_par.sum(axis=0)
        topics = [t for j, t in enumerate(codebook.topics) if total[j] > 0]
        frames = [f for j, f in enumerate(codebook.frames) if total[nt + j] > 0]
        stance = stance_from_frames(frames, codebook)
        evidence = {}
        for f in frames:
            col = per_par[:, nt + codebook.frames.index(f)]
            evidence[f] = [{"paragraph": int(k), "text": paras[k]} if evidence_text else {"paragraph": int(k)}
                           for k in np.flatnonzero(col)]
        rows.append({
            "topics": topics,
            "frames": frames,
            "stance_west": stance,
            "scores": {lid: float(total[j] > 0) for j, lid in enumerate(matcher.label_ids)},
            "stance_scores": {s: float(s == stance) for s in codebook.stances},
            "evidence": evidence,
            "cue_hits": {lid: int(total[j]) for j, lid in enumerate(matcher.label_ids) if total[j]},
        })
    return pd.DataFrame(rows, columns=["topics", "frames", "stance_west", "scores", "stance_scores", "evidence", "cue_hits"])
