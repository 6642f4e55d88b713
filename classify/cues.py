"""The codebook's cues as compiled patterns: hit counts per label, per post or per paragraph.

Used three ways: as the cue rule (the reference system in ``classify.cuerule``), as features of the
baseline, and as extra inputs of the transformer's heads. One alternation regex per label keeps
matching fast enough for tagging hundreds of thousands of posts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .codebook import Codebook

_CACHES: dict[str, dict[str, np.ndarray]] = {}  # per codebook file: text -> hit vector


def lower_pattern(pattern: str) -> str:
    """Lower-case a regex's literal characters, keeping escapes (``\\W``, ``\\B``) intact."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
        else:
            out.append(pattern[i].lower())
            i += 1
    return "".join(out)


class CueMatcher:
    """Count cue matches per topic and frame label (codebook order).

    Examples
    --------
    >>> m = CueMatcher(Codebook.load())
    >>> m.hits("Rosatom will build a nuclear power plant.")["energy"] > 0
    True
    """

    def __init__(self, codebook: Codebook) -> None:
        self.codebook = codebook
        self.label_ids: tuple[str, ...] = (*codebook.topics, *codebook.frames)
        # For counting: one pattern per cue, lower-cased, matched against lower-cased text.
        # Python's re only uses its fast literal-prefix search without IGNORECASE and without a
        # top-level alternation, so this is several times faster than one IGNORECASE alternation
        # per label. A text matching two cues of one label counts twice (more evidence).
        self._cues: list[tuple[int, re.Pattern]] = [
            (j, re.compile(lower_pattern(c))) for j, lid in enumerate(self.label_ids) for c in codebook.label(lid).cues]
        self.patterns: dict[str, re.Pattern | None] = {}
        self._cache: dict[str, np.ndarray] = _CACHES.setdefault(codebook.sha256, {})
        for lid in self.label_ids:
            cues = codebook.label(lid).cues
            self.patterns[lid] = re.compile("|".join(f"(?:{c})" for c in cues), re.IGNORECASE) if cues else None

    def hits(self, text: str) -> dict[str, int]:
        """Number of cue matches per label id in ``text``."""
        return dict(zip(self.label_ids, (int(x) for x in self.vector(text))))

    def vector(self, text: str) -> np.ndarray:
        """Hits as an array in codebook order (topics then frames); repeated texts are cached."""
        cached = self._cache.get(text)
        if cached is None:
            low = text.lower()
            cached = np.zeros(len(self.label_ids), dtype=np.int64)
            for j, pat in self._cues:
                cached[j] += len(pat.findall(low))
            if len(self._cache) > 200_000:
                self._cache.clear()
            self._cache[text] = cached
        return cached

    def paragraph_hits(self, paragraphs: Sequence[str]) -> np.ndarray:
        """``(n_paragraphs, n_topics + n_frames)`` hit counts."""
        return np.array([self.vector(p) for p in paragraphs], dtype=np.int64).reshape(len(paragraphs), len(self.label_ids))

    def matched(self, text: str, label_id: str) -> list[str]:
        """The matched strings of one label (to show why the cue rule fired)."""
        pat = self.patterns[label_id]
        return [m.group(0) for m in pat.finditer(text)] if pat is not None else []
