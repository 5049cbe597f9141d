"""Pre-flight: run the most expensive batch each duration bucket can produce before step 1.

The idea is icefall's ``scan_pessimistic_batches_for_oom``: a 5-day job should not die at hour
30 on the first batch that happens to be the largest. For every bucket we build the worst batch
the caps allow — as many clips of the bucket's upper edge as ``max_batch_dur`` and the bucket's
sample cap admit, each with as many tokens as ``max_tokens_in_batch`` leaves — and run forward and
backward through the encoder (unfrozen), the TDT joint + loss and the CTC head. On out-of-memory
we search the largest batch that fits and say which cap to lower, and to what.

Pre-flight must leave the model exactly as it found it: a train-mode forward moves every
BatchNorm's running statistics (momentum 0.1, so five noise batches would make ~41% of the
pretrained encoder's statistics noise). :func:`preserved_state` snapshots every parameter and
buffer and every module's train/eval mode, and restores them bit for bit afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from lf_asr.data.schema import TARGET_SAMPLE_RATE

OOM_MARKERS = ("out of memory", "can't allocate memory", "DefaultCPUAllocator")


@dataclass(frozen=True)
class WorstBatch:
    """The most expensive micro-batch of one duration bucket."""

    bucket: tuple[float, float]  # the bucket's duration range in seconds
    batch_size: int  # clips in the batch
    seconds: float  # duration of every clip (the bucket's upper edge)
    tokens: int  # tokens of every transcript

    def describe(self) -> str:
        lo, hi = self.bucket
        return f"bucket {lo:g}-{hi:g} s: {self.batch_size} x {self.seconds:g} s, {self.tokens} tok"


class PreflightError(RuntimeError):
    """A worst-case batch does not fit; the message says which cap to lower and to what."""


def worst_batches(
    bucket_edges: Sequence[float],
    max_batch_dur: float,
    max_batch_size: int,
    max_tokens_in_batch: int,
    bucket_batch_sizes: Sequence[int] | None = None,
    joint=None,
) -> list[WorstBatch]:
    """One :class:`WorstBatch` per bucket under the sampler's caps (pure function).
    ``joint`` (a ``batch_planning.JointCap``): the sampler never builds a batch over it, so the
    worst batch is shrunk (fewer clips, then fewer tokens) until it fits too."""
    out = []
    for b, (lo, hi) in enumerate(itertools.pairwise(bucket_edges)):
        cap = bucket_batch_sizes[b] if bucket_batch_sizes else max_batch_size
        size = max(1, min(cap, math.floor(max_batch_dur / hi), max_tokens_in_batch))
        tokens = max(1, max_tokens_in_batch // size)
        if joint is not None:
            while size > 1 and joint.elements(size, hi, tokens) > joint.max_elements:
                size -= 1
                tokens = max(1, max_tokens_in_batch // size)
            while tokens > 1 and joint.elements(size, hi, tokens) > joint.max_elements:
                tokens -= 1
        out.append(WorstBatch((lo, hi), size, hi, tokens))
    return out


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in OOM_MARKERS)


def synthetic_batch(worst: WorstBatch, batch_size: int, vocab_size: int, device) -> tuple:
    """Random audio and tokens of the worst batch's shape, as the loader's 5-tuple."""
    gen = torch.Generator().manual_seed(0)
    samples = int(worst.seconds * TARGET_SAMPLE_RATE)
    audio = torch.randn(batch_size, samples, generator=gen) * 0.1
    tokens = torch.randint(1, vocab_size, (batch_size, worst.tokens), generator=gen)
    return tuple(
        t.to(device)
        for t in (
            audio,
            torch.full((batch_size,), samples, dtype=torch.long),
            tokens,
            torch.full((batch_size,), worst.tokens, dtype=torch.long),
            torch.zeros(batch_size, dtype=torch.long),
        )
    )


def model_step(model, batch, autocast_dtype: torch.dtype | None = None) -> None:
    """Forward + backward of the training losses on ``batch``, encoder unfrozen; grads cleared."""
    audio, audio_lens, tokens, token_lens, lang_ids = batch
    device_type = audio.device.type
    autocast = (
        torch.autocast(device_type, dtype=autocast_dtype)
        if autocast_dtype
        else contextlib.nullcontext()
    )
    was_frozen = model.encoder_frozen
    model.set_encoder_frozen(False)
    try:
        with autocast, model.languages_of_batch(lang_ids):
            encoded, encoded_len = model.forward(input_signal=audio, input_signal_length=audio_lens)
            decoder, target_len, _ = model.decoder(targets=tokens, target_length=token_lens)
            if model.joint.fuse_loss_wer:
                loss, _, _, _ = model.joint(
                    encoder_outputs=encoded,
                    decoder_outputs=decoder,
                    encoder_lengths=encoded_len,
                    transcripts=tokens,
                    transcript_lengths=token_lens,
                    compute_wer=False,
                )
            else:
                joint = model.joint(encoder_outputs=encoded, decoder_outputs=decoder)
                loss = model.loss(
                    log_probs=joint,
                    targets=tokens,
                    input_lengths=encoded_len,
                    target_lengths=target_len,
                )
            log_probs = model.ctc_decoder(encoder_output=encoded)
            loss = loss + model.ctc_loss(
                log_probs=log_probs,
                targets=tokens,
                input_lengths=encoded_len,
                target_lengths=token_lens,
            )
        loss.backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.set_encoder_frozen(was_frozen)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _state_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer, non-persistent buffers included (state_dict skips those)."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


@contextlib.contextmanager
def preserved_state(model: torch.nn.Module):
    """Within the block the model may change; afterwards every parameter and buffer holds its
    old bits again and every module its old train/eval mode. The copy lives on the CPU (the
    1.1B model's 4.5 GB fit there, not beside the worst batch on the GPU)."""
    tensors = _state_tensors(model)
    snapshot = {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}
    modes = {name: m.training for name, m in model.named_modules()}
    try:
        yield
    finally:
        with torch.no_grad():
            for key, value in tensors.items():
                value.copy_(snapshot[key])
        for name, module in model.named_modules():
            module.training = modes[name]


def _largest_fitting(step: Callable[[int], None], upper: int) -> int:
    """Largest batch size in [0, upper) for which ``step`` does not run out of memory."""
    lo, hi = 0, upper  # lo fits (0 trivially), hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            step(mid)
            lo = mid
        except Exception as e:  # only OOM is expected; others are re-raised
            if not is_oom(e):
                raise
            hi = mid
    return lo


def advice(worst: WorstBatch, fits: int, max_batch_dur: float, max_tokens: int) -> str:
    """One paragraph: what failed, the largest batch that fits, and the caps that give it."""
    if fits == 0:
        return (
            f"pre-flight: even one clip of {worst.seconds:g} s with {worst.tokens} tokens runs out "
            f"of memory ({worst.describe()}). Lower the last bucket edge (data.bucket_edges) "
            f"below {worst.seconds:g} s, lower --max-tokens-in-batch, or shrink the model."
        )
    return (
        f"pre-flight: out of memory on {worst.describe()}; {fits} clips fit. Lower "
        f"--max-batch-dur from {max_batch_dur:g} to {fits * worst.seconds:g} (or the bucket's "
        f"--max-batch-size to {fits}), or --max-tokens-in-batch from {max_tokens} to "
        f"{fits * worst.tokens}."
    )


def run_preflight(
    model,
    worst: Sequence[WorstBatch],
    *,
    max_batch_dur: float,
    max_tokens_in_batch: int,
    vocab_size: int,
    autocast_dtype: torch.dtype | None = None,
    step_fn: Callable | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """Run every worst batch; raise :class:`PreflightError` with advice on the first OOM.

    The model's parameters, buffers and train/eval modes are restored afterwards, OOM or not."""
    device = next(model.parameters()).device
    step_fn = step_fn or (lambda batch: model_step(model, batch, autocast_dtype))
    with preserved_state(model):
        _run_all(worst, step_fn, device, vocab_size, max_batch_dur, max_tokens_in_batch, log)


def _run_all(worst, step_fn, device, vocab_size, max_batch_dur, max_tokens_in_batch, log) -> None:
    for wb in worst:

        def step(size: int, wb: WorstBatch = wb) -> None:
            step_fn(synthetic_batch(wb, size, vocab_size, device))

        try:
            step(wb.batch_size)
        except Exception as e:  # only OOM is turned into advice
            if not is_oom(e):
                raise
            fits = _largest_fitting(step, wb.batch_size)
            raise PreflightError(advice(wb, fits, max_batch_dur, max_tokens_in_batch)) from None
        log(f"pre-flight ok: {wb.describe()}")
