"""Cleaning a post's text into paragraphs, and the post id made from them.

Cleaning is what the codebook calls a post's paragraphs: its non-empty lines after cleaning, from 0.
The id is a hash of the text reduced to lower-case words, so the same post gets the same id on every
run and machine, whatever its invisible characters, emoji or case.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Lines that are link labels or layout, not content ("Read in full", "<...>", "***").
NOISE_RE = re.compile(
    r"^(?:[\W_]*(?:read in full|read more|read|watch|full text(?: of the \w+)?)[\W_]*|<\s*\.\.\.\s*>|[\W_]*)$",
    re.IGNORECASE,
)


ODD_SPACE_RE = re.compile(r"[\u00a0\u2007\u202f\t]")


MULTISPACE_RE = re.compile(r" {2,}")


INVISIBLE_RE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f"  # control characters (NUL and friends), never text
    r"\u00ad\u200b\u200c\u2060-\u2064\ufeff"  # soft hyphen, zero-width space/non-joiner, word joiner, BOM
    r"\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]"  # bidi marks, embeddings and isolates
    r"|(?<=\w)\u200d|\u200d(?=\w)"  # zero-width joiner beside a letter (inside emoji sequences it stays)
)
"""Invisible characters that would split a word for the cues and the post id without changing what a
reader sees: dropped from the text, so a post with them gets the labels, id and duplicate group of the
same post without them."""



# --------------------------------------------------------------------------- cleaning and ids
def clean_paragraphs(text: str) -> list[str]:
    """Non-empty lines after cleaning: Unicode NFC, invisible characters dropped, spaces normalised,
    link labels and separators dropped."""
    text = INVISIBLE_RE.sub("", text if text.isascii() else unicodedata.normalize("NFC", text))  # ASCII: nothing to compose
    out = []
    for raw in text.splitlines():
        line = MULTISPACE_RE.sub(" ", ODD_SPACE_RE.sub(" ", raw)).strip()
        if not line or NOISE_RE.match(line):
            continue
        out.append(line)
    return out


def normalise_for_match(text: str) -> str:
    """Text reduced to lower-case letters and digits, for duplicate detection."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.findall(r"\w+", text)).replace("_", " ")


def make_post_id(text: str, *, fallback: str = "") -> str:
    """Stable id: the same cleaned text gives the same id on every run and machine.

    Posts without text (media only) are identified by their place in the source instead.
    """
    key = normalise_for_match(text) or f"\x00empty\x00{fallback}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]

