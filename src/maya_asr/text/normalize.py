"""Basic text normalisation: Unicode NFC, whitespace and punctuation policy."""

from __future__ import annotations

import re
import unicodedata

_SPACE_RE = re.compile(r"\s+")


def collapse_whitespace(text: str) -> str:
    """Any run of Unicode whitespace becomes one ASCII space; ends are trimmed."""
    return _SPACE_RE.sub(" ", text).strip()


def strip_punctuation(text: str, keep: str = "") -> str:
    """Replace every Unicode punctuation character (category P*, danda included) by a space,
    except those in ``keep`` (e.g. ``"'"`` to keep English contractions)."""
    return "".join(
        " " if unicodedata.category(ch)[0] == "P" and ch not in keep else ch for ch in text
    )


def normalize_text(
    text: str, *, punctuation: str = "keep", keep_chars: str = "", lowercase: bool = False
) -> str:
    """NFC, optional lower-casing, punctuation policy (``"keep"`` or ``"strip"``), whitespace.

    Indic-specific folding for scoring (nukta, ZWJ/ZWNJ, digits) belongs to evaluation, which
    builds on this function.
    """
    if punctuation not in ("keep", "strip"):
        raise ValueError(f"punctuation policy must be 'keep' or 'strip', got {punctuation!r}")
    text = unicodedata.normalize("NFC", text)
    if lowercase:
        text = text.lower()
    if punctuation == "strip":
        text = strip_punctuation(text, keep=keep_chars)
    return collapse_whitespace(text)
