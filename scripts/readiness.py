#!/usr/bin/env python3
"""Production readiness gate (`make prod-readiness`): disk, GPUs, config, artifacts, R2.

Usage:
    python scripts/readiness.py                       # the stage-1 8xH200 defaults
    python scripts/readiness.py --expect-gpus 8 --json
    python scripts/readiness.py --config configs/train/other.yaml --no-r2

Prints a table of checks with PASS/WARN/FAIL and a fix for each problem (--json for machines).
Exit status 1 when any check FAILs, 0 otherwise (WARNs do not block a launch).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    from maya_asr.ops.readiness import ReadinessConfig  # light: stdlib only at import

    d = ReadinessConfig()  # the defaults live in one place
    parser.add_argument("--config", default=str(d.config_path), help="training config (NeMo YAML)")
    parser.add_argument("--train-parquet", default=str(d.train_parquet), help="production index")
    parser.add_argument("--val-manifest", default=str(d.val_manifest), help="validation manifest")
    parser.add_argument(
        "--pretrained-encoder", default=str(d.pretrained_encoder), help="encoder state dict"
    )
    parser.add_argument(
        "--checkpoint-dir", default=str(d.checkpoint_dir), help="where checkpoints go"
    )
    parser.add_argument(
        "--expect-gpus", type=int, default=d.expect_gpus, help="GPUs this node must have"
    )
    parser.add_argument(
        "--min-gpu-memory-gb", type=float, default=d.min_gpu_memory_gb, help="per GPU"
    )
    parser.add_argument(
        "--keep-local", type=int, default=d.keep_local, help="checkpoints kept locally"
    )
    parser.add_argument("--checkpoint-gb", type=float, default=d.checkpoint_gb, help="size of one")
    parser.add_argument("--logs-gb", type=float, default=d.logs_gb, help="room for logs")
    parser.add_argument("--env-file", default=str(d.env_file), help="R2 settings file (chmod 600)")
    parser.add_argument("--no-r2", action="store_true", help="skip the R2 checks (offline)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)

    from maya_asr.ops.readiness import (
        exit_status,
        render_json,
        render_table,
        run_checks,
    )

    cfg = ReadinessConfig(
        config_path=Path(args.config),
        train_parquet=Path(args.train_parquet),
        val_manifest=Path(args.val_manifest),
        pretrained_encoder=Path(args.pretrained_encoder),
        checkpoint_dir=Path(args.checkpoint_dir),
        expect_gpus=args.expect_gpus,
        min_gpu_memory_gb=args.min_gpu_memory_gb,
        keep_local=args.keep_local,
        checkpoint_gb=args.checkpoint_gb,
        logs_gb=args.logs_gb,
        env_file=Path(args.env_file),
        check_r2=not args.no_r2,
    )
    rows = run_checks(cfg)
    print(render_json(rows) if args.json else render_table(rows))
    return exit_status(rows)


if __name__ == "__main__":
    raise SystemExit(main())
