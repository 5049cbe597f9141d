"""Text handling shared by the data pipeline, training validation and evaluation (stdlib only)."""

from maya_asr.text.normalize import collapse_whitespace, normalize_text, strip_punctuation
from maya_asr.text.scripts import SCRIPTS, char_script, is_script_word, script_share

__all__ = [
    "SCRIPTS",
    "char_script",
    "collapse_whitespace",
    "is_script_word",
    "normalize_text",
    "script_share",
    "strip_punctuation",
]
