import unicodedata

import pytest

from maya_asr.text import is_script_word, normalize_text, script_share, strip_punctuation


@pytest.mark.parametrize(
    ("text", "script", "share"),
    [
        ("नमस्ते दुनिया", "Devanagari", 1.0),
        ("নমস্কার", "Bengali", 1.0),
        ("வணக்கம்", "Tamil", 1.0),
        ("hello नमस्ते", "Devanagari", 6 / 11),
        ("१२३ ।", "Devanagari", 0.0),  # digits and danda are not letters
        ("", "Latin", 0.0),
    ],
)
def test_script_share(text, script, share):
    assert script_share(text, script) == pytest.approx(share)


def test_script_share_rejects_unknown_script():
    with pytest.raises(ValueError, match="unknown script"):
        script_share("abc", "Klingon")


@pytest.mark.parametrize(
    ("word", "script", "ok"),
    [
        ("भारत", "Devanagari", True),
        ("ि", "Devanagari", False),  # a dangling vowel sign is not a word
        ("भारत1", "Devanagari", False),
        ("ক\u09cd\u200cষ", "Bengali", True),  # ZWNJ inside a word is allowed
        ("ঘৰ", "Bengali", True),
        ("water", "Latin", True),
        ("don't", "Latin", False),
    ],
)
def test_is_script_word(word, script, ok):
    assert is_script_word(word, script) is ok


def test_normalize_text_is_nfc_and_collapses_whitespace():
    decomposed = "ড\u09bc"  # DDA + NUKTA, which NFC keeps decomposed (composition exclusion)
    out = normalize_text(f"  a\u00a0\t{decomposed}\n b ")
    assert out == unicodedata.normalize("NFC", f"a {decomposed} b")


def test_punctuation_policy():
    assert normalize_text("हाँ। ठीक है, चलो!", punctuation="strip") == "हाँ ठीक है चलो"
    assert normalize_text("don't stop.", punctuation="strip", keep_chars="'") == "don't stop"
    assert strip_punctuation("a-b") == "a b"
    with pytest.raises(ValueError, match="punctuation policy"):
        normalize_text("x", punctuation="remove")
