"""Options shared by the readers and the ingest: column names for tabular input, encoding, limits."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

MAX_CHARS = 100_000



@dataclass
class ReadOptions:
    """Options shared by the readers: column names for tabular input and limits."""

    text_col: str | None = None
    id_col: str | None = None
    date_col: str | None = None
    channel_col: str | None = None
    encoding: str | None = None
    max_chars: int = MAX_CHARS

    def __post_init__(self) -> None:
        if not isinstance(self.max_chars, int) or self.max_chars < 1:
            raise ConfigError(f"The 'max_chars' parameter must be an int in the range [1, inf). Got {self.max_chars!r} instead.")

