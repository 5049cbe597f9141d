"""Apply a language's :class:`TextPolicy` to one transcript: normalise, then check.

Pure functions over strings, shared by the manifest builder and the tokenizer's quality filter.
A check that fails returns a reject reason (one of :data:`REASONS` in ``manifest``) instead of
raising, so a long job can count it and go on.
"""

from __future__ import annotations

from maya_asr.data.config import TextPolicy
from maya_asr.text import normalize_text, script_share

EMPTY_TRANSCRIPT = "empty_transcript"
WRONG_SCRIPT = "wrong_script"
ABSURD_CHARS_PER_SECOND = "absurd_chars_per_second"


def normalize_for(text: str, policy: TextPolicy) -> str:
    """NFC, optional case folding, the punctuation policy, whitespace collapsed."""
    return normalize_text(
        text,
        punctuation=policy.punctuation,
        keep_chars=policy.keep_chars,
        lowercase=policy.lowercase,
    )


def spoken_chars(text: str) -> int:
    """Characters that cost speaking time: every code point but spaces."""
    return len(text) - text.count(" ")


def check_text(text: str, policy: TextPolicy) -> tuple[str, str] | None:
    """``(reason, detail)`` when normalised ``text`` fails the policy's text checks, else None."""
    if not text:
        return EMPTY_TRANSCRIPT, "transcript is empty after normalisation"
    share = script_share(text, policy.script)
    if share < policy.min_script_share:
        return WRONG_SCRIPT, (
            f"{share:.0%} of letters are {policy.script} (needs {policy.min_script_share:.0%})"
        )
    return None


def check_rate(text: str, duration_s: float, policy: TextPolicy) -> tuple[str, str] | None:
    """``(reason, detail)`` when the speaking rate in characters per second is implausible."""
    rate = spoken_chars(text) / duration_s
    if not policy.min_chars_per_s <= rate <= policy.max_chars_per_s:
        return ABSURD_CHARS_PER_SECOND, (
            f"{rate:.1f} chars/s outside [{policy.min_chars_per_s}, {policy.max_chars_per_s}]"
        )
    return None
