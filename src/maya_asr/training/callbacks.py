"""Lightning callbacks of a production run: atomic checkpoints and audio throughput.

Both are small and independent of the model: they only look at the trainer and at the batch
tuple of ``lf_asr.data.schema`` (audio, audio_lens, tokens, token_lens, lang_ids).
"""

from __future__ import annotations

import os
import time
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
