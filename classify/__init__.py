"""classify: stance and narrative-framing tags for Telegram posts of state diplomacy."""

from __future__ import annotations

from ._version import __version__

__all__ = ["__version__", "ingest", "load_model"]


def ingest(*args, **kwargs):
    """Read dumps into a DataFrame of posts; see ``classify.io.posts.ingest``."""
    from .io.posts import ingest as _ingest

    return _ingest(*args, **kwargs)


def load_model(path, runtime: str = "torch", threads: int | None = None):
    """Load a saved model directory; see ``classify.learners.load_model``."""
    from .learners import load_model as _load

    return _load(path, runtime=runtime, threads=threads)
