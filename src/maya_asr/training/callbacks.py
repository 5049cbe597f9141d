"""Lightning callbacks of a production run: atomic checkpoints, audio throughput, plain log lines.

All are small and independent of the model: they only look at the trainer and at the batch
tuple of ``lf_asr.data.schema`` (audio, audio_lens, tokens, token_lens, lang_ids).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from lf_asr.data.schema import TARGET_SAMPLE_RATE

PARTIAL_SUFFIX = ".partial"


class AtomicModelCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that writes ``<name>.ckpt.partial`` and renames it into place.

    A reader (the checkpoint watcher that uploads to R2) therefore never sees a half-written
    ``*.ckpt``: a crash mid-write leaves only a ``.partial`` file, which the next save replaces.
    """

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        tmp = filepath + PARTIAL_SUFFIX
        trainer.save_checkpoint(tmp, self.save_weights_only)
        if trainer.is_global_zero:
            os.replace(tmp, filepath)
        trainer.strategy.barrier("atomic_checkpoint")
        # The rest mirrors ModelCheckpoint._save_checkpoint (Lightning 2.4).
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(self)


class AudioThroughput(pl.Callback):
    """Shows audio hours per wall-clock second (summed over ranks) and the number of skipped bad
    samples on the progress bar. Skips happen in DataLoader workers, which append one line per
    bad sample to ``bad_sample_log``; counting its lines now and then is all it takes."""

    def __init__(self, sample_rate: int = TARGET_SAMPLE_RATE, bad_sample_log: Path | None = None):
        self.sample_rate = sample_rate
        self.bad_sample_log = bad_sample_log
        self._seconds = 0.0
        self._t0: float | None = None

    def skipped(self) -> int:
        """Bad samples skipped so far by this rank's workers."""
        if self.bad_sample_log is None or not self.bad_sample_log.exists():
            return 0
        with self.bad_sample_log.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        audio_lens = batch[1]
        self._seconds += float(audio_lens.sum()) / self.sample_rate * trainer.world_size
        elapsed = time.perf_counter() - (self._t0 or time.perf_counter())
        if elapsed > 0:
            pl_module.log(
                "audio_h_per_s", self._seconds / 3600 / elapsed, prog_bar=True, rank_zero_only=True
            )
        if batch_idx % max(1, trainer.log_every_n_steps) == 0:
            pl_module.log("skipped", float(self.skipped()), prog_bar=True, rank_zero_only=True)


def interactive(*streams) -> bool:
    """Whether every stream (default: stdout and stderr) is a terminal. A progress bar rewrites
    its line with carriage returns, which only a terminal shows as one line: in a file (nohup,
    a tmux pipe, CI) every refresh stays, so a run that is not interactive logs plain lines."""
    streams = streams or (sys.stdout, sys.stderr)
    return all(getattr(s, "isatty", lambda: False)() for s in streams)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


class PlainProgressLog(pl.Callback):
    """One plain log line every ``every_n_steps`` optimizer steps, with the figures the progress
    bar shows (step, loss, learning rates, audio throughput, skipped samples, speed, time left)::

        step 120/2000 (6%) loss 3.214 lr 2.0e-05,2.0e-03 audio 152.6 s/s skipped 0 \
            ctc_w 0.50 1.93 step/s elapsed 0:01:02 eta 0:16:14

    Rank 0 only. Used instead of the bar when the output is not a terminal (:func:`interactive`).
    """

    def __init__(self, every_n_steps: int, log: Callable[[str], None] | None = None):
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be at least 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.emit = log or logging.getLogger("maya_asr.train").info
        self._t0: float | None = None
        self._step0 = 0
        self._last_logged = -1

    def on_train_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()
        self._step0 = trainer.global_step  # a resumed run counts its speed from here

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step  # optimizer steps: after accumulation, not micro-batches
        if step == 0 or step % self.every_n_steps or step == self._last_logged:
            return
        if not trainer.is_global_zero:
            return
        self._last_logged = step
        self.emit(self.line(trainer, outputs))

    def line(self, trainer, outputs) -> str:
        m = trainer.callback_metrics
        step, total = trainer.global_step, trainer.max_steps
        parts = (
            [f"step {step}/{total} ({100 * step / total:.0f}%)"] if total > 0 else [f"step {step}"]
        )
        loss = m.get("train_loss")
        if loss is None and isinstance(outputs, dict):
            loss = outputs.get("loss")
        if loss is not None:
            parts.append(f"loss {float(loss):.4g}")
        lrs = list(dict.fromkeys(g["lr"] for o in trainer.optimizers for g in o.param_groups))
        if lrs:
            parts.append("lr " + ",".join(f"{lr:.1e}" for lr in lrs))
        if "audio_h_per_s" in m:
            parts.append(f"audio {3600 * float(m['audio_h_per_s']):.1f} s/s")
        if "skipped" in m:
            parts.append(f"skipped {int(m['skipped'])}")
        if "ctc_loss_weight" in m:
            parts.append(f"ctc_w {float(m['ctc_loss_weight']):.2f}")
        if self._t0 is not None:
            elapsed = time.perf_counter() - self._t0
            rate = (step - self._step0) / elapsed if elapsed > 0 else 0.0
            parts.append(f"{rate:.3g} step/s elapsed {_clock(elapsed)}")
            if rate > 0 and total > 0:
                parts.append(f"eta {_clock(max(0, total - step) / rate)}")
        return " ".join(parts)
