"""Scoring normalisation: what a reference and a hypothesis are reduced to before WER/CER.

Indic text has several spellings of one word that a listener cannot tell apart; counting them
as errors measures the typist, not the model. Evaluation and training validation both call
:func:`normalize_for_scoring` with the same :class:`ScoringPolicy`, so a validation WER and an
evaluation WER of the same model on the same data agree. The steps, in order:

1. NFC, lower-casing (a no-op for Brahmic scripts, it folds Latin case), and whitespace, by
   :func:`maya_asr.text.normalize.normalize_text`.
2. Format characters are removed (Unicode category Cf): ZWJ U+200D and ZWNJ U+200C, which only
   choose a glyph form (e.g. Malayalam chillu, Devanagari eyelash ra), and ZWSP, BOM and soft
   hyphen, which are invisible.
3. Nukta policy. Unicode has two spellings of many nukta letters: precomposed (ऩ U+0929) and
   base + nukta (न U+0928 + ◌़ U+093C). NFC decomposes some of them (क़ U+0958, ড় U+09DC,
   ਸ਼ U+0A36 are composition exclusions) and composes others (ऩ, ऱ, ऴ), so ``"fold"``
   writes *every* nukta letter as base + nukta: one spelling per letter, whatever the input.
   ``"drop"`` also removes the nukta sign (क़ -> क), for references typed without nuktas.
   ``"keep"`` leaves NFC's result alone.
4. Digits: every decimal digit (Devanagari ०-९, Bengali ০-৯, Tamil ௦-௯, ... category Nd)
   becomes its ASCII digit, so "२०२४" and "2024" score as the same word (``digits="ascii"``).
5. Punctuation: apostrophes are deleted (``don't`` -> ``dont``, so contractions stay one
   word); every other punctuation character (category P*, danda । and double danda ॥
   included) becomes a space. Whitespace is then collapsed.

Stdlib only: the tables below are derived from :mod:`unicodedata` at import.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from maya_asr.text.normalize import collapse_whitespace, normalize_text, strip_punctuation

NUKTA_POLICIES = ("fold", "drop", "keep")
DIGIT_POLICIES = ("ascii", "keep")
APOSTROPHES = "'\u2019\u02bc"  # ASCII apostrophe, right single quotation mark, modifier letter


def _nukta_tables() -> tuple[frozenset[str], dict[str, str]]:
    """Nukta signs of the Indic blocks, and precomposed nukta letters -> base + nukta."""
    signs = frozenset(
        chr(cp)
        for cp in range(0x0900, 0x0E00)
        if unicodedata.name(chr(cp), "").endswith("SIGN NUKTA")
    )
    decompose: dict[str, str] = {}
    for cp in range(0x0900, 0x0E00):
        ch = chr(cp)
        decomposition = unicodedata.decomposition(ch)
        # canonical decompositions only (compatibility ones start with "<tag>")
        if decomposition and not decomposition.startswith("<"):
            parts = "".join(chr(int(h, 16)) for h in decomposition.split())
            if parts[-1] in signs:
                decompose[ch] = parts
    return signs, decompose


NUKTA_SIGNS, _NUKTA_DECOMPOSE = _nukta_tables()
# str.translate tables; ord -> replacement (None deletes)
_FOLD_NUKTA = str.maketrans(_NUKTA_DECOMPOSE)
_DROP_NUKTA = str.maketrans(
    {**{ch: parts[:-1] for ch, parts in _NUKTA_DECOMPOSE.items()}, **dict.fromkeys(NUKTA_SIGNS)}
)
_DELETE_APOSTROPHES = str.maketrans(dict.fromkeys(APOSTROPHES))


def _decimal_digit_table() -> dict[int, str]:
    # The Basic Multilingual Plane holds the digits of every script we score (and scanning it is
    # ~10x faster at import than scanning all of Unicode).
    return {
        cp: str(unicodedata.decimal(chr(cp)))
        for cp in range(0x80, 0x10000)
        if unicodedata.category(chr(cp)) == "Nd"
    }


_ASCII_DIGITS = _decimal_digit_table()


@dataclass(frozen=True)
class ScoringPolicy:
    """How text is normalised before scoring. The default is what reports and validation use."""

    nukta: str = "fold"  # "fold": base + nukta everywhere; "drop": remove nuktas; "keep": NFC only
    digits: str = "ascii"  # "ascii": native decimal digits -> 0-9; "keep": leave them
    remove_format_chars: bool = True  # delete ZWJ, ZWNJ, ZWSP, BOM, soft hyphen (category Cf)
    strip_punctuation: bool = True  # punctuation (danda included) -> space, apostrophes deleted
    lowercase: bool = True  # lower-case (folds Latin; Brahmic scripts have no case)

    def __post_init__(self) -> None:
        if self.nukta not in NUKTA_POLICIES:
            raise ValueError(f"nukta policy must be one of {NUKTA_POLICIES}, got {self.nukta!r}")
        if self.digits not in DIGIT_POLICIES:
            raise ValueError(f"digits policy must be one of {DIGIT_POLICIES}, got {self.digits!r}")


DEFAULT_POLICY = ScoringPolicy()


def normalize_for_scoring(text: str, policy: ScoringPolicy = DEFAULT_POLICY) -> str:
    """``text`` reduced for WER/CER under ``policy`` (see the module docstring for the steps)."""
    text = normalize_text(text, lowercase=policy.lowercase)
    if policy.remove_format_chars:
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    if policy.nukta == "fold":
        text = text.translate(_FOLD_NUKTA)
    elif policy.nukta == "drop":
        text = text.translate(_DROP_NUKTA)
    if policy.digits == "ascii":
        text = text.translate(_ASCII_DIGITS)
    if policy.strip_punctuation:
        text = strip_punctuation(text.translate(_DELETE_APOSTROPHES))
    return collapse_whitespace(text)
