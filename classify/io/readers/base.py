"""The records readers produce."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RawPost:
    """One input post as found in a file, before cleaning.

    ``locator`` says where it is (``line 20``, ``message 95587``, ``row 3``) so every report can
    point a user at the place in the file.
    """

    source: str
    locator: str
    text: str
    message_id: str | None = None
    channel: str | None = None
    date: str | None = None
    forwarded_from: str | None = None
    reactions: dict[str, int] = field(default_factory=dict)
    media: bool = False


@dataclass
class Skipped:
    """An input item that is not a post (service message) or could not be read, with the reason."""

    source: str
    locator: str
    reason: str
