"""Batch transcription with any NeMo ASR model restored from a ``.nemo``.

The model does the decoding through its own ``transcribe()``; this module adds what a command
line over thousands of files needs around it:

- inputs of any sample rate and channel count (see :mod:`maya_asr.inference.inputs`), loaded one
  window ahead in a background thread while the model works on the current one;
- batches of similar length (sorted within a window of ``8 x batch_size`` utterances and at most
  4 h of audio, so padding stays small and memory bounded), capped at ``max_batch_s`` of padded
  audio per call; results handed back in input order;
- the head to decode with (``tdt`` = the transducer head, ``ctc`` = the auxiliary CTC head);
- a language per utterance for models whose ``transcribe`` takes ``language=`` (ours does), and a
  clear error for one that does not;
- long audio: a batch holding an utterance longer than ``long_audio_s`` runs with NeMo's local
  attention (``change_attention_model("rel_pos_local_attn", [128, 128])``): memory grows
  linearly with length instead of quadratically, and the whole utterance is decoded — never
  truncated. The switch happens only when the mode changes, and the model's own attention is
  restored at the end of the run. We chose it over chunking because it needs no
  stitching of texts at chunk borders and is what NeMo documents for Parakeet long-form audio.
- word timestamps from either head, undecodable inputs skipped and counted, RTFx figures.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maya_asr.inference.inputs import AudioInput, InputError, read_audio
from maya_asr.languages import get_language

log = logging.getLogger(__name__)

DECODERS = ("tdt", "ctc")
LOCAL_ATTENTION = "rel_pos_local_attn"
WINDOW_BATCHES = 8  # a window of this many batches is loaded, sorted by length and decoded
WINDOW_MAX_S = 4 * 3600.0  # ...or fewer, so one window never holds more than 4 h (~0.9 GB) of audio


@dataclass(frozen=True)
class TranscribeOptions:
    """How to transcribe; validated on creation."""

    decoder: str = "tdt"  # "tdt": the transducer head; "ctc": the auxiliary CTC head
    language: str | None = None  # one language code for every input (model must accept one)
    language_from_rows: bool = False  # use each manifest row's lang/language field instead
    batch_size: int = 16  # utterances per model call
    timestamps: bool = False  # word start/end times in seconds
    long_audio_s: float = 40.0  # a batch with a longer utterance runs with local attention
    local_context: tuple[int, int] = (128, 128)  # left/right context of local attention, frames
    max_bad: int = 10  # undecodable inputs skipped (and reported) before the run stops
    max_batch_s: float = 1800.0  # cap on padded audio per model call: batch x longest, seconds

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        if self.language is not None:
            get_language(self.language)
            if self.language_from_rows:
                raise ValueError("give either a language or language_from_rows, not both")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.long_audio_s <= 0:
            raise ValueError(f"long_audio_s must be positive, got {self.long_audio_s}")
        if min(self.local_context) < 1:
            raise ValueError(
                f"local_context must be two positive frame counts: {self.local_context}"
            )
        if self.max_batch_s <= 0:
            raise ValueError(f"max_batch_s must be positive, got {self.max_batch_s}")
        if self.max_bad < 0:
            raise ValueError(f"max_bad must be >= 0, got {self.max_bad}")


@dataclass
class Transcript:
    """The result for one input."""

    item: AudioInput
    text: str  # the decoded text
    decoder: str  # "tdt" or "ctc"
    duration: float  # seconds of audio
    frames: int  # encoder frames decoded (the whole utterance: ceil(duration / frame shift))
    language: str | None  # the language passed to the model, if any
    local_attention: bool  # decoded with local attention (long audio)
    words: list[dict] | None = None  # [{"word", "start", "end"}] when timestamps were asked

    def to_row(self) -> dict:
        """The output JSON line: the input row plus ``pred_text`` and the decoder used."""
        row = dict(self.item.row)
        row.setdefault("duration", round(self.duration, 3))
        row["pred_text"] = self.text
        row["decoder"] = self.decoder
        if self.words is not None:
            row["words"] = self.words
        return row


@dataclass
class RunStats:
    """What a run did; filled in while :func:`transcribe_inputs` runs."""

    utterances: int = 0
    audio_seconds: float = 0.0
    model_seconds: float = 0.0  # wall time inside the model's transcribe() calls
    local_attention_utterances: int = 0
    bad: list[str] = field(default_factory=list)  # "<where>: <why>" per skipped input

    @property
    def rtfx(self) -> float | None:
        """Seconds of audio transcribed per second of model time (higher is faster)."""
        return self.audio_seconds / self.model_seconds if self.model_seconds > 0 else None


# ---------------------------------------------------------------- the model


def load_model(path: str, device: str = "auto", quiet: bool = True):
    """Restore a ``.nemo`` (any NeMo ASR model class) onto ``device`` ("auto", "cpu", "cuda").

    ``quiet`` lowers NeMo's logging to warnings (its restore and per-call info lines would bury
    the progress bar).
    """
    import torch
    from nemo.collections.asr.models import ASRModel
    from nemo.utils import logging as nemo_logging

    if quiet:
        nemo_logging.set_verbosity(nemo_logging.WARNING)
    if not Path(path).is_file():
        raise ValueError(f"model {path} does not exist; give the path of a .nemo file")

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no GPU; use --device cpu")
    model = ASRModel.restore_from(path, map_location=torch.device(device))
    return model.eval()


def model_heads(model) -> tuple[str, ...]:
    """The heads a model can decode with: ("tdt", "ctc") for a hybrid, one for the others."""
    from nemo.collections.asr.models import EncDecCTCModel

    heads = []
    if hasattr(model, "joint"):
        heads.append("tdt")
    if hasattr(model, "ctc_decoder") or isinstance(model, EncDecCTCModel):
        heads.append("ctc")
    return tuple(heads)


def use_decoder(model, decoder: str) -> None:
    """Make ``decoder`` ("tdt" or "ctc") the head that ``model.transcribe`` uses."""
    heads = model_heads(model)
    if decoder not in heads:
        raise ValueError(
            f"{type(model).__name__} has no {decoder} head (it has: {', '.join(heads)}); "
            f"choose --decoder {heads[0]}"
        )
    if len(heads) > 1:  # hybrid: switch NeMo's current decoder, keeping each head's config
        model.change_decoding_strategy(
            decoder_type="rnnt" if decoder == "tdt" else "ctc", verbose=False
        )


def accepts_language(model) -> bool:
    """Whether ``model.transcribe`` takes a ``language=`` argument (Maya models do)."""
    return "language" in inspect.signature(model.transcribe).parameters


def sample_rate_of(model) -> int:
    return int(model.cfg.get("sample_rate", None) or model.cfg.preprocessor.sample_rate)


def frame_shift_s(model) -> float:
    """Seconds per encoder output frame: window stride x subsampling factor (0.08 s usually)."""
    stride = float(model.cfg.preprocessor.get("window_stride", 0.01))
    return stride * int(getattr(model.encoder, "subsampling_factor", 1))


def _complete_encoder_config(encoder) -> None:
    """NeMo's ``change_attention_model`` rebuilds attention from the encoder's config and fails
    on configs that left a field to its default (``pos_emb_max_len`` often is): fill such fields
    in with ConformerEncoder's defaults."""
    from omegaconf import open_dict

    defaults = inspect.signature(type(encoder).__init__).parameters
    needed = ("d_model", "n_heads", "dropout", "dropout_emb", "dropout_att", "pos_emb_max_len")
    with open_dict(encoder._cfg):
        for name in needed:
            if name not in encoder._cfg and name in defaults:
                encoder._cfg[name] = defaults[name].default


class AttentionSwitch:
    """Moves the encoder between its own full attention and local attention.

    Rebuilding the attention modules costs real time on a 42-layer encoder, so :meth:`set` only
    acts when the mode changes (a run of long batches switches once), and :meth:`restore`
    puts the original attention back at the end of a run.
    """

    def __init__(self, model, context: tuple[int, int]):
        self.model = model
        self.context = list(context)
        encoder = getattr(model, "encoder", None)
        self.original = getattr(encoder, "self_attention_model", None)
        self.original_context = list(getattr(encoder, "att_context_size", []) or [])
        self.local = self.original == LOCAL_ATTENTION  # the model may be configured so already
        self.supported = self.original == "rel_pos" and hasattr(encoder, "change_attention_model")
        self._warned = False

    def set(self, local: bool) -> bool:
        """Ask for local (True) or the original (False) attention; returns whether the encoder
        now runs local attention."""
        if self.original == LOCAL_ATTENTION or local == self.local:
            return self.local
        if not self.supported:
            if not self._warned:
                log.warning(
                    "encoder attention %r cannot switch to local attention: long audio runs "
                    "with full attention (memory grows with the square of its length)",
                    self.original,
                )
                self._warned = True
            return False
        if local:
            _complete_encoder_config(self.model.encoder)
            self.model.change_attention_model(LOCAL_ATTENTION, self.context, update_config=False)
        else:
            self.model.change_attention_model(
                self.original, self.original_context, update_config=False
            )
        self.local = local
        return local

    def restore(self) -> None:
        self.set(False)


# ---------------------------------------------------------------- transcription


def _check_languages(model, inputs: Sequence[AudioInput], options: TranscribeOptions) -> None:
    if (options.language or options.language_from_rows) and not accepts_language(model):
        raise ValueError(
            f"{type(model).__name__}.transcribe() takes no language; drop --language "
            "(only Maya models, with a language embedding, use it)"
        )
    if options.language_from_rows:
        for item in inputs:
            if item.language is None:
                raise InputError(f"{item.where}: no 'lang' or 'language' field to take it from")
            try:
                get_language(item.language)
            except ValueError as e:
                raise InputError(f"{item.where}: {e}") from None


def _load_window(
    inputs: Sequence[AudioInput], start: int, count: int, rate: int
) -> tuple[int, list[np.ndarray | InputError]]:
    """Load up to ``count`` inputs from ``start``, stopping early past WINDOW_MAX_S of audio;
    returns the index after the last one loaded and the audio (or the error) of each."""
    out: list[np.ndarray | InputError] = []
    seconds, end = 0.0, min(start + count, len(inputs))
    i = start
    while i < end and seconds < WINDOW_MAX_S:
        try:
            out.append(read_audio(inputs[i], rate))
            seconds += len(out[-1]) / rate
        except InputError as e:
            out.append(e)
        i += 1
    return i, out


def plan_batches(
    entries: Sequence[tuple[str | None, int]], batch_size: int, max_batch_samples: int
) -> list[list[int]]:
    """Group ``(language, num_samples)`` entries into model calls; returns lists of indices.

    Longest first within each language, so a batch holds similar lengths (little padding) and
    long utterances share batches; one language per batch (the model takes one per call); at
    most ``batch_size`` entries and ``max_batch_samples`` padded samples (count x longest) per
    batch — a single longer entry still gets a batch of its own.
    """
    order = sorted(range(len(entries)), key=lambda i: (entries[i][0] or "", -entries[i][1]))
    batches: list[list[int]] = []
    for i in order:
        lang = entries[i][0]
        current = batches[-1] if batches else None
        if (
            current is not None
            and entries[current[0]][0] == lang
            and len(current) < batch_size
            and (len(current) + 1) * entries[current[0]][1] <= max_batch_samples
        ):
            current.append(i)
        else:
            batches.append([i])
    return batches


def _word_times(hypothesis) -> list[dict]:
    stamps = hypothesis.timestamp.get("word", []) if isinstance(hypothesis.timestamp, dict) else []
    return [
        {"word": w["word"], "start": round(float(w["start"]), 3), "end": round(float(w["end"]), 3)}
        for w in stamps
    ]


def _decode_batch(model, audio: list[np.ndarray], language: str | None, options: TranscribeOptions):
    kwargs = {
        "batch_size": len(audio),
        "return_hypotheses": True,
        "verbose": False,
        "timestamps": options.timestamps,
    }
    if language is not None:
        kwargs["language"] = language
    hypotheses = model.transcribe(audio, **kwargs)
    if isinstance(hypotheses, tuple):  # (best, all-beams) of older RNNT models
        hypotheses = hypotheses[0]
    return hypotheses


def transcribe_inputs(
    model,
    inputs: Sequence[AudioInput],
    options: TranscribeOptions,
    *,
    stats: RunStats | None = None,
    progress: bool = True,
) -> Iterator[Transcript]:
    """Transcribe ``inputs`` with ``model``; yields one :class:`Transcript` per input, in order.

    Undecodable inputs are skipped and listed in ``stats.bad``; past ``options.max_bad`` of them
    the run stops with :class:`InputError`.
    """
    from tqdm import tqdm

    stats = stats if stats is not None else RunStats()
    _check_languages(model, inputs, options)
    use_decoder(model, options.decoder)
    rate = sample_rate_of(model)
    window = options.batch_size * WINDOW_BATCHES
    attention = AttentionSwitch(model, options.local_context)
    bar = tqdm(
        total=len(inputs), unit="utt", desc=f"transcribe ({options.decoder})", disable=not progress
    )
    # one loader thread reads and resamples the next window while the model decodes this one
    with ThreadPoolExecutor(max_workers=1) as loader:
        try:
            start = 0
            pending = loader.submit(_load_window, inputs, 0, window, rate) if inputs else None
            while pending is not None:
                end, loaded = pending.result()
                pending = (
                    loader.submit(_load_window, inputs, end, window, rate)
                    if end < len(inputs)
                    else None
                )
                items = inputs[start:end]
                yield from _transcribe_window(model, items, loaded, options, attention, stats)
                bar.update(len(items))
                start = end
                if stats.rtfx:
                    bar.set_postfix(
                        audio_h=f"{stats.audio_seconds / 3600:.2f}", rtfx=f"{stats.rtfx:.0f}"
                    )
        finally:
            attention.restore()
            bar.close()


def _transcribe_window(model, items, loaded, options, attention, stats) -> Iterator[Transcript]:
    rate = sample_rate_of(model)
    good: list[tuple[int, str | None, np.ndarray]] = []
    for i, (item, audio) in enumerate(zip(items, loaded, strict=True)):
        if isinstance(audio, InputError):
            stats.bad.append(str(audio))
            if len(stats.bad) > options.max_bad:
                raise InputError(
                    f"{len(stats.bad)} inputs could not be decoded (limit --max-bad "
                    f"{options.max_bad}):\n  " + "\n  ".join(stats.bad[:10])
                )
            continue
        lang = options.language or (item.language if options.language_from_rows else None)
        good.append((i, lang, audio))
    plan = plan_batches(
        [(lang, len(a)) for _, lang, a in good],
        options.batch_size,
        int(options.max_batch_s * rate),
    )
    results: dict[int, Transcript] = {}
    for batch in plan:
        part = [good[j] for j in batch]
        lang = part[0][1]
        audio = [a for _, _, a in part]
        local = attention.set(max(len(a) for a in audio) / rate > options.long_audio_s)
        t0 = time.perf_counter()
        hypotheses = _decode_batch(model, audio, lang, options)
        stats.model_seconds += time.perf_counter() - t0
        for (i, _, a), hyp in zip(part, hypotheses, strict=True):
            duration = len(a) / rate
            stats.utterances += 1
            stats.audio_seconds += duration
            stats.local_attention_utterances += int(local)
            results[i] = Transcript(
                item=items[i],
                text=hyp.text,
                decoder=options.decoder,
                duration=duration,
                frames=int(hyp.length),
                language=lang,
                local_attention=local,
                words=_word_times(hyp) if options.timestamps else None,
            )
    for i in sorted(results):
        yield results[i]


def write_transcripts(transcripts: Iterator[Transcript], path: str | os.PathLike) -> int:
    """Write one JSON line per transcript to ``path`` (via ``<path>.partial``, renamed when
    complete, so a crash never leaves a truncated file that looks finished); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    n = 0
    with partial.open("w", encoding="utf-8") as f:
        for t in transcripts:
            f.write(json.dumps(t.to_row(), ensure_ascii=False) + "\n")
            n += 1
    os.replace(partial, path)
    return n
