#!/usr/bin/env python3
"""Check the production model on one GPU in minutes: `make gpu-check`.

Usage:
    python scripts/gpu_check.py                      # H200 plan on CUDA, CPU tiny variant without
    python scripts/gpu_check.py --tiny               # the tiny variant even on a GPU (seconds)
    python scripts/gpu_check.py --sections smoke,train --peak-tflops 989

Sections (maya_asr.training.gpu_check): (a) smoke config on CUDA with NeMo's numba TDT loss in
bf16-mixed; (b) the production model (1.1B encoder, 32K vocabulary; Parakeet weights when
pretrained/ holds them, random init otherwise) through pre-flight at every bucket's worst batch;
(c) 50 training steps at the production caps: step time, peak memory, audio-seconds per second,
MFU (analytic FLOPs x 3, see maya_asr.models.flops); (d) TDT and CTC inference RTFx at batch 128.
Budget on one H200: under 8 minutes.

Without a CUDA GPU it runs the CPU tiny variant and says so loudly: its figures are not H200
figures. Writes artifacts/bench/gpu_check.json and prints one table. Exit status 1 when any
section failed (the others still run), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="run the CPU tiny variant's sizes")
    parser.add_argument("--sections", default="smoke,preflight,train,rtfx",
                        help="comma-separated sections to run (default: all)")  # fmt: skip
    parser.add_argument("--train-steps", type=int, help="override the plan's training steps")
    parser.add_argument("--peak-tflops", type=float,
                        help="peak TFLOP/s for MFU (default: known GPU names)")  # fmt: skip
    parser.add_argument("--work-dir", help="where temporary runs go (default: the system temp)")
    parser.add_argument("--output", default=str(REPO / "artifacts/bench/gpu_check.json"))
    args = parser.parse_args(argv)

    import dataclasses

    import torch

    from maya_asr.training.gpu_check import CPU_TINY, H200, SECTIONS, format_table, run_gpu_check
    from maya_asr.training.run import quiet_logs

    selected = {s.strip() for s in args.sections.split(",") if s.strip()}
    unknown = selected - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    cuda = torch.cuda.is_available()
    plan = CPU_TINY if (args.tiny or not cuda) else H200
    if args.train_steps:
        plan = dataclasses.replace(plan, train_steps=args.train_steps)
    quiet_logs()
    from nemo.utils import logging as nemo_logging

    nemo_logging.set_verbosity(nemo_logging.WARNING)
    device = torch.device("cuda" if cuda else "cpu")
    report = run_gpu_check(plan, REPO, device, selected, args.work_dir, args.peak_tflops)

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print("\n" + format_table(report))
    print(f"wrote {out}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
