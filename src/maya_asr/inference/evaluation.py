"""Evaluate ``.nemo`` models on a manifest: every head of every model, scored side by side.

A *system* is one model decoding with one head (``tdt`` or ``ctc``). For each system the whole
manifest is transcribed, scored with :func:`maya_asr.inference.error_rates.score_utterances`
(overall and per language, under one :class:`ScoringPolicy`) and timed (RTFx: seconds of audio
per second spent in the model's ``transcribe``; audio decoding and resampling are not counted,
and one untimed warm-up batch runs first so one-off set-up does not count either).

A model that takes a language (ours) is scored twice per head by default (language mode
``both``): with each row's language, and *language-free* (``language=None``, what every stock
NeMo client does: the model's own language-ID when it has one, else the language-free path).
The report then shows the two side by side. Models without a language are scored language-free.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from maya_asr.inference.error_rates import ALL, Score, score_utterances
from maya_asr.inference.inputs import AudioInput, InputError
from maya_asr.inference.transcriber import (
    RunStats,
    TranscribeOptions,
    Transcript,
    _load_window,
    accepts_language,
    load_model,
    model_heads,
    plan_batches,
    sample_rate_of,
    transcribe_inputs,
    write_transcripts,
)
from maya_asr.text.scoring import DEFAULT_POLICY, ScoringPolicy

UNKNOWN_LANGUAGE = "unknown"  # scoring bucket of rows without a language field
# both: each row's language when the model takes one, and language-free; auto: only the former
# (language-free for models that take none); none: only language-free.
LANGUAGE_MODES = ("both", "auto", "none")


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
    takes_language: bool = False  # the model's transcribe takes a language (ours)

    @property
    def name(self) -> str:
        """``model/head``; ``model/head/free`` for the language-free run of a model that takes a
        language (a model that takes none is always language-free: no suffix)."""
        free = self.takes_language and not self.language_given
        return f"{self.model}/{self.decoder}" + ("/free" if free else "")

    @property
    def file_stem(self) -> str:
        return self.name.replace("/", ".")


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
    language: str = "both",
    policy: ScoringPolicy = DEFAULT_POLICY,
    progress: bool = True,
    model=None,
) -> list[SystemResult]:
    """Transcribe ``inputs`` with each head of one model and score them.

    ``decoders``: the heads to run (default: every head the model has). ``language``: "auto"
    passes each row's language when the model takes one and every row has one; "none" never
    does; "both" (the default) runs both ways where "auto" would pass languages. ``model``: an
    already loaded model (``model_path`` is then only a label). Results: per head, the
    language-given run (when there is one) then the language-free one.
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
    takes = accepts_language(model)
    can_give = takes and all(item.language is not None for item in inputs)
    given_modes = {"both": [True, False], "auto": [True], "none": [False]}[language]
    given_modes = [g for g in given_modes if can_give or not g] or [False]
    results = []
    for decoder in decoders:
        for given in given_modes:
            options = TranscribeOptions(
                decoder=decoder, batch_size=batch_size, language_from_rows=given
            )
            list(transcribe_inputs(model, inputs[:1], options, progress=False))  # warm-up
            stats = RunStats()
            transcripts = list(
                transcribe_inputs(model, inputs, options, stats=stats, progress=progress)
            )
            triples = (
                (t.item.language or UNKNOWN_LANGUAGE, t.item.text, t.text) for t in transcripts
            )
            results.append(
                SystemResult(
                    model=label or Path(model_path).stem,
                    model_path=str(model_path),
                    decoder=decoder,
                    scores=score_utterances(triples, policy),
                    stats=stats,
                    language_given=given,
                    transcripts=transcripts,
                    takes_language=takes,
                )
            )
    return results


def language_id_accuracy(
    model, inputs: Sequence[AudioInput], batch_size: int = 16
) -> dict[str, dict] | None:
    """How often the model's language-ID head (``identify_language``) names each row's language:
    ``{"all" | lang: {"utterances", "correct", "accuracy"}}`` in the model's language order,
    ``"confusions"`` ``{lang: {guessed: count}}`` and ``"skipped"`` (rows whose audio could not
    be read). None for a model without such a head (or no row with a language). This is what
    decides the language-free path of a model whose head supplies the language vector. Audio is
    read a window at a time and batched by length, as transcription does."""
    import numpy as np
    import torch

    if getattr(model, "lid_head", None) is None:
        return None
    rows = [item for item in inputs if item.language is not None]
    if not rows:
        return None  # nothing to check the head against
    languages, rate = list(model.cfg.languages), sample_rate_of(model)
    max_samples = int(TranscribeOptions().max_batch_s * rate)
    counts: dict[str, dict] = {}
    confusions: dict[str, dict[str, int]] = {}
    skipped, start = 0, 0
    while start < len(rows):
        end, loaded = _load_window(rows, start, len(rows) - start, rate)
        good = [(rows[start + j], a) for j, a in enumerate(loaded) if not isinstance(a, Exception)]
        skipped += len(loaded) - len(good)
        for batch in plan_batches([(None, len(a)) for _, a in good], batch_size, max_samples):
            audio = [good[i][1] for i in batch]
            padded = np.zeros((len(audio), max(map(len, audio))), np.float32)
            for j, a in enumerate(audio):
                padded[j, : len(a)] = a
            lens = torch.tensor([len(a) for a in audio], device=model.device)
            with torch.no_grad():
                probs = model.identify_language(torch.from_numpy(padded).to(model.device), lens)
            for i, guess in zip(batch, probs.argmax(dim=-1).tolist(), strict=True):
                lang, guessed = good[i][0].language, languages[guess]
                for key in (ALL, lang):
                    c = counts.setdefault(key, {"utterances": 0, "correct": 0})
                    c["utterances"] += 1
                    c["correct"] += int(guessed == lang)
                confusions.setdefault(lang, {}).setdefault(guessed, 0)
                confusions[lang][guessed] += 1
        start = end
    for c in counts.values():
        c["accuracy"] = c["correct"] / c["utterances"]
    # the model's language order, then any other language the rows name
    order = [ALL, *languages, *sorted(set(counts) - {ALL, *languages})]
    ordered = {k: counts[k] for k in order if k in counts}
    return {**ordered, "confusions": confusions, "skipped": skipped}


def write_predictions(results: Sequence[SystemResult], folder: str | os.PathLike) -> list[Path]:
    """One JSON-lines file per system: ``<folder>/<model>.<decoder>[.free].jsonl`` (input row +
    ``pred_text`` + ``decoder``), for error analysis."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for result in results:
        path = folder / f"{result.file_stem}.jsonl"
        write_transcripts(iter(result.transcripts), path)
        paths.append(path)
    return paths
