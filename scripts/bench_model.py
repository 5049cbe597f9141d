#!/usr/bin/env python3
"""Measure the smoke model's CPU training step (time, peak memory) and the production size.

Usage:
    python scripts/bench_model.py                       # smoke step time + peak RSS
    python scripts/bench_model.py --param-count         # also count the 32K production model
    python scripts/bench_model.py --batch 8 --seconds 4 --steps 20

Runs a few Lightning steps of configs/train/smoke.yaml on random audio (a tiny tokenizer is made
on the fly), timing each optimizer step (forward, TDT+CTC loss, backward, AdamW). Baseline in the
same run: the same steps with the fused joint off, NeMo's other joint path. Peak memory is the
peak RSS during the steps above the RSS before them (Linux VmHWM, reset per run).
Writes artifacts/bench/model_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _rss_mib() -> float:
    """Peak resident memory of this process since the last :func:`_reset_peak` (MiB)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) / 1024 for ln in f if ln.startswith("VmRSS:"))


def _reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets the peak RSS, so each run gets its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _time_steps(model_cfg, batch, steps):
    import lightning.pytorch as pl
    import torch

    from maya_asr.models import MayaHybridTDTCTCModel

    class Timer(pl.Callback):
        def __init__(self):
            self.times = []

        def on_train_batch_start(self, *args):
            self.start = time.perf_counter()

        def on_train_batch_end(self, *args):
            self.times.append(time.perf_counter() - self.start)

    torch.manual_seed(0)
    model = MayaHybridTDTCTCModel(model_cfg)
    timer = Timer()
    trainer = pl.Trainer(
        max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
    )  # fmt: skip
    _reset_peak()
    rss_before = _current_rss_mib()
    loader = torch.utils.data.DataLoader([batch] * steps, batch_size=None)
    trainer.fit(model, train_dataloaders=loader)
    return statistics.median(timer.times[2:] or timer.times), _rss_mib() - rss_before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=4, help="utterances per batch")
    parser.add_argument("--seconds", type=float, default=4.0, help="audio seconds per utterance")
    parser.add_argument("--tokens", type=int, default=30, help="target tokens per utterance")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps to time")
    parser.add_argument("--param-count", action="store_true", help="count the 32K prod model")
    parser.add_argument("--output", default="artifacts/bench/model_cpu.json")
    args = parser.parse_args(argv)

    import torch
    from omegaconf import OmegaConf, open_dict

    from maya_asr.models.tiny_tokenizer import tokenizer_with_vocab

    result = {"torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = OmegaConf.load(REPO / "configs/train/smoke.yaml").model
        with open_dict(cfg):
            cfg.tokenizer.dir = str(tokenizer_with_vocab(Path(tmp) / "tok", 256))
        n = int(16000 * args.seconds)
        g = torch.Generator().manual_seed(0)
        batch = (
            torch.randn(args.batch, n, generator=g) * 0.1,
            torch.full((args.batch,), n),
            torch.randint(0, 256, (args.batch, args.tokens), generator=g),
            torch.full((args.batch,), args.tokens),
            torch.arange(args.batch) % 12,
        )
        step_s, peak_mib = _time_steps(cfg, batch, args.steps)
        with open_dict(cfg):
            cfg.joint.fuse_loss_wer = False
        base_step_s, base_peak_mib = _time_steps(cfg, batch, args.steps)
        result["smoke"] = {
            "batch": args.batch, "seconds": args.seconds, "tokens": args.tokens,
            "step_s_fused_joint": step_s, "peak_rss_growth_mib_fused_joint": peak_mib,
            "step_s_unfused_joint": base_step_s, "peak_rss_growth_mib_unfused_joint": base_peak_mib,
            "process_peak_rss_mib": _rss_mib(),
        }  # fmt: skip
        if args.param_count:
            from maya_asr.models import count_model_parameters

            prod = OmegaConf.load(REPO / "configs/train/stage1_prod_8xh200.yaml").model
            with open_dict(prod):
                prod.tokenizer.dir = str(tokenizer_with_vocab(Path(tmp) / "tok32k", 32000))
            result["production_parameters"] = count_model_parameters(prod)

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    s = result["smoke"]
    print(f"{'smoke model, CPU':<34}{'step (s)':>10}{'peak RSS +MiB':>16}")
    print(f"{'fused joint (as configured)':<34}{step_s:>10.3f}{peak_mib:>16.0f}")
    print(f"{'unfused joint (baseline)':<34}{base_step_s:>10.3f}{base_peak_mib:>16.0f}")
    print(f"batch {s['batch']} x {s['seconds']} s audio, {s['tokens']} tokens")
    if "production_parameters" in result:
        print(f"production parameters: {result['production_parameters']['total']:,}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
