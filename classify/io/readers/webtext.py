"""Text copied from Telegram's web view (the sample dumps in ``data/dumps/``).

What such a copy looks like, read off the sample dumps:

* A post may open with ``Forwarded from <channel>`` (sometimes with a non-breaking space) and/or a
  media placeholder ("Media is too big", "VIEW IN TELEGRAM", ...), and may end with a reactions
  line ("👍1", "❤1👍1").
* A long post is copied twice: a header line, a *preview* of the following lines, then the
  *expanded* ("Read in full") view of the same lines, which may hold lines the preview hid
  (quotes, poems). The expanded view starts with the preview's first line and contains the preview
  as a subsequence. We keep the header and the expanded view, so the text is counted once.
* Some copies (file 004) separate paragraphs by blank lines and have no preview/expanded pairs.
  There posts are split at forward headers, placeholders and reaction lines, and where the
  language of consecutive paragraphs changes (a French post followed by its Russian version).

Post boundaries therefore come from markers first, then from the preview/expanded structure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from .base import RawPost, Skipped

FORWARD_RE = re.compile(r"^Forwarded\s+from\s+(?P<name>.+?)\s*$", re.UNICODE)
MEDIA_PLACEHOLDERS = frozenset(
    {
        "media is too big",
        "this media is not supported in your browser",
        "view in telegram",
        "please open telegram to view this post",
    }
)
# One or more "<emoji><count>" pairs: 👍1, ❤1👍1, 🔥2, 👍1.2K
REACTION_PAIR = r"[^\w\s\d<>*#@]{1,8}\s?\d+(?:[.,]\d+)?[KM]?"
REACTIONS_RE = re.compile(rf"^(?:{REACTION_PAIR}\s*)+$")
REACTION_ITEM_RE = re.compile(r"([^\w\s\d<>*#@]{1,8})\s?(\d+(?:[.,]\d+)?[KM]?)")


MIN_LETTERS_FOR_SPLIT = 60


def normalise_line(line: str) -> str:
    """Strip the line and turn non-breaking and other odd spaces into plain spaces."""
    return re.sub(r"[\u00a0\u2007\u202f\u200b\ufeff]", " ", line).strip()


def is_placeholder(line: str) -> bool:
    """A media placeholder the web view prints instead of a photo or video."""
    return line.lower().rstrip(".") in MEDIA_PLACEHOLDERS


def parse_reactions(line: str) -> dict[str, int] | None:
    """Parse a reactions line into ``{emoji: count}``; ``None`` when the line is not one."""
    if not REACTIONS_RE.match(line):
        return None
    out: dict[str, int] = {}
    for emoji, count in REACTION_ITEM_RE.findall(line):
        out[emoji] = out.get(emoji, 0) + _count(count)
    return out or None


def _count(text: str) -> int:
    mult = {"K": 1000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM").replace(",", ".")) * mult)


def looks_like_webtext(text: str) -> bool:
    """Plain text (not JSON/CSV); the web-view reader is the fallback for any plain text."""
    head = text.lstrip()[:1]
    return head not in ("{", "[")


def _is_subsequence(needle: list[str], hay: list[str], start: int) -> int | None:
    """Index in ``hay`` just past the match of ``needle`` as a subsequence from ``start``, or None."""
    i = start
    for item in needle:
        while i < len(hay) and hay[i] != item:
            i += 1
        if i == len(hay):
            return None
        i += 1
    return i


def _repeat_end(lines: list[str], start: int) -> int | None:
    """If a post with a preview/expanded pair starts at ``start``, return the index past its end.

    ``lines[start]`` is the header; the preview is ``lines[start+1:j]`` and the expanded view starts
    at the first later ``j`` with ``lines[j] == lines[start+1]`` and contains the preview as a
    subsequence. The smallest such ``j`` and the shortest completion are taken.
    """
    first = start + 1
    if first >= len(lines):
        return None
    for j in range(first + 1, len(lines)):
        if lines[j] != lines[first]:
            continue
        end = _is_subsequence(lines[first:j], lines, j)
        if end is not None:
            return end
    return None


def _split_repeats(lines: list[str]) -> list[tuple[int, int, bool]]:
    """Split a block of content lines into posts: ``(start, end, had_expanded_view)``.

    A stretch with no preview/expanded structure before a post that has one is its own post.
    """
    posts: list[tuple[int, int, bool]] = []
    s = 0
    n = len(lines)
    while s < n:
        end = _repeat_end(lines, s)
        if end is not None:
            posts.append((s, end, True))
            s = end
            continue
        nxt = next((t for t in range(s + 1, n) if _repeat_end(lines, t) is not None), None)
        stop = n if nxt is None else nxt
        posts.append((s, stop, False))
        s = stop
    return posts


def _dedupe_expanded(lines: list[str]) -> list[str]:
    """Header plus expanded view: drop the preview, which the expanded view repeats."""
    end = _repeat_end(lines, 0)
    if end is None:
        return lines
    first = lines[1]
    j = next(k for k in range(2, len(lines)) if lines[k] == first and _is_subsequence(lines[1:k], lines, k))
    return [lines[0], *lines[j:end]]


def _split_languages(
    items: list[tuple[int, str]], detect: Callable[[str], str] | None
) -> list[list[tuple[int, str]]]:
    """Split where the language of substantial consecutive paragraphs changes (en -> fr -> ru)."""
    if detect is None or len(items) < 2:
        return [items]
    # Only long paragraphs vote: short lines (hashtags, place names) are misidentified too often.
    langs = [detect(t) if len(re.sub(r"[\W\d_]", "", t)) >= MIN_LETTERS_FOR_SPLIT else None for _, t in items]
    groups: list[list[tuple[int, str]]] = [[items[0]]]
    current = langs[0]
    for item, lang in zip(items[1:], langs[1:]):
        if lang is not None and current is not None and lang != current:
            groups.append([item])
        else:
            groups[-1].append(item)
        if lang is not None:
            current = lang
    return groups


def read_webtext(
    source: str, text: str, *, detect: Callable[[str], str] | None = None
) -> Iterator[RawPost | Skipped]:
    """Split a web-view copy into posts.

    Parameters
    ----------
    source : str
        File name used in records and messages.
    text : str
        The decoded file content.
    detect : callable, optional
        Language identifier ``text -> code``, used to split posts where the language changes in a
        dump without preview/expanded pairs.
    """
    raw_lines = text.splitlines()
    # Pass 1: cut at hard markers into blocks, each with its forward header, media flag, reactions.
    blocks: list[dict] = []

    def new_block(lineno: int) -> dict:
        blk = {"start": lineno, "fwd": None, "media": False, "placeholders": set(), "reactions": {}, "lines": [],
               "closed": False}
        blocks.append(blk)
        return blk

    blk: dict | None = None
    for lineno, raw in enumerate(raw_lines, start=1):
        line = normalise_line(raw)
        if not line:
            continue
        fwd = FORWARD_RE.match(line)
        if fwd:
            blk = new_block(lineno)
            blk["fwd"] = fwd.group("name")
            continue
        if is_placeholder(line):
            # A placeholder opens a post (media sits above the text), unless it continues the
            # placeholders of a post that has no text yet; the same placeholder twice is two posts.
            if blk is None or blk["closed"] or blk["lines"] or line.lower() in blk["placeholders"]:
                blk = new_block(lineno)
            blk["media"] = True
            blk["placeholders"].add(line.lower())
            continue
        reactions = parse_reactions(line)
        if reactions is not None:
            if blk is None:
                blk = new_block(lineno)
            blk["reactions"] = reactions
            blk["closed"] = True
            continue
        if blk is None or blk["closed"]:
            blk = new_block(lineno)
        blk["lines"].append((lineno, line))

    # Pass 2: split each block by the preview/expanded structure, then by language changes.
    for blk in blocks:
        lines = blk["lines"]
        if not lines:
            yield RawPost(source, f"line {blk['start']}", "", forwarded_from=blk["fwd"],
                          reactions=blk["reactions"], media=blk["media"])
            continue
        texts = [t for _, t in lines]
        pieces = _split_repeats(texts)
        for k, (s, e, expanded) in enumerate(pieces):
            chunk = lines[s:e]
            groups = [chunk] if expanded else _split_languages(chunk, detect)
            for g, group in enumerate(groups):
                first_piece = k == 0 and g == 0
                last_piece = k == len(pieces) - 1 and g == len(groups) - 1
                kept = _dedupe_expanded([t for _, t in group]) if expanded else [t for _, t in group]
                start_line = blk["start"] if first_piece else group[0][0]
                yield RawPost(
                    source,
                    f"line {start_line}",
                    "\n".join(kept),
                    forwarded_from=blk["fwd"] if first_piece else None,
                    reactions=blk["reactions"] if last_piece else {},
                    media=blk["media"] if first_piece else False,
                )
