"""Telegram Desktop "Export chat history" JSON (``result.json``).

What such an export looks like (``shared/formats/FORMATS.md`` and the samples beside it):

* A single-chat export is ``{"name", "type", "id", "messages": [...]}``. A full-account export
  wraps chats as ``{"chats": {"list": [chat, ...]}, "left_chats": {"list": [...]}, ...}``. People
  also paste just the ``messages`` array, so a bare array of messages is read too.
  An array of chat objects (``chats.list`` pasted alone) is read like a full-account export.
* ``text`` is a plain string for a single plain run, else a list of bare strings and entity
  objects ``{"type", "text", ...}``; the post text is their concatenation.
* Service messages (``type: service``: pins, joins, calls) are not posts: they are counted as
  skipped, with their action, so the summary still accounts for every message.
* Media-only messages (photo, file, sticker, poll, location, ...) are kept as posts without text,
  so counts per channel stay honest; a poll's question and answers are its text.
* Newer exports carry ``reactions: [{"type", "count", "emoji"}]``; older ones lack
  ``date_unixtime``, some fixtures lack ``date``.

A message that cannot be read is skipped with a reason that names it; only a file that is not a
usable export at all (invalid or truncated JSON, another shape) raises ``InputError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ...errors import InputError
from .base import RawPost, Skipped

# Keys whose presence means the message carries media (the file itself is rarely exported).
MEDIA_KEYS = (
    "photo", "file", "media_type", "sticker_emoji", "poll", "location_information", "place_name",
    "contact_information", "contact_vcard", "game_title", "invoice_information", "live_location_period_seconds",
)
# Keys that mark an object as a message, used to tell a bare message array from other JSON.
MESSAGE_KEYS = frozenset({"id", "type", "date", "date_unixtime", "text", "from", "from_id", "text_entities"})


class BadMessage(ValueError):
    """One message cannot be read; the text says what is wrong (becomes a ``Skipped`` reason)."""


# --------------------------------------------------------------------------- whole file
def load_json(path: Path, text: str) -> Any:
    """Parse the file, turning a JSON error into a one-line ``InputError`` with line and column.

    A cut-off download or an export interrupted half-way is the usual cause, hence the advice.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}:line {exc.lineno} col {exc.colno}: invalid JSON ({exc.msg}); "
            "the export may be truncated — re-export it"
        ) from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply to be a Telegram export") from None


def _keys(obj: dict) -> str:
    keys = [str(k) for k in list(obj)[:8]]
    more = ", ..." if len(obj) > 8 else ""
    return ", ".join(keys) + more if keys else "none"


def _expect_list(path: Path, value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise InputError(f"{path}: '{where}' is a {type(value).__name__}; expected a list")
    return value


Chat = tuple[str | None, str, list]


def iter_chats(path: Path, source: str, data: Any) -> Iterator[Chat | Skipped]:
    """Yield ``(chat name, locator prefix, messages)`` for each chat of the export.

    The prefix keeps locators unique in a full-account export, where message ids repeat
    across chats. A chat entry without a message list is yielded as one ``Skipped``. Raises
    ``InputError`` for JSON that is not an export of any known layout.
    """
    if isinstance(data, list):
        if data and not any(isinstance(m, dict) and MESSAGE_KEYS & m.keys() for m in data):
            kinds = sorted({type(m).__name__ for m in data})
            raise InputError(
                f"{path}: a JSON array of {len(data)} items ({', '.join(kinds)}), none of them a message; "
                "expected a Telegram Desktop export (result.json) or an array of its messages"
            )
        if data and all(isinstance(c, dict) and isinstance(c.get("messages"), list) for c in data):
            yield from _account_chats(path, source, {"chats": {"list": data}})  # an array of chats
            return
        yield None, "", data
        return
    if not isinstance(data, dict):
        raise InputError(f"{path}: JSON {type(data).__name__}, not a Telegram Desktop export (result.json)")
    if "messages" in data:
        yield _chat_name(data), "", _expect_list(path, data["messages"], "messages")
        return
    if "chats" in data or "left_chats" in data:
        yield from _account_chats(path, source, data)
        return
    hint = "; if the file holds one JSON record per line, name it .jsonl" if "text" in data else ""
    raise InputError(
        f"{path}: JSON object with keys {_keys(data)} is not a Telegram Desktop export; expected "
        f"'messages' (single-chat export) or 'chats' (full-account export){hint}"
    )


def _account_chats(path: Path, source: str, data: dict) -> Iterator[Chat | Skipped]:
    """The chats of a full-account export: ``chats.list`` then ``left_chats.list``."""
    for section in ("chats", "left_chats"):
        if section not in data:
            continue
        block = data[section]
        if isinstance(block, dict) and "list" not in block:
            raise InputError(f"{path}: '{section}' has keys {_keys(block)}; expected a 'list' of chats")
        chats = block["list"] if isinstance(block, dict) else block
        for i, chat in enumerate(_expect_list(path, chats, f"{section}.list")):
            name = _chat_name(chat) if isinstance(chat, dict) else None
            label = name or (chat.get("id") if isinstance(chat, dict) else None) or f"{section}.list[{i}]"
            if not isinstance(chat, dict) or not isinstance(chat.get("messages"), list):
                # No message list to count; the chat itself is reported as one skipped item.
                found = f"keys {_keys(chat)}" if isinstance(chat, dict) else f"a {type(chat).__name__}"
                yield Skipped(source, f"{section}.list[{i}]", f"malformed chat ({found}; expected a 'messages' list)")
                continue
            yield name, f'chat "{label}" ', chat["messages"]


def _chat_name(chat: dict) -> str | None:
    name = chat.get("name")
    return name if isinstance(name, str) and name else None


# --------------------------------------------------------------------------- one message
def message_text(value: Any) -> str:
    """The text of a message: a string, or a list of strings and ``{type, text}`` entity objects."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise BadMessage(f"'text' is a {type(value).__name__}; expected a string or a list of parts")
    parts = []
    for k, part in enumerate(value):
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text", ""), str):
            parts.append(part.get("text", ""))
        else:
            raise BadMessage(f"'text' part {k} is a {type(part).__name__}; expected a string or a {{type, text}} object")
    return "".join(parts)


def poll_text(poll: Any) -> str:
    """A poll's question and answers, one per line: the only words a poll post has."""
    if not isinstance(poll, dict):
        return ""
    lines = [poll.get("question")]
    answers = poll.get("answers")
    if isinstance(answers, list):
        lines += [a.get("text") if isinstance(a, dict) else a for a in answers]
    return "\n".join(x for x in lines if isinstance(x, str) and x)


def message_date(msg: dict) -> str | None:
    """``date`` (ISO, local time as exported) or else ``date_unixtime`` as ISO UTC; ``None`` if neither."""
    date = msg.get("date")
    if isinstance(date, str) and date:
        return date
    unix = msg.get("date_unixtime")
    try:
        return datetime.fromtimestamp(int(unix), tz=timezone.utc).isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def message_reactions(value: Any) -> dict[str, int]:
    """``[{type, count, emoji}]`` as ``{emoji or type: count}``; unreadable entries are ignored.

    Reactions are metadata: a malformed entry should not cost the post, so it is dropped quietly.
    """
    out: dict[str, int] = {}
    if not isinstance(value, list):
        return out
    for r in value:
        if not isinstance(r, dict):
            continue
        key = r.get("emoji") or r.get("type")
        count = r.get("count")
        if isinstance(key, str) and isinstance(count, int) and not isinstance(count, bool):
            out[key] = out.get(key, 0) + count
    return out


def _message_id(msg: dict) -> str:
    mid = msg.get("id")
    if mid is None:
        raise BadMessage("no 'id'")
    if isinstance(mid, bool) or not isinstance(mid, (int, str)) or mid == "":
        raise BadMessage(f"'id' is {mid!r}; expected a number")
    return str(mid)


def _channel(msg: dict, chat_name: str | None) -> str | None:
    """The chat name; in a bare message array, the sender when it is a channel."""
    if chat_name:
        return chat_name
    sender, sender_id = msg.get("from"), msg.get("from_id")
    if isinstance(sender, str) and isinstance(sender_id, str) and sender_id.startswith("channel"):
        return sender
    return None


def read_message(source: str, prefix: str, index: int, msg: Any, chat_name: str | None) -> RawPost | Skipped:
    """One message as a post, or a ``Skipped`` naming it (by id, else by index) and the problem."""
    where = f"{prefix}messages[{index}]"
    if not isinstance(msg, dict):
        return Skipped(source, where, f"malformed message (a {type(msg).__name__}, not an object)")
    try:
        mid = _message_id(msg)
    except BadMessage as exc:
        return Skipped(source, where, f"malformed message ({exc})")
    where = f"{prefix}message {mid}"
    kind = msg.get("type", "message")
    if kind == "service":
        action = msg.get("action")
        return Skipped(source, where, f"service message ({action if isinstance(action, str) else 'unknown action'})")
    if not isinstance(kind, str):
        return Skipped(source, where, f"malformed message ('type' is {kind!r})")
    try:
        text = message_text(msg.get("text"))
    except BadMessage as exc:
        return Skipped(source, where, f"malformed message ({exc})")
    poll = poll_text(msg.get("poll"))
    if poll:
        text = f"{text}\n{poll}" if text.strip() else poll
    forwarded = msg.get("forwarded_from")
    return RawPost(
        source,
        where,
        text,
        message_id=mid,
        channel=_channel(msg, chat_name),
        date=message_date(msg),
        forwarded_from=forwarded if isinstance(forwarded, str) and forwarded else None,
        reactions=message_reactions(msg.get("reactions")),
        media=kind == "unsupported" or any(msg.get(k) not in (None, "") for k in MEDIA_KEYS),
    )


def read_tdesktop_json(path: Path, source: str, text: str) -> Iterator[RawPost | Skipped]:
    """Read a Telegram Desktop JSON export into posts and skipped messages.

    Parameters
    ----------
    path : Path
        The file, named in whole-file error messages.
    source : str
        File name used in records.
    text : str
        The decoded file content.

    Raises
    ------
    InputError
        When the file is invalid or truncated JSON, or JSON of a layout that is not an export.
    """
    data = load_json(path, text)
    for chat in iter_chats(path, source, data):
        if isinstance(chat, Skipped):
            yield chat
            continue
        chat_name, prefix, messages = chat
        for index, msg in enumerate(messages):
            yield read_message(source, prefix, index, msg, chat_name)
