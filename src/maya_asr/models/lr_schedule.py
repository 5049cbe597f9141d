"""GroupCosine: warm-up then cosine decay per optimizer param group, with an encoder re-warm-up.

Why not NeMo's ``CosineAnnealing``: it decays every group to one absolute ``min_lr``, so with
encoder LR 2e-5 and head LR 1e-3 the 50:1 ratio of stage 1 becomes 34 at 100K steps and 1 at
200K (the encoder LR only ever halves), and its warm-up ends while the encoder is still frozen, so
the pretrained encoder meets its full LR with empty Adam moments at the unfreeze. Here:

* every group follows the same shape relative to its own peak (the LR the group was configured
  with): linear warm-up over ``warmup_steps``, then cosine to ``min_lr_ratio`` x peak at
  ``max_steps``; the ratio between groups therefore holds at every step;
* the ``encoder`` group has LR 0 while frozen (its gradients are dropped anyway) and ramps
  linearly over ``encoder_rewarmup_steps`` after the unfreeze, on top of the shared shape.

The LR is a pure function of the optimizer step (:func:`group_lr`), so the start-up table
(:func:`lr_table`), the tests and the scheduler agree by construction. Groups are named by the
model (``heads``, ``encoder``, ``lang_embedding``; see ``MayaHybridTDTCTCModel``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

NAME = "GroupCosine"
GROUP_KEY = "group_name"  # param-group key the model sets
ENCODER = "encoder"
HEADS = "heads"  # every parameter not in a named group (decoder, joint, CTC head)


@dataclass(frozen=True)
class GroupCosineSpec:
    """The schedule's settings (``model.optim.sched`` plus the model's encoder freeze)."""

    max_steps: int
    warmup_steps: int = 0
    min_lr_ratio: float = 0.01
    encoder_rewarmup_steps: int = 1000
    encoder_freeze_steps: int = 0

    def problems(self) -> list[str]:
        """Each inconsistency, phrased with its fix (empty when the schedule is sound)."""
        out = []
        if self.max_steps < 1:
            out.append(f"trainer.max_steps={self.max_steps}: GroupCosine needs at least 1 step")
        if self.warmup_steps < 0 or self.encoder_rewarmup_steps < 0:
            out.append("model.optim.sched.warmup_steps and encoder_rewarmup_steps must be >= 0")
        if self.warmup_steps > self.max_steps:
            out.append(
                f"model.optim.sched.warmup_steps={self.warmup_steps} exceeds trainer.max_steps="
                f"{self.max_steps}: lower the warm-up or raise --max-steps"
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            out.append(
                f"model.optim.sched.min_lr_ratio={self.min_lr_ratio}: use a fraction of each "
                "group's peak LR in [0, 1] (e.g. 0.01)"
            )
        if self.encoder_freeze_steps > 0:
            end = self.encoder_freeze_steps + self.encoder_rewarmup_steps
            if end > self.max_steps:
                out.append(
                    f"encoder freeze ({self.encoder_freeze_steps}) + re-warm-up "
                    f"({self.encoder_rewarmup_steps}) = {end} steps exceeds trainer.max_steps="
                    f"{self.max_steps}: the encoder would never reach its LR. Lower "
                    "--freeze-encoder-steps or model.optim.sched.encoder_rewarmup_steps, or "
                    "raise --max-steps"
                )
        return out


def shape_at(step: int, spec: GroupCosineSpec) -> float:
    """The factor every group shares at optimizer ``step``: warm-up, then cosine to the floor."""
    if spec.warmup_steps > 0 and step < spec.warmup_steps:
        return (step + 1) / spec.warmup_steps
    span = max(1, spec.max_steps - spec.warmup_steps)
    progress = min(1.0, (step - spec.warmup_steps) / span)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return spec.min_lr_ratio + (1.0 - spec.min_lr_ratio) * cosine


def group_lr(group: str, peak: float, step: int, spec: GroupCosineSpec) -> float:
    """LR of param group ``group`` (peak LR ``peak``) at optimizer ``step`` (0-based)."""
    lr = peak * shape_at(step, spec)
    if group == ENCODER and spec.encoder_freeze_steps > 0:
        since = step - spec.encoder_freeze_steps
        if since < 0:
            return 0.0  # frozen: its gradients are dropped, the 0 says so in the logs
        if spec.encoder_rewarmup_steps > 0:
            lr *= min(1.0, (since + 1) / spec.encoder_rewarmup_steps)
    return lr


class GroupCosine(torch.optim.lr_scheduler.LRScheduler):
    """The schedule above as a PyTorch scheduler, stepped once per optimizer step (NeMo/Lightning
    ``interval: step``). Peaks are the groups' LRs at construction (``base_lrs``)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        max_steps: int,
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.01,
        encoder_rewarmup_steps: int = 1000,
        encoder_freeze_steps: int = 0,
        last_epoch: int = -1,
    ):
        self.spec = GroupCosineSpec(
            int(max_steps), int(warmup_steps), float(min_lr_ratio), int(encoder_rewarmup_steps),
            int(encoder_freeze_steps),
        )  # fmt: skip
        if problems := self.spec.problems():
            raise ValueError("; ".join(problems))
        self.group_names = [g.get(GROUP_KEY, HEADS) for g in optimizer.param_groups]
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict:
        """The position (``last_epoch``, peaks), not the settings: a resumed run follows the
        schedule of its config (e.g. a raised --max-steps), from the step it stopped at."""
        state = super().state_dict()
        for key in ("spec", "group_names"):
            state.pop(key, None)
        return state

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        return [
            group_lr(name, peak, step, self.spec)
            for name, peak in zip(self.group_names, self.base_lrs, strict=True)
        ]


def spec_of(cfg) -> GroupCosineSpec | None:
    """The GroupCosine spec of a full training config (``model`` + ``trainer``), None when the
    config uses another scheduler or none."""
    sched = (cfg.model.get("optim") or {}).get("sched")
    if not sched or sched.get("name") != NAME:
        return None
    return GroupCosineSpec(
        max_steps=int(cfg.trainer.max_steps),
        warmup_steps=int(sched.get("warmup_steps", 0) or 0),
        min_lr_ratio=float(sched.get("min_lr_ratio", 0.01)),
        encoder_rewarmup_steps=int(sched.get("encoder_rewarmup_steps", 1000)),
        encoder_freeze_steps=int(cfg.model.get("encoder_freeze_steps", 0) or 0),
    )


def peaks_of(cfg) -> dict[str, float]:
    """{group: peak LR} of a training config: heads = optim.lr, named groups their own lr."""
    head = float(cfg.model.optim.lr)
    out = {HEADS: head}
    for name, group in (cfg.model.get("optim_param_groups") or {}).items():
        out[str(name)] = float(group.get("lr", head))
    return out


def validate_schedule(cfg) -> None:
    """Raise ``ValueError`` with the fix when the LRs or the schedule cannot work (start-up)."""
    problems = []
    for name, peak in peaks_of(cfg).items():
        if peak <= 0:
            flag = {HEADS: "--head-lr", ENCODER: "--encoder-lr"}.get(name, f"{name} lr")
            problems.append(f"{flag}={peak}: learning rates must be > 0")
    sched = (cfg.model.get("optim") or {}).get("sched")
    if sched and sched.get("name") == "CosineAnnealing" and cfg.model.get("optim_param_groups"):
        problems.append(
            "model.optim.sched.name=CosineAnnealing decays every param group to one absolute "
            "min_lr and loses the encoder:head LR ratio; use name: GroupCosine with min_lr_ratio"
        )
    spec = spec_of(cfg)
    if spec is not None:
        if sched.get("min_lr") is not None:
            problems.append(
                "model.optim.sched.min_lr is absolute; GroupCosine takes min_lr_ratio (a fraction "
                "of each group's peak): replace min_lr with min_lr_ratio"
            )
        problems += spec.problems()
    if problems:
        raise ValueError("learning-rate schedule: " + "; ".join(problems))


def key_steps(spec: GroupCosineSpec) -> list[int]:
    """Steps worth printing: start, end of warm-up, freeze, re-warm-up, mid-decay, last."""
    steps = {0, spec.warmup_steps - 1, spec.max_steps // 2, spec.max_steps - 1}
    if spec.encoder_freeze_steps > 0:
        steps |= {spec.encoder_freeze_steps - 1, spec.encoder_freeze_steps}
        steps.add(spec.encoder_freeze_steps + spec.encoder_rewarmup_steps - 1)
    return sorted(s for s in steps if 0 <= s < spec.max_steps)


def lr_table(cfg, steps: Sequence[int] | None = None) -> str:
    """The schedule's LR of each group at a few steps, as a text table ('' without GroupCosine)."""
    spec = spec_of(cfg)
    if spec is None:
        return ""
    peaks = peaks_of(cfg)
    rows = [f"{'step':>8} " + " ".join(f"{name:>14}" for name in peaks)]
    for step in steps or key_steps(spec):
        lrs = [group_lr(name, peak, step, spec) for name, peak in peaks.items()]
        rows.append(f"{step:>8} " + " ".join(f"{lr:>14.3e}" for lr in lrs))
    return "\n".join(rows)


def register_with_nemo() -> None:
    """Make ``model.optim.sched.name: GroupCosine`` resolvable by NeMo's scheduler registry."""
    from dataclasses import make_dataclass

    from nemo.core.config.schedulers import SchedulerParams
    from nemo.core.optim.lr_scheduler import AVAILABLE_SCHEDULERS, register_scheduler

    if NAME in AVAILABLE_SCHEDULERS:
        return
    params = make_dataclass(
        f"{NAME}Params",
        [
            ("max_steps", int, 0),
            ("warmup_steps", int, 0),
            ("min_lr_ratio", float, 0.01),
            ("encoder_rewarmup_steps", int, 1000),
            ("encoder_freeze_steps", int, 0),
        ],
        bases=(SchedulerParams,),
    )
    register_scheduler(NAME, GroupCosine, params)
