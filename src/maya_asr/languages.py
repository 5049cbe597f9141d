"""The 12 languages Maya ASR is trained on, and the facts each pipeline stage needs about them.

The order of ``LANGUAGES`` is the language-id order used by the model's language embedding:
never reorder it, only append.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1 code used everywhere: shard folders, manifests, parquet, model ids
    name: str  # English name, for reports
    script: str  # Unicode script of its writing system, a key of maya_asr.text.scripts.SCRIPTS
    espeak_voice: str  # espeak-ng voice that speaks it (demo corpus)
    aspell_dict: str | None  # Debian aspell dictionary with real words, None where there is none


_TABLE = (
    Language("hi", "Hindi", "Devanagari", "hi", "hi"),
    Language("bn", "Bengali", "Bengali", "bn", "bn"),
    Language("ta", "Tamil", "Tamil", "ta", "ta"),
    Language("te", "Telugu", "Telugu", "te", "te"),
    Language("mr", "Marathi", "Devanagari", "mr", "mr"),
    Language("gu", "Gujarati", "Gujarati", "gu", "gu"),
    Language("kn", "Kannada", "Kannada", "kn", "kn"),
    Language("ml", "Malayalam", "Malayalam", "ml", "ml"),
    Language("pa", "Punjabi", "Gurmukhi", "pa", "pa"),
    Language("or", "Odia", "Oriya", "or", "or"),
    Language("as", "Assamese", "Bengali", "as", None),
    Language("en", "English", "Latin", "en-us", None),
)

LANGUAGES: tuple[str, ...] = tuple(lang.code for lang in _TABLE)
_BY_CODE = {lang.code: lang for lang in _TABLE}


def get_language(code: str) -> Language:
    """The :class:`Language` for ``code``; ``ValueError`` listing the valid codes otherwise."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise ValueError(
            f"unknown language {code!r}; Maya ASR knows {', '.join(LANGUAGES)}"
        ) from None


def parse_languages(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Turn ``"hi,bn"``, ``["hi", "bn"]`` or ``None`` (all) into validated codes, in given order."""
    if spec is None or spec == "all":
        return LANGUAGES
    codes = [c.strip() for c in spec.split(",")] if isinstance(spec, str) else list(spec)
    codes = [c for c in codes if c]
    for code in codes:
        get_language(code)
    if len(set(codes)) != len(codes):
        raise ValueError(f"language list {codes} names a language twice")
    return tuple(codes)
