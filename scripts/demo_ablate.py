#!/usr/bin/env python3
"""The demo recipe with one part removed at a time, at the demo's budget, and one table.

Usage:
    python scripts/demo_ablate.py                        # every variant (hours on 2 cores)
    python scripts/demo_ablate.py --only no_freeze,one_lr --steps 2500
    python scripts/demo_ablate.py --full-run experiments/demo   # reuse make demo's run as "full"

Each variant trains configs/train/demo_cpu.yaml for --steps with one part removed (no pretrained
encoder, no freeze, one LR for all, no CTC warm-up, no language embedding), then
scripts/evaluate.py scores it on the demo's held-out voices (both heads, language given and
free). Runs go to <out-dir>/<variant>/; a finished variant whose saved config is this one's (and
whose pretrained encoder has not changed since) is not redone, so an interrupted ablation
resumes and a changed config or --steps retrains. Writes <out-dir>/ablation.md and ablation.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _run(cmd: list[str], log: Path) -> None:
    print("$ " + " ".join(cmd), flush=True)
    with open(log, "a") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if rc:
        raise SystemExit(f"command failed (exit {rc}); see {log}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", default="configs/train/demo_cpu.yaml")
    p.add_argument(
        "--steps",
        type=int,
        default=2500,
        help="optimizer steps per variant (make demo's DEMO_STEPS)",
    )
    p.add_argument("--val-manifest", default="artifacts/demo/manifests/stage1_prod_val_v2.jsonl")
    p.add_argument("--out-dir", default="experiments/demo_ablate")
    p.add_argument("--only", default="", help="comma-separated variants (default all)")
    p.add_argument(
        "--full-run",
        help="make demo's run: used as the full recipe when its config.yaml is this variant's "
        "(same --steps) and its eval/report.json exists; otherwise trained here",
    )
    args = p.parse_args(argv)

    from omegaconf import OmegaConf

    from maya_asr.training.ablation import (
        expected_config,
        markdown_table,
        scores,
        stale_reason,
        train_args,
        variants,
    )

    cfg = OmegaConf.load(args.config)
    all_variants = variants(heads_lr=float(cfg.model.optim.lr))
    wanted = [v for v in args.only.split(",") if v]
    unknown = set(wanted) - {v.slug for v in all_variants}
    if unknown:
        p.error(f"unknown variants {sorted(unknown)}; known: {[v.slug for v in all_variants]}")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, timings = {}, {}
    for v in all_variants:
        run = out / v.slug
        expected = expected_config(args.config, args.steps, v)
        if v.slug == "full" and args.full_run:
            why = stale_reason(Path(args.full_run), expected)
            if why is None and (Path(args.full_run) / "eval" / "report.json").exists():
                run = Path(args.full_run)  # make demo's run is this variant: reuse it
            else:
                print(f"not reusing {args.full_run}: {why or 'no eval/report.json'}", flush=True)
        report = run / "eval" / "report.json"
        if wanted and v.slug not in wanted:
            if report.exists() and stale_reason(run, expected) is None:  # done earlier
                rows[v.label] = scores(json.loads(report.read_text()))
            continue
        if report.exists() and (why := stale_reason(run, expected)) is not None:
            print(f"redoing {v.slug}: {why}", flush=True)
            shutil.rmtree(run)
        if not report.exists():
            run.mkdir(parents=True, exist_ok=True)
            log = run / "ablate.log"
            if stale_reason(run, expected) is not None:  # no finished model.nemo of this config
                for stale in ("checkpoints", "model.nemo", "config.yaml"):
                    path = run / stale
                    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
                t0 = time.perf_counter()
                _run([sys.executable, "scripts/train_prod.py", "--run-dir", str(run),
                      *train_args(args.config, args.steps, v)], log)  # fmt: skip
                timings[v.label] = round(time.perf_counter() - t0, 1)
            _run([sys.executable, "scripts/evaluate.py", "--model", str(run / "model.nemo"),
                  "--manifest", args.val_manifest, "--out-dir", str(run / "eval"),
                  "--no-progress"], log)  # fmt: skip
        rows[v.label] = scores(json.loads(report.read_text()))
        print(f"{v.label}: {rows[v.label]}", flush=True)

    table = markdown_table(rows)
    header = (
        f"Demo ablation: {args.config}, {args.steps} steps per variant, scored on "
        f"{args.val_manifest} (held-out voices). CER/WER over all languages; 'free' = no "
        "language given.\n\n"
    )
    (out / "ablation.md").write_text(header + table)
    record = {"config": args.config, "steps": args.steps, "rows": rows, "train_wall_s": timings}
    (out / "ablation.json").write_text(json.dumps(record, indent=2) + "\n")
    print(header + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
