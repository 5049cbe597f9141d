"""What a checkpoint needs beyond Lightning's own state for an exact resume: the sampler's
position, and per-micro-batch seeding so dropout, language dropout and the TDT omega draw repeat
after a restart."""

from __future__ import annotations

import random
from pathlib import Path

import lightning.pytorch as pl
import torch

_SEED_STRIDE = 1_000_003  # prime: (seed, rank, micro-batch) -> distinct torch seeds


def micro_batch_seed(seed: int, rank: int, micro_batch: int, world_size: int) -> int:
    """The torch seed of one rank's micro-batch: a pure function of the run position."""
    return (seed * _SEED_STRIDE + micro_batch * world_size + rank) % (2**63 - 1)


class SamplerResume(pl.Callback):
    """Saves the training sampler's position in every checkpoint and restores it on resume.

    The position saved is the number of micro-batches the training step has *processed* in the
    current epoch, not the number the DataLoader workers have prefetched, so the batches after a
    resume are exactly those the uninterrupted run would have seen next. Before every
    micro-batch, torch and Python's ``random`` are seeded from (seed, rank, micro-batch number)
    for the same reason.
    """

    def __init__(self, sampler, seed: int):
        self.sampler = sampler
        self.seed = seed
        self._trainer: pl.Trainer | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        self._trainer = trainer

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        done = trainer.fit_loop.epoch_loop.batch_progress.total.ready - 1  # this batch's number
        seed = micro_batch_seed(self.seed, trainer.global_rank, done, trainer.world_size)
        torch.manual_seed(seed)
        # The TDT loss's omega draw (NeMo's numba kernel, gpu_rnnt.py, and our CPU loss alike)
        # is `random.uniform(0, 1)` from Python's global generator: seed it too.
        random.seed(seed)

    def state_dict(self) -> dict:
        consumed = 0
        if self._trainer is not None:
            consumed = self._trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"sampler": self.sampler.state_dict(batches_consumed=consumed)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.sampler.load_state_dict(state_dict["sampler"])


def find_resume_checkpoint(checkpoint_dir: Path, resume: str | None) -> str | None:
    """``--resume PATH`` -> PATH; ``--resume`` or a checkpoint folder holding ``last.ckpt``
    -> that (so a restarted job resumes by itself)."""
    if resume and resume != "auto":
        if not Path(resume).is_file():
            raise FileNotFoundError(f"--resume {resume}: no such checkpoint file")
        return resume
    last = checkpoint_dir / "last.ckpt"
    if last.is_file():
        return str(last)
    if resume == "auto":
        raise FileNotFoundError(f"--resume: {last} does not exist; nothing to resume")
    return None
