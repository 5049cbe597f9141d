"""Training schedules as pure functions of the optimizer step.

Both schedules take Lightning's ``trainer.global_step``, which counts *optimizer* steps: with
gradient accumulation the micro-batches of one update share one step, and the value is restored
from the checkpoint on resume, so a resumed run continues the schedule where it stopped.
"""

from __future__ import annotations


def ctc_weight_at(step: int, warmup_steps: int, final_weight: float) -> float:
    """Auxiliary CTC loss weight at optimizer ``step``: linear 0 -> ``final_weight``.

    The weight is ``final_weight * step / warmup_steps`` for ``step < warmup_steps`` and
    ``final_weight`` afterwards; ``warmup_steps == 0`` means no warmup.
    """
    if step < 0 or warmup_steps < 0:
        raise ValueError(f"step ({step}) and warmup_steps ({warmup_steps}) must be >= 0")
    if not 0.0 <= final_weight <= 1.0:
        raise ValueError(f"final CTC weight {final_weight} must lie in [0, 1]")
    if warmup_steps == 0 or step >= warmup_steps:
        return float(final_weight)
    return float(final_weight) * step / warmup_steps


def encoder_frozen_at(step: int, freeze_steps: int) -> bool:
    """Whether the encoder is frozen at optimizer ``step``: the first ``freeze_steps`` updates."""
    if step < 0 or freeze_steps < 0:
        raise ValueError(f"step ({step}) and freeze_steps ({freeze_steps}) must be >= 0")
    return step < freeze_steps
