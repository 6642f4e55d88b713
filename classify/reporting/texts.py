"""Post texts for the drift checks, read back from the tagged inputs for a random sample of posts.

The tag output keeps only each frame's evidence paragraph, not whole posts, so the checks that
need text (distance to the gold, the cue rule) read a seeded random sample of tagged posts from the
input files, found by ``source`` (file name) and ``locator``; each is cleaned as the tagger cleaned
it and kept only if its ``post_id`` matches, so a file changed since tagging cannot slip in. A
sample bounds the cost at any corpus size; the checks report their sampling interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io.formats import read_file
from ..io.options import ReadOptions
from ..io.posts import post_identity
from ..io.readers.base import Skipped
from .corpus import Corpus

TEXT_SAMPLE = 5000



@dataclass
class TextSample:
    """Paragraphs of sampled tagged posts; ``rows`` index ``corpus.rows``."""

    rows: np.ndarray
    paragraphs: list[list[str]]
    n_wanted: int = 0
    n_changed: int = 0                 # found at the locator with another post_id (file changed)
    missing_sources: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.rows)


def sample_texts(corpus: Corpus, inputs: list[Path], n_max: int = TEXT_SAMPLE, seed: int = 0,
                 opts: ReadOptions | None = None) -> TextSample:
    """A random sample of up to ``n_max`` tagged posts with their paragraphs, from the ``inputs`` files.

    Input files are matched to the tag rows by file name (the tagger records ``source`` as the name).
    """
    opts = opts or ReadOptions()
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(corpus.n, size=min(n_max, corpus.n), replace=False)) if corpus.n else np.array([], int)
    rows = corpus.rows
    wanted: dict[str, dict[str, list[int]]] = {}
    for i in pick:
        wanted.setdefault(rows["source"].iat[i], {}).setdefault(rows["locator"].iat[i], []).append(int(i))
    by_name = {}
    for p in inputs:
        p = Path(p)
        if p.is_file():
            by_name.setdefault(p.name, p)
    found: dict[int, list[str]] = {}
    changed = 0
    for source, locs in wanted.items():
        path = by_name.get(source)
        if path is None:
            continue
        left = sum(len(v) for v in locs.values())
        for raw in read_file(path, opts):
            if isinstance(raw, Skipped) or raw.locator not in locs:
                continue
            ident = post_identity(raw, opts)
            for i in locs.pop(raw.locator):
                left -= 1
                if isinstance(ident, Skipped) or ident[1] != rows["post_id"].iat[i]:
                    changed += 1
                else:
                    found[i] = ident[0]
            if not left:
                break
    keep = np.array(sorted(found), dtype=int)
    missing = sorted(s for s in wanted if s not in by_name)
    return TextSample(keep, [found[i] for i in keep], len(pick), changed, missing)
