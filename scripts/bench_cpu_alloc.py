#!/usr/bin/env python3
"""CPU training step of the demo model with glibc's default allocator settings vs with freed
memory kept in the process (``maya_asr.training.cpu_memory.keep_freed_memory``, which every
CPU training run applies).

Usage:
    python scripts/bench_cpu_alloc.py                      # demo model, demo-sized batches
    python scripts/bench_cpu_alloc.py --batch-seconds 16 --steps 40

Builds the model section of configs/train/demo_cpu.yaml (4 x 144 FastConformer, TDT + CTC
heads, 1,536-piece vocabulary) and times Lightning optimizer steps on random batches of the
demo's sizes (27 s of audio in clips of 2 to 9 s, shapes changing every step as in a run).
Each setting runs in its own process, one after the other, because mallopt is process-wide and
cannot be undone. Prints mean step times, minor page faults per step and the resident memory
after the last step; writes artifacts/bench/cpu_alloc.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) / 1024 for ln in f if ln.startswith("VmRSS:"))


def _child(args) -> dict:
    """Time steps in this process with the allocator as ``args.child`` says."""
    if args.child == "keep":
        from maya_asr.training.cpu_memory import keep_freed_memory

        if not keep_freed_memory():
            raise SystemExit("mallopt unavailable: this benchmark needs glibc")

    import statistics

    import lightning.pytorch as pl
    import torch
    from omegaconf import OmegaConf, open_dict

    from maya_asr.models import MayaHybridTDTCTCModel
    from maya_asr.models.tiny_tokenizer import tokenizer_with_vocab

    class Timer(pl.Callback):
        def __init__(self):
            self.times, self.faults, self.rss = [], [], []

        def on_train_batch_start(self, *a):
            self.t0 = time.perf_counter()
            self.f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt

        def on_train_batch_end(self, *a):
            self.times.append(time.perf_counter() - self.t0)
            self.rss.append(_rss_mib())
            self.faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - self.f0)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = OmegaConf.load(REPO / "configs/train/demo_cpu.yaml").model
        with open_dict(cfg):
            cfg.tokenizer.dir = str(tokenizer_with_vocab(Path(tmp) / "tok", args.vocab))
            # The step after the encoder is unfrozen, the one most of a run takes; no schedule.
            cfg.encoder_freeze_steps = 0
            cfg.ctc_warmup_steps = 0
            cfg.optim.pop("sched", None)
        torch.manual_seed(0)
        model = MayaHybridTDTCTCModel(cfg)
        # Batches of the demo's shapes, as the duration buckets make them: ~27 s of audio in
        # clips of 2 to 9 s, ~7 tokens a second. Shapes vary from step to step as in a run.
        g = torch.Generator().manual_seed(0)
        batches = []
        for i in range(args.steps):
            seconds = (2.0, 3.0, 4.0, 6.0, 9.0)[i % 5]
            clips = max(1, round(args.batch_seconds / seconds))
            n, tokens = int(16000 * seconds), max(1, round(7 * seconds))
            batches.append((
                torch.randn(clips, n, generator=g) * 0.1,
                torch.full((clips,), n),
                torch.randint(1, args.vocab, (clips, tokens), generator=g),
                torch.full((clips,), tokens),
                torch.arange(clips) % 12,
            ))  # fmt: skip
        timer = Timer()
        trainer = pl.Trainer(
            max_steps=args.steps, accelerator="cpu", logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
        )  # fmt: skip
        loader = torch.utils.data.DataLoader(batches, batch_size=None)
        trainer.fit(model, train_dataloaders=loader)
    warm = slice(5, None) if len(timer.times) > 5 else slice(None)  # one round of shapes
    return {
        "step_s": statistics.mean(timer.times[warm]),
        "minor_faults_per_step": statistics.mean(timer.faults[warm]),
        "rss_mib_after_step": [round(r) for r in timer.rss],
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-seconds", type=float, default=27.0, help="audio per batch")
    parser.add_argument("--vocab", type=int, default=1536, help="BPE pieces (the demo's)")
    parser.add_argument("--steps", type=int, default=25, help="optimizer steps to time")
    parser.add_argument("--output", default="artifacts/bench/cpu_alloc.json")
    parser.add_argument("--child", choices=["default", "keep"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(_child(args)))
        return 0

    result = {k: getattr(args, k) for k in ("batch_seconds", "vocab", "steps")}
    for mode in ("default", "keep"):
        cmd = [sys.executable, __file__, *(sys.argv[1:] if argv is None else argv), "--child", mode]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"the {mode!r} run failed (exit {proc.returncode}); its log is above")
        result[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["speedup"] = result["default"]["step_s"] / result["keep"]["step_s"]

    out_path = Path(args.output)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'demo model, CPU step':<28}{'step (s)':>10}{'page faults':>14}{'RSS (MiB)':>12}")
    for mode, label in (("default", "glibc defaults"), ("keep", "freed memory kept")):
        r = result[mode]
        print(f"{label:<28}{r['step_s']:>10.3f}{r['minor_faults_per_step']:>14,.0f}"
              f"{r['rss_mib_after_step'][-1]:>12,}")  # fmt: skip
    print(f"speedup {result['speedup']:.2f}x; {args.batch_seconds:g} s of audio a batch in clips "
          f"of 2-9 s, {result['keep']['torch_threads']} torch threads")  # fmt: skip
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
