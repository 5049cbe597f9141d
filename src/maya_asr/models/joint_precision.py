"""The TDT joint's output layer in bfloat16 while training on a CPU that multiplies bf16 natively.

Why: on the CPU the joint's last Linear, (B, T, U+1, H) -> (B, T, U+1, V+1+K), is the largest
matmul of a training step: most of aten::mm, 45% of the demo model's fp32 step in a profile
(12.3 s of 27.2 s over 40 steps). On our AMX CPU the same product in bfloat16 runs ~4.6x faster
(fwd + both backward products of a 6000 x 128 x 1542 joint: 45.8 ms fp32, 9.9 ms bf16).

Only this layer, not the whole model: Lightning's ``bf16-mixed`` on the CPU also casts the
encoder's convolutions and attention, which run slower in bf16 there (in a one-off run with our
CPU fp32 override patched out, whole-model bf16-mixed reached 1.82 step/s where this layer alone
reached 2.36). ``scripts/bench_demo_step.py`` times the demo with the layer and without it: 1.65
step/s fp32, 2.74 with it, 3.00 with it and the whole micro-batch in one joint call (2 cores).

Weights, gradients and optimizer state stay float32 (autocast casts copies); the output is cast
back to float32, so the TDT loss normalises float32 logits as before. On CUDA (where the
trainer's precision governs), in eval mode and under ``no_grad`` the layer is a plain
``nn.Linear``; its parameters and state-dict keys are nn.Linear's, so a ``.nemo`` restores into
either class.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 in hardware (AMX tiles or AVX512-BF16).

    Elsewhere PyTorch emulates bf16 matmul, slower than float32, so the layer is not installed.
    """
    # torch.cpu exposes these checks only as private helpers (stable since PyTorch 2.2).
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


class Bf16TrainingLinear(torch.nn.Linear):
    """``nn.Linear`` whose training forward on CPU tensors runs under bfloat16 autocast."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.device.type == "cpu" and torch.is_grad_enabled():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = super().forward(x)
            return out.to(x.dtype)
        return super().forward(x)

    @classmethod
    def replacing(cls, linear: torch.nn.Linear) -> Bf16TrainingLinear:
        """A layer sharing ``linear``'s parameters (same tensors, same state-dict keys)."""
        layer = cls(
            linear.in_features, linear.out_features, bias=linear.bias is not None,
            device=linear.weight.device, dtype=linear.weight.dtype,
        )  # fmt: skip
        layer.weight, layer.bias = linear.weight, linear.bias
        layer.train(linear.training)
        return layer


def install_bf16_joint_output(joint: torch.nn.Module) -> bool:
    """Swap the joint's output Linear (``joint.joint_net[-1]``, NeMo's ``RNNTJoint``) for a
    :class:`Bf16TrainingLinear` when this CPU has native bf16; returns whether it did."""
    net = getattr(joint, "joint_net", None)
    if not isinstance(net, torch.nn.Sequential) or not isinstance(net[-1], torch.nn.Linear):
        raise ValueError(
            f"model.joint_bf16_on_cpu needs NeMo's RNNTJoint (joint_net ending in a Linear); "
            f"got {type(joint).__name__}. Set model.joint_bf16_on_cpu: false for this joint."
        )
    if not cpu_has_native_bf16():
        # info, not a warning: it only matters for CPU training, and inference also lands here.
        log.info(
            "model.joint_bf16_on_cpu: this CPU has no native bfloat16 matmul (AMX or "
            "AVX512-BF16), so CPU training keeps the joint in float32 (no effect on CUDA or "
            "inference)"
        )
        return False
    if not isinstance(net[-1], Bf16TrainingLinear):
        net[-1] = Bf16TrainingLinear.replacing(net[-1])
    return True
