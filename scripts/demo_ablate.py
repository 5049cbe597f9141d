#!/usr/bin/env python3
"""The demo recipe with one part removed at a time, at the demo's budget, and one table.

Usage:
    python scripts/demo_ablate.py                        # every variant (hours on 2 cores)
    python scripts/demo_ablate.py --only no_freeze,one_lr --steps 1400
    python scripts/demo_ablate.py --full-run experiments/demo   # reuse make demo's run as "full"

Each variant trains configs/train/demo_cpu.yaml for --steps with one part removed (no pretrained
encoder, no freeze, one LR for all, no CTC warm-up, no language embedding), then
scripts/evaluate.py scores it on the demo's held-out voices (both heads, language given and
free). Runs go to <out-dir>/<variant>/; a variant whose eval/report.json exists is not redone,
so an interrupted ablation resumes. Writes <out-dir>/ablation.md and ablation.json.
"""

from __future__ import annotations

import argparse
import json
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
    p.add_argument("--steps", type=int, default=1400, help="optimizer steps per variant")
    p.add_argument("--val-manifest", default="artifacts/demo/manifests/stage1_prod_val_v2.jsonl")
    p.add_argument("--out-dir", default="experiments/demo_ablate")
    p.add_argument("--only", default="", help="comma-separated variants (default all)")
    p.add_argument(
        "--full-run",
        help="a finished run of the same config and --steps (make demo's) to use as the full "
        "recipe; its eval/report.json must exist",
    )
    args = p.parse_args(argv)

    from omegaconf import OmegaConf

    from maya_asr.training.ablation import markdown_table, scores, variants

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
        report = run / "eval" / "report.json"
        if v.slug == "full" and args.full_run:
            run = Path(args.full_run)
            report = run / "eval" / "report.json"
            steps = OmegaConf.load(run / "config.yaml").trainer.max_steps
            if steps != args.steps or not report.exists():
                p.error(
                    f"--full-run {run}: trained {steps} steps (want {args.steps}) or has no "
                    "eval/report.json; run `make demo` with DEMO_STEPS={args.steps} first"
                )
        elif wanted and v.slug not in wanted:
            if report.exists():  # done earlier: keep it in the table
                rows[v.label] = scores(json.loads(report.read_text()))
            continue
        if not report.exists():
            run.mkdir(parents=True, exist_ok=True)
            log = run / "ablate.log"
            t0 = time.perf_counter()
            if not (run / "model.nemo").exists():
                _run([sys.executable, "scripts/train_prod.py", "--config", args.config,
                      "--run-dir", str(run), "--max-steps", str(args.steps),
                      "--val-every", str(args.steps), "--checkpoint-every", str(args.steps),
                      *v.args], log)  # fmt: skip
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
