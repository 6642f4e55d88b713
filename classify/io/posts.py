"""From raw posts to clean, accounted-for posts: ids, paragraphs, language, duplicate groups.

``iter_posts`` streams (tagging), ``ingest`` returns the whole corpus as a DataFrame (training,
labelling, reports). Every input item is a post or a skipped item with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pandas as pd

from .cleaning import clean_paragraphs, make_post_id
from .dedup import group_duplicates
from .formats import read_file
from .language import detect_post_languages
from .options import MAX_CHARS, ReadOptions
from .readers.base import RawPost, Skipped

COLUMNS = (
    "post_id", "source", "locator", "message_id", "channel", "date", "forwarded_from", "lang",
    "text", "paragraphs", "reactions", "media", "empty_text", "dup_group",
)



# --------------------------------------------------------------------------- the pipeline
def post_identity(raw: RawPost, opts: ReadOptions) -> tuple[list[str], str]:
    """The cleaned paragraphs and the ``post_id`` of a raw post.

    The one place a post's id is made: ``finish_post`` and the Ray engine's driver both call it.
    An over-long post (``too_long``) keeps its place with no paragraphs and an id from its locator,
    so tagging gives it a row with a status instead of losing it.
    """
    if too_long(raw, opts):
        return [], make_post_id("", fallback=f"{raw.source}\x00{raw.locator}")
    paragraphs = clean_paragraphs(raw.text)
    return paragraphs, make_post_id("\n".join(paragraphs), fallback=f"{raw.source}\x00{raw.locator}")


def too_long(raw: RawPost, opts: ReadOptions) -> bool:
    """Whether a post is over ``--max-chars`` (not cleaned, not tagged: a row with status ``too_long``)."""
    return len(raw.text) > opts.max_chars


def finish_post(raw: RawPost, opts: ReadOptions) -> dict:
    """Clean one raw post into an output row (without ``dup_group``)."""
    return finish_posts([raw], opts)[0]


def finish_posts(raws: Sequence[RawPost], opts: ReadOptions) -> list[dict]:
    """``finish_post`` of each raw post; the languages of the batch are identified together (faster)."""
    idents = [post_identity(raw, opts) for raw in raws]
    langs = iter(detect_post_languages([paragraphs for paragraphs, _ in idents]))
    out: list[dict] = []
    for raw, (paragraphs, post_id) in zip(raws, idents):
        out.append({
            "post_id": post_id,
            "source": raw.source,
            "locator": raw.locator,
            "message_id": None if raw.message_id is None else str(raw.message_id),
            "channel": raw.channel,
            "date": raw.date,
            "forwarded_from": raw.forwarded_from,
            "lang": next(langs),
            "text": "\n".join(paragraphs),
            "paragraphs": paragraphs,
            "reactions": dict(raw.reactions),
            "media": bool(raw.media),
            "empty_text": not paragraphs,
            "too_long": too_long(raw, opts),
        })
    return out


FINISH_BATCH = 256
"""Raw posts cleaned together by ``iter_posts`` (one language-identification call per batch)."""


def iter_posts(
    paths: Iterable[str | Path], opts: ReadOptions | None = None, skipped: list[Skipped] | None = None
) -> Iterator[dict]:
    """Stream cleaned posts (no ``dup_group``) from files, appending skipped items to ``skipped``.

    This is the streaming path used by tagging: memory does not grow with the dump (raw posts are
    cleaned in batches of ``FINISH_BATCH``).
    """
    opts = opts or ReadOptions()
    batch: list = []

    def flush() -> Iterator[dict]:
        raws = [it for it in batch if not isinstance(it, Skipped)]
        finished = iter(finish_posts(raws, opts))
        for item in batch:
            row = item if isinstance(item, Skipped) else next(finished)
            if isinstance(row, Skipped):
                if skipped is not None:
                    skipped.append(row)
                continue
            yield row
        batch.clear()

    for path in paths:
        for item in read_file(Path(path), opts):
            batch.append(item)
            if len(batch) >= FINISH_BATCH:
                yield from flush()
    yield from flush()


def ingest(paths: Iterable[str | Path], *, text_col: str | None = None, id_col: str | None = None,
           date_col: str | None = None, channel_col: str | None = None, encoding: str | None = None,
           max_chars: int = MAX_CHARS) -> pd.DataFrame:
    """Read dumps into a DataFrame with the columns of ``COLUMNS``, one row per post, input order.

    Skipped items (service messages, unreadable messages, over-long posts) are listed in
    ``df.attrs["skipped"]`` as dicts with ``source``, ``locator`` and ``reason``.

    Raises
    ------
    InputError
        When a whole file is unusable (missing, empty, binary, wrong encoding, truncated JSON, ...).

    Examples
    --------
    >>> df = ingest(["data/dumps/000_51aa832bcd877796.txt"])  # doctest: +SKIP
    >>> df[["post_id", "lang", "text"]].head()  # doctest: +SKIP
    """
    opts = ReadOptions(text_col, id_col, date_col, channel_col, encoding, max_chars)
    skipped: list[Skipped] = []
    rows = []
    for row in iter_posts(paths, opts, skipped):
        if row["too_long"]:  # training and labelling have no use for a post they cannot read
            skipped.append(Skipped(row["source"], row["locator"], f"post over the limit of {max_chars:,} characters (--max-chars)"))
        else:
            rows.append(row)
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "dup_group"])
    df["dup_group"] = group_duplicates(df["text"].tolist(), df["post_id"].tolist()) if len(df) else []
    df = df[list(COLUMNS)]
    df.attrs["skipped"] = [s.__dict__ for s in skipped]
    return df

