#!/usr/bin/env python3
"""Training-step speed of the demo model on the CPU, with and without each CPU-step setting.

Usage:
    python scripts/bench_demo_step.py                  # all variants, steps 120-220
    python scripts/bench_demo_step.py --start 120 --stop 170 --variants fp32,demo
    python scripts/bench_demo_step.py data.max_batch_dur=64   # key=value: applied to every variant

Trains configs/train/demo_cpu.yaml on the demo corpus (make demo-artifacts) from the pretrained
encoder, each variant in its own process, and times optimizer steps --start..--stop (after the
encoder freeze, so the whole model trains). Variants, each adding one setting to the one before:

    fp32         the joint in float32, fused_batch_size 4 (the demo before 2026-12-03)
    bf16_joint   + the joint's output layer in bfloat16 (model.joint_bf16_on_cpu)
    demo         + the whole micro-batch in one joint/loss call (fused_batch_size 16):
                 configs/train/demo_cpu.yaml as committed
    fused_adamw  + AdamW's fused kernel (model.optim.fused) instead of its per-tensor loop
    fp32_whole   the demo config with the joint in float32: a CPU without native bf16

The same seed gives every variant the same batches in the same order. Prints step/s, the
speed-up against fp32 and the peak RSS (of the whole run, pre-flight's worst batches included),
and writes artifacts/bench/demo_step_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "fp32": ["model.joint_bf16_on_cpu=false", "model.joint.fused_batch_size=4"],
    "bf16_joint": ["model.joint.fused_batch_size=4"],
    "demo": [],
    "fused_adamw": ["model.optim.fused=true"],
    "fp32_whole": ["model.joint_bf16_on_cpu=false"],
}


def run_variant(args: argparse.Namespace, overrides: list[str], run_dir: str) -> dict:
    """Train in a child process (clean allocator, fresh RSS peak); returns its timing line."""
    cmd = [sys.executable, __file__, "--child", run_dir, "--start", str(args.start),
           "--stop", str(args.stop), "--config", args.config, *overrides]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[len("BENCH ") :])
    raise RuntimeError(f"variant {overrides} failed:\n{proc.stderr[-4000:]}")


def child(args: argparse.Namespace, overrides: list[str]) -> None:
    import lightning.pytorch as pl
    import torch
    from omegaconf import OmegaConf, open_dict

    from maya_asr.training.options import build_config
    from maya_asr.training.run import quiet_logs, train

    class StepTimer(pl.Callback):
        t0 = seconds = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == args.start and self.t0 is None:
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == args.stop and self.seconds is None:
                self.seconds = time.perf_counter() - self.t0
                opt = trainer.optimizers[0]
                self.optimizer = f"{type(opt).__name__}(fused={opt.defaults.get('fused')})"
                self.joint_out = type(pl_module.joint.joint_net[-1]).__name__

    quiet_logs()
    flags = {
        "run_dir": args.child, "max_steps": args.stop, "val_every": 10**6,
        "checkpoint_every": 10**6, "log_every": 10**6,
        "pretrained_encoder": str(REPO / "pretrained/demo/encoder.pt"),
    }  # fmt: skip
    cfg = build_config(OmegaConf.load(args.config), flags, overrides)
    with open_dict(cfg):
        cfg.run.save_initial = False
    timer = StepTimer()
    train(cfg, extra_callbacks=[timer])
    steps = args.stop - args.start
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))
    result = {
        "steps": steps, "seconds": round(timer.seconds, 2),
        "step_per_s": round(steps / timer.seconds, 3), "peak_rss_mib": round(peak),
        "optimizer": timer.optimizer, "joint_output_layer": timer.joint_out,
        "torch_threads": torch.get_num_threads(),
    }  # fmt: skip
    print("BENCH " + json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(REPO / "configs/train/demo_cpu.yaml"))
    p.add_argument("--start", type=int, default=120, help="first timed optimizer step")
    p.add_argument("--stop", type=int, default=220, help="last timed optimizer step")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    p.add_argument("--output", default=str(REPO / "artifacts/bench/demo_step_cpu.json"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    args, overrides = p.parse_known_args(argv)
    if bad := [o for o in overrides if o.startswith("-") or "=" not in o]:
        p.error(f"unrecognised arguments {bad}; config overrides are key=value")
    if args.stop <= args.start:
        p.error(f"--stop {args.stop} must be after --start {args.start}")
    if args.child:
        child(args, overrides)
        return 0
    names = [v for v in args.variants.split(",") if v]
    if unknown := [v for v in names if v not in VARIANTS]:
        p.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    train_parquet = REPO / "artifacts/demo/phase3/production_train_final.parquet"
    if not train_parquet.exists():
        p.error(f"{train_parquet} is missing: run `make demo-artifacts` first")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_demo_step_") as tmp:
        for name in names:
            results[name] = run_variant(args, VARIANTS[name] + overrides, os.path.join(tmp, name))
            r = results[name]
            print(f"{name:12s} {r['step_per_s']:.2f} step/s  peak RSS {r['peak_rss_mib']} MiB  "
                  f"{r['optimizer']}  {r['joint_output_layer']}", flush=True)  # fmt: skip
    base = results.get("fp32", results[names[0]])["step_per_s"]
    for name, r in results.items():
        r["speedup"] = round(r["step_per_s"] / base, 2)  # against fp32 (else the first)
        print(f"{name:12s} x{r['speedup']:.2f}")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "config": os.path.relpath(args.config, REPO),
        "timed_steps": [args.start, args.stop],
        "overrides": overrides,
        "variants": results,
    }
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
