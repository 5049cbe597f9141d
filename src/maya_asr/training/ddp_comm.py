"""No all-reduce of the frozen encoder's (zero) gradients.

While the encoder is frozen, the model gives each encoder parameter an exact-zero gradient (the
"zero anchor", so DDP's reducer sees every parameter used and ranks stay in lockstep), and drops
those gradients before the optimizer step. All-reducing them would move 1.06B zeros per step for
the first 5,000 steps of stage 1. PyTorch's DDP communication hook is the supported place to
change what a bucket sends: while frozen, this hook all-reduces only the slices of a bucket that
belong to trainable parameters and leaves the encoder's slices as they are (local zeros,
identical on every rank); otherwise it is PyTorch's default all-reduce hook. Every rank takes
the same decision (the freeze is a function of the global step), so the collectives match.

Chosen over ``find_unused_parameters`` (a graph walk every step, and the encoder is still in the
graph under ``no_grad``) and over rebuilding the reducer at the unfreeze (DDP cannot drop
parameters from a live reducer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightning.pytorch as pl
import torch
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks


@dataclass
class _HookState:
    module: torch.nn.Module  # the Maya model: its `encoder_frozen` says what to skip
    frozen_ids: set[int]  # ids of the encoder's parameters
    process_group: object = None  # the default group
    reduced_bytes: int = 0  # gradient bytes all-reduced so far (this rank)
    skipped_bytes: int = 0  # gradient bytes not sent because their bucket was all frozen
    buckets: list[tuple[int, bool]] = field(default_factory=list)  # (bytes, skipped) per call


def skip_frozen_allreduce(state: _HookState, bucket):  # DDP rejects a string return annotation
    """DDP comm hook: all-reduce (mean) the gradients of the bucket's trainable parameters only.

    A bucket is the flat concatenation of its parameters' gradients in ``bucket.parameters()``
    order. While frozen, the frozen encoder's slices (zeros on every rank) stay as they are: a
    bucket of encoder parameters only sends nothing, a mixed bucket sends its other slices.
    Returns a ``torch.futures.Future[torch.Tensor]`` of the bucket's buffer."""
    buffer = bucket.buffer()
    size = buffer.element_size()
    params = bucket.parameters()
    if not getattr(state.module, "encoder_frozen", False) or not any(
        id(p) in state.frozen_ids for p in params
    ):
        state.reduced_bytes += buffer.numel() * size
        state.buckets.append((buffer.numel() * size, False))
        return default_hooks.allreduce_hook(state.process_group, bucket)

    slices, offset = [], 0
    for p in params:
        if id(p) not in state.frozen_ids:
            slices.append((offset, p.numel()))
        offset += p.numel()
    sent = sum(n for _, n in slices)
    state.reduced_bytes += sent * size
    state.skipped_bytes += (buffer.numel() - sent) * size
    state.buckets.append((sent * size, sent == 0))
    if not slices:
        done: torch.futures.Future = torch.futures.Future()
        done.set_result(buffer)  # zeros on every rank: nothing to average
        return done
    group = state.process_group or torch.distributed.group.WORLD
    flat = torch.cat([buffer[o : o + n] for o, n in slices]).div_(group.size())
    work = torch.distributed.all_reduce(flat, group=group, async_op=True)

    def scatter_back(fut):
        reduced = fut.value()[0]
        at = 0
        for o, n in slices:
            buffer[o : o + n].copy_(reduced[at : at + n])
            at += n
        return buffer

    return work.get_future().then(scatter_back)


class SkipFrozenAllReduce(pl.Callback):
    """Registers :func:`skip_frozen_allreduce` on the DDP-wrapped model at the start of training
    (a no-op without DDP). ``per_step`` holds (reduced, skipped) bytes of each optimizer step."""

    def __init__(self):
        self.state: _HookState | None = None
        self.per_step: list[tuple[int, int]] = []
        self._last = (0, 0)

    def on_train_start(self, trainer, pl_module) -> None:
        ddp = trainer.strategy.model
        if not isinstance(ddp, torch.nn.parallel.DistributedDataParallel):
            return
        ids = {id(p) for p in pl_module.encoder.parameters()}
        self.state = _HookState(module=pl_module, frozen_ids=ids)
        ddp.register_comm_hook(self.state, skip_frozen_allreduce)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.state is None:
            return
        now = (self.state.reduced_bytes, self.state.skipped_bytes)
        if now != self._last:  # a step that synchronised (not an accumulation micro-batch)
            self.per_step.append((now[0] - self._last[0], now[1] - self._last[1]))
            self._last = now
