"""Word and character error rates, overall and per language, on scoring-normalised text.

Alignment is jiwer's (a maintained Levenshtein implementation on RapidFuzz). Rates are
corpus-level: substitutions, deletions and insertions are summed over utterances and divided by
the summed reference length, so a long utterance weighs more than a short one (the convention of
NeMo, Kaldi and the Open ASR Leaderboard), not an average of per-utterance rates.

CER counts Unicode code points of the normalised text, spaces included (jiwer's default): an
Indic syllable such as "क्षि" is four code points, so one wrong vowel sign is one error.

Training validation calls :func:`score_utterances` with the same :class:`ScoringPolicy` as
evaluation. This module imports no NeMo and no torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from maya_asr.text.scoring import DEFAULT_POLICY, ScoringPolicy, normalize_for_scoring

ALL = "all"  # the key of the overall score in per-language tables


@dataclass(frozen=True)
class ErrorCounts:
    """Edit counts of hypotheses against references, in words or in characters."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_length: int = 0  # words (or characters) in the references

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float | None:
        """errors / reference length; None when there is no reference to score against."""
        if self.reference_length == 0:
            return None
        return self.errors / self.reference_length

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.reference_length + other.reference_length,
        )


def _counts(output, reference_length: int) -> ErrorCounts:
    return ErrorCounts(output.substitutions, output.deletions, output.insertions, reference_length)


def word_errors(reference: str, hypothesis: str) -> ErrorCounts:
    """Word edit counts of two already-normalised strings (words split on spaces)."""
    import jiwer

    return _counts(jiwer.process_words(reference, hypothesis), len(reference.split()))


def char_errors(reference: str, hypothesis: str) -> ErrorCounts:
    """Character (code point) edit counts of two already-normalised strings."""
    import jiwer

    return _counts(jiwer.process_characters(reference, hypothesis), len(reference))


@dataclass
class Score:
    """Word and character errors of a set of utterances."""

    utterances: int = 0
    words: ErrorCounts = field(default_factory=ErrorCounts)
    chars: ErrorCounts = field(default_factory=ErrorCounts)

    @property
    def wer(self) -> float | None:
        return self.words.rate

    @property
    def cer(self) -> float | None:
        return self.chars.rate

    def add(self, words: ErrorCounts, chars: ErrorCounts) -> None:
        self.utterances += 1
        self.words = self.words + words
        self.chars = self.chars + chars

    def to_dict(self) -> dict:
        return {
            "utterances": self.utterances,
            "wer": self.wer,
            "cer": self.cer,
            "words": asdict(self.words),
            "chars": asdict(self.chars),
        }


def score_utterances(
    utterances: Iterable[tuple[str, str, str]], policy: ScoringPolicy = DEFAULT_POLICY
) -> dict[str, Score]:
    """Score ``(language, reference, hypothesis)`` triples, raw text in.

    Returns ``{ALL: overall, lang: per-language, ...}``; languages in order of first appearance.
    Both sides go through :func:`normalize_for_scoring` with ``policy``.
    """
    table: dict[str, Score] = {ALL: Score()}
    for lang, reference, hypothesis in utterances:
        ref = normalize_for_scoring(reference, policy)
        hyp = normalize_for_scoring(hypothesis, policy)
        words, chars = word_errors(ref, hyp), char_errors(ref, hyp)
        table[ALL].add(words, chars)
        table.setdefault(lang, Score()).add(words, chars)
    return table


def corpus_wer(
    references: Iterable[str], hypotheses: Iterable[str], policy: ScoringPolicy = DEFAULT_POLICY
) -> float | None:
    """Corpus-level WER of paired raw texts (None when every reference is empty)."""
    pairs = zip(references, hypotheses, strict=True)
    return score_utterances(((ALL, r, h) for r, h in pairs), policy)[ALL].wer


def corpus_cer(
    references: Iterable[str], hypotheses: Iterable[str], policy: ScoringPolicy = DEFAULT_POLICY
) -> float | None:
    """Corpus-level CER of paired raw texts (None when every reference is empty)."""
    pairs = zip(references, hypotheses, strict=True)
    return score_utterances(((ALL, r, h) for r, h in pairs), policy)[ALL].cer
