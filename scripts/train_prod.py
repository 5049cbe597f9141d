#!/usr/bin/env python3
r"""Train (or resume) Maya ASR stage 1: hybrid TDT+CTC on the production index.

Usage:
    python3 scripts/train_prod.py --config configs/train/stage1_prod_8xh200.yaml \
        --train-parquet artifacts/phase3/production_train_final.parquet \
        --val-manifest data/manifests/stage1_prod_val_v2.jsonl \
        --pretrained-encoder pretrained/parakeet_tdt_1.1b_encoder.pt

    # one device, shrunk model, 100 steps:
    python3 scripts/train_prod.py --config configs/train/stage1_prod_8xh200.yaml \
        --max-steps 100 --devices 1 --log-every 10 --val-every 50 --smoke

Flags override the YAML; `key=value` arguments override anything in it (OmegaConf dotlist).
The merged config, checkpoints (every --checkpoint-every steps plus last.ckpt), TensorBoard logs,
validation tables and the final model.nemo go to --run-dir (default experiments/<name>). A run
directory that holds checkpoints/last.ckpt is resumed automatically.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    from maya_asr.training.options import add_flags

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_flags(parser)
    args = parser.parse_args(argv)

    from omegaconf import OmegaConf

    from maya_asr.training.options import build_config, flags_of
    from maya_asr.training.run import apply_smoke, quiet_logs, train

    quiet_logs()
    cfg = build_config(OmegaConf.load(args.config), flags_of(args), args.overrides)
    if cfg.run.smoke:
        from pathlib import Path

        smoke = OmegaConf.load(Path(args.config).with_name("smoke.yaml"))
        prod_steps = OmegaConf.load(args.config).get("trainer", {}).get("max_steps")
        cfg = apply_smoke(cfg, smoke, prod_max_steps=prod_steps, max_steps=args.max_steps)
    result = train(cfg, resume=args.resume)
    if result.nemo_path:
        print(f"trained {result.global_step} steps; model: {result.nemo_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
