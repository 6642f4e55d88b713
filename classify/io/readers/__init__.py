"""Format readers. Each turns one file into ``RawPost`` items and ``Skipped`` records.

Readers only parse; cleaning, ids, language and duplicate groups are added by ``classify.ingest``
so every format gets the same treatment.
"""

from .base import RawPost, Skipped

__all__ = ["RawPost", "Skipped"]
