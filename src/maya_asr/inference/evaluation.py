"""Evaluate ``.nemo`` models on a manifest: every head of every model, scored side by side.

A *system* is one model decoding with one head (``tdt`` or ``ctc``). For each system the whole
manifest is transcribed, scored with :func:`maya_asr.inference.error_rates.score_utterances`
(overall and per language, under one :class:`ScoringPolicy`) and timed (RTFx: seconds of audio
per second spent in the model's ``transcribe``; audio decoding and resampling are not counted,
and one untimed warm-up batch runs first so one-off set-up does not count either).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from maya_asr.inference.error_rates import Score, score_utterances
from maya_asr.inference.inputs import AudioInput, InputError
from maya_asr.inference.transcriber import (
    RunStats,
    TranscribeOptions,
    Transcript,
    accepts_language,
    load_model,
    model_heads,
    transcribe_inputs,
)
from maya_asr.text.scoring import DEFAULT_POLICY, ScoringPolicy

UNKNOWN_LANGUAGE = "unknown"  # scoring bucket of rows without a language field
LANGUAGE_MODES = ("auto", "none")


@dataclass
class SystemResult:
    """One model with one head, scored."""

    model: str  # short label of the model (file stem, made unique)
    model_path: str
    decoder: str  # "tdt" or "ctc"
    scores: dict[str, Score]  # "all" and one entry per language
    stats: RunStats
    language_given: bool  # whether each row's language was passed to the model
    transcripts: list[Transcript] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        return f"{self.model}/{self.decoder}"


def check_references(inputs: Sequence[AudioInput]) -> None:
    """Every row must carry a reference text to be scored against."""
    missing = [item.where for item in inputs if item.text is None]
    if missing:
        raise InputError(
            f"{len(missing)} row(s) have no reference text ('text' or 'transcript'), first: "
            f"{', '.join(missing[:5])}; evaluation needs one per row"
        )


def model_labels(paths: Sequence[str]) -> list[str]:
    """File stems, suffixed with their position when two models share a stem."""
    stems = [Path(p).stem for p in paths]
    return [f"{s}#{i + 1}" if stems.count(s) > 1 else s for i, s in enumerate(stems)]


def evaluate_model(
    model_path: str,
    inputs: Sequence[AudioInput],
    *,
    label: str | None = None,
    decoders: Sequence[str] | None = None,
    batch_size: int = 16,
    device: str = "auto",
    language: str = "auto",
    policy: ScoringPolicy = DEFAULT_POLICY,
    progress: bool = True,
    model=None,
) -> list[SystemResult]:
    """Transcribe ``inputs`` with each head of one model and score them.

    ``decoders``: the heads to run (default: every head the model has). ``language``: "auto"
    passes each row's language when the model takes one and every row has one; "none" never
    does. ``model``: an already loaded model (``model_path`` is then only a label).
    """
    if language not in LANGUAGE_MODES:
        raise ValueError(f"language mode must be one of {LANGUAGE_MODES}, got {language!r}")
    check_references(inputs)
    model = model if model is not None else load_model(model_path, device)
    heads = model_heads(model)
    decoders = tuple(decoders) if decoders else heads
    for decoder in decoders:
        if decoder not in heads:
            raise ValueError(f"{model_path} has no {decoder} head (it has: {', '.join(heads)})")
    from_rows = (
        language == "auto"
        and accepts_language(model)
        and all(item.language is not None for item in inputs)
    )
    results = []
    for decoder in decoders:
        options = TranscribeOptions(
            decoder=decoder, batch_size=batch_size, language_from_rows=from_rows
        )
        list(transcribe_inputs(model, inputs[:1], options, progress=False))  # warm-up, untimed
        stats = RunStats()
        transcripts = list(
            transcribe_inputs(model, inputs, options, stats=stats, progress=progress)
        )
        triples = ((t.item.language or UNKNOWN_LANGUAGE, t.item.text, t.text) for t in transcripts)
        results.append(
            SystemResult(
                model=label or Path(model_path).stem,
                model_path=str(model_path),
                decoder=decoder,
                scores=score_utterances(triples, policy),
                stats=stats,
                language_given=from_rows,
                transcripts=transcripts,
            )
        )
    return results


def write_predictions(results: Sequence[SystemResult], folder: str | os.PathLike) -> list[Path]:
    """One JSON-lines file per system: ``<folder>/<model>.<decoder>.jsonl`` (input row +
    ``pred_text`` + ``decoder``), for error analysis."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for result in results:
        path = folder / f"{result.model}.{result.decoder}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for t in result.transcripts:
                f.write(json.dumps(t.to_row(), ensure_ascii=False) + "\n")
        paths.append(path)
    return paths
