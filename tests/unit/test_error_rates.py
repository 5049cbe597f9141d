"""WER/CER against hand-computed values; corpus-level sums; per-language tables."""

from __future__ import annotations

import pytest

from maya_asr.inference.error_rates import (
    ALL,
    ErrorCounts,
    char_errors,
    corpus_cer,
    corpus_wer,
    score_utterances,
    word_errors,
)
from maya_asr.text.scoring import ScoringPolicy


def test_word_errors_by_hand():
    # a b c d -> a x c : b->x substituted, d deleted
    assert word_errors("a b c d", "a x c") == ErrorCounts(1, 1, 0, 4)
    # a b -> a b c d : two insertions
    assert word_errors("a b", "a b c d") == ErrorCounts(0, 0, 2, 2)
    assert word_errors("a b", "a b").rate == 0.0


def test_char_errors_count_code_points_and_spaces():
    assert char_errors("abc", "abd") == ErrorCounts(1, 0, 0, 3)
    # नमस्ते दुनिया: 6 + 1 + 6 = 13 code points; दुनिया -> दूनिया swaps one vowel sign
    counts = char_errors("नमस्ते दुनिया", "नमस्ते दूनिया")
    assert counts == ErrorCounts(1, 0, 0, 13)
    assert counts.rate == pytest.approx(1 / 13)
    assert word_errors("नमस्ते दुनिया", "नमस्ते दूनिया").rate == pytest.approx(1 / 2)


def test_corpus_rate_sums_errors_not_averages_rates():
    refs = ["a b", "c d e f"]
    hyps = ["a b", "c"]  # 0/2 and 3/4: corpus 3/6, not the mean of rates 0.375
    assert corpus_wer(refs, hyps) == pytest.approx(0.5)
    # characters: "a b" exact (0/3); "c d e f" -> "c": 6 deletions of 7
    assert corpus_cer(refs, hyps) == pytest.approx(6 / 10)


def test_normalisation_applies_to_both_sides():
    # danda, ZWJ, nukta spelling and native digits differ; the words do not
    ref = "क़लम\u200d २ है।"
    hyp = "क\u093cलम 2 है"
    assert corpus_wer([ref], [hyp]) == 0.0
    assert corpus_cer([ref], [hyp]) == 0.0
    assert corpus_wer([ref], [hyp], ScoringPolicy(digits="keep")) == pytest.approx(1 / 3)


def test_per_language_table_and_overall():
    table = score_utterances(
        [
            ("hi", "एक दो", "एक दो"),
            ("ta", "ஒன்று இரண்டு மூன்று", "ஒன்று"),
            ("hi", "तीन", "चार"),
        ]
    )
    assert list(table) == [ALL, "hi", "ta"]
    assert table["hi"].utterances == 2 and table["hi"].words == ErrorCounts(1, 0, 0, 3)
    assert table["ta"].words == ErrorCounts(0, 2, 0, 3)
    assert table[ALL].words == ErrorCounts(1, 2, 0, 6)
    assert table[ALL].wer == pytest.approx(0.5)
    assert table[ALL].to_dict()["words"]["deletions"] == 2


def test_empty_reference_has_no_rate_but_counts_insertions():
    counts = word_errors("", "extra words")
    assert counts == ErrorCounts(0, 0, 2, 0)
    assert counts.rate is None
    assert score_utterances([("en", "", "")])[ALL].wer is None


def test_paired_lists_must_match():
    with pytest.raises(ValueError):
        corpus_wer(["a", "b"], ["a"])
