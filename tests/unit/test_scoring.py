"""Scoring normalisation: one case per script of ours, and the invariants of each policy."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maya_asr.text.scoring import DEFAULT_POLICY, NUKTA_SIGNS, ScoringPolicy, normalize_for_scoring

ZWJ, ZWNJ = "\u200d", "\u200c"
DROP = ScoringPolicy(nukta="drop")


def norm(text: str, policy: ScoringPolicy = DEFAULT_POLICY) -> str:
    return normalize_for_scoring(text, policy)


@pytest.mark.parametrize(
    ("lang", "a", "b"),
    [
        # same word, two spellings -> same scoring form
        ("hi", "\u0958\u0932\u092e", "\u0915\u093c\u0932\u092e"),  # क़लम precomposed vs क+़
        ("hi", "\u0929", "\u0928\u093c"),  # ऩ: NFC composes this one; fold decomposes it
        ("mr", "\u0930\u094d\u200d\u092f", "\u0930\u094d\u092f"),  # eyelash ra (ZWJ) vs plain
        ("bn", "\u09dc\u09be", "\u09a1\u09bc\u09be"),  # ড়া
        ("as", "\u09df", "\u09af\u09bc"),  # য়
        ("pa", "\u0a36\u0a47\u0a30", "\u0a38\u0a3c\u0a47\u0a30"),  # ਸ਼ੇਰ
        ("or", "\u0b5c", "\u0b21\u0b3c"),  # ଡ଼
        ("ml", "\u0d28\u0d4d\u200d", "\u0d28\u0d4d"),  # old-style chillu n (ZWJ) vs plain
        ("kn", "\u0c95\u0ccd\u200c\u0c95", "\u0c95\u0ccd\u0c95"),  # ZWNJ
        ("te", "\u0c15\u0c4d\u200c", "\u0c15\u0c4d"),  # ZWNJ
        ("ta", "\u0b95\u0bcd\u200b\u0bb7", "\u0b95\u0bcd\u0bb7"),  # zero-width space
    ],
)
def test_spelling_variants_score_alike(lang, a, b):
    assert a != b
    assert norm(a) == norm(b), lang


@pytest.mark.parametrize(
    ("lang", "native", "ascii_"),
    [
        ("hi", "\u0968\u0966\u0968\u096a", "2024"),  # २०२४
        ("bn", "\u09e7\u09e8\u09e9", "123"),
        ("pa", "\u0a67\u0a68", "12"),
        ("gu", "\u0ae7\u0ae6", "10"),
        ("or", "\u0b67", "1"),
        ("ta", "\u0be7\u0bef", "19"),
        ("te", "\u0c6f", "9"),
        ("kn", "\u0ce7\u0ce8", "12"),
        ("ml", "\u0d6a", "4"),
    ],
)
def test_native_digits_become_ascii(lang, native, ascii_):
    assert norm(native) == ascii_, lang
    assert norm(native, ScoringPolicy(digits="keep")) == native


def test_danda_and_punctuation_become_word_breaks():
    assert norm("राम घर गया। फिर आया॥") == "राम घर गया फिर आया"
    assert norm("আমি ভাত খাই।") == "আমি ভাত খাই"
    assert norm("ਸਤ ਸ੍ਰੀ ਅਕਾਲ, ਜੀ!") == "ਸਤ ਸ੍ਰੀ ਅਕਾਲ ਜੀ"
    assert norm("word1-word2 (aside)") == "word1 word2 aside"


def test_english_case_and_apostrophes():
    assert norm("Don't STOP, it’s fine.") == "dont stop its fine"
    assert norm("Hello,World") == "hello world"


def test_drop_policy_removes_nuktas_from_both_spellings():
    assert norm("\u0958\u0932\u092e", DROP) == "\u0915\u0932\u092e"  # क़लम -> कलम
    assert norm("\u0915\u093c\u0932\u092e", DROP) == "\u0915\u0932\u092e"
    assert norm("\u0929", DROP) == "\u0928"  # ऩ -> न
    assert norm("\u09dc", DROP) == "\u09a1"  # ড় -> ড
    assert norm("\u0a36", DROP) == "\u0a38"  # ਸ਼ -> ਸ


def test_fold_keeps_the_nukta_so_distinct_words_stay_distinct():
    assert norm("\u0915\u093c") != norm("\u0915")  # क़ is not क under the default policy


def test_keep_policies_leave_text_alone():
    keep = ScoringPolicy(
        nukta="keep",
        digits="keep",
        remove_format_chars=False,
        strip_punctuation=False,
        lowercase=False,
    )
    text = "Rām\u200d, क़ २।"
    assert norm(text, keep) == unicodedata.normalize("NFC", text)


def test_nukta_signs_cover_our_scripts():
    assert {hex(ord(c)) for c in NUKTA_SIGNS} >= {
        "0x93c",  # Devanagari
        "0x9bc",  # Bengali
        "0xa3c",  # Gurmukhi
        "0xabc",  # Gujarati
        "0xb3c",  # Oriya
        "0xcbc",  # Kannada
    }


@pytest.mark.parametrize(("field", "value"), [("nukta", "fuse"), ("digits", "roman")])
def test_bad_policy_names_the_choices(field, value):
    with pytest.raises(ValueError, match=field):
        ScoringPolicy(**{field: value})


indic_text = st.text(
    alphabet=st.sampled_from(
        [chr(c) for c in range(0x0900, 0x0D80) if unicodedata.category(chr(c)) != "Cn"]
        + [" ", ZWJ, ZWNJ, "।", ",", "A", "b", "7"]
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(indic_text, st.sampled_from(["fold", "drop", "keep"]))
def test_normalisation_is_idempotent(text, nukta):
    policy = ScoringPolicy(nukta=nukta)
    once = normalize_for_scoring(text, policy)
    assert normalize_for_scoring(once, policy) == once


@settings(max_examples=200, deadline=None)
@given(indic_text)
def test_output_has_no_joiners_punctuation_or_double_spaces(text):
    out = normalize_for_scoring(text)
    assert not any(unicodedata.category(ch) in ("Cf", "Po", "Pd", "Ps", "Pe") for ch in out)
    assert "  " not in out and out == out.strip()
