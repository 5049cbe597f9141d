"""Unicode script membership for the writing systems of our 12 languages.

Python's ``unicodedata`` has no script property, so the Brahmic blocks are listed here; each
Indic script of ours owns exactly one 128-code-point block. The danda (U+0964/U+0965) sits in the
Devanagari block but is punctuation shared by several scripts: it is never counted as a letter.
"""

from __future__ import annotations

import unicodedata

# script name -> inclusive code point ranges of its letters and combining marks
SCRIPTS: dict[str, tuple[tuple[int, int], ...]] = {
    "Devanagari": ((0x0900, 0x097F), (0xA8E0, 0xA8FF)),
    "Bengali": ((0x0980, 0x09FF),),
    "Gurmukhi": ((0x0A00, 0x0A7F),),
    "Gujarati": ((0x0A80, 0x0AFF),),
    "Oriya": ((0x0B00, 0x0B7F),),
    "Tamil": ((0x0B80, 0x0BFF),),
    "Telugu": ((0x0C00, 0x0C7F),),
    "Kannada": ((0x0C80, 0x0CFF),),
    "Malayalam": ((0x0D00, 0x0D7F),),
    "Latin": ((0x0041, 0x005A), (0x0061, 0x007A), (0x00C0, 0x024F)),
}


# char -> script, filled on first sight: the range scan below costs ~1 us per character and the
# manifest builder checks every character of tens of millions of transcripts.
_SCRIPT_OF: dict[str, str | None] = {}


def char_script(ch: str) -> str | None:
    """The script of one character among :data:`SCRIPTS`, or None (digits, spaces, others)."""
    try:
        return _SCRIPT_OF[ch]
    except KeyError:
        pass
    cp = ord(ch)
    found = None
    for name, ranges in SCRIPTS.items():
        if any(lo <= cp <= hi for lo, hi in ranges):
            found = name
            break
    if len(_SCRIPT_OF) < 65536:  # bounded: junk input cannot grow it without limit
        _SCRIPT_OF[ch] = found
    return found


def _is_letter_or_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LM"


def script_share(text: str, script: str) -> float:
    """Share of the letters and combining marks in ``text`` that belong to ``script``.

    Digits, punctuation (danda included), spaces and format characters (ZWJ/ZWNJ) are ignored;
    text without any letter scores 0.0.
    """
    if script not in SCRIPTS:
        raise ValueError(f"unknown script {script!r}; known: {', '.join(SCRIPTS)}")
    letters = [ch for ch in text if unicodedata.category(ch)[0] in "LM"]
    if not letters:
        return 0.0
    return sum(1 for ch in letters if char_script(ch) == script) / len(letters)


def is_script_word(word: str, script: str) -> bool:
    """True when ``word`` is a plausible word of ``script``: it starts with a letter (not a
    dangling vowel sign) and every character is a letter or mark of that script (ZWJ/ZWNJ allowed).
    """
    if not word or unicodedata.category(word[0])[0] != "L":
        return False
    for ch in word:
        if ch in "\u200c\u200d":
            continue
        if not _is_letter_or_mark(ch) or char_script(ch) != script:
            return False
    return True
