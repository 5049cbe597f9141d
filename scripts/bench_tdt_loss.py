#!/usr/bin/env python3
"""Benchmark our vectorised CPU TDT loss against NeMo's TDTLossPytorch reference on the CPU.

Usage:
    python scripts/bench_tdt_loss.py          # batch 8, T=32, U=12, V=64: tiny utterances
    python scripts/bench_tdt_loss.py --batch 8 --frames 100 --labels 40 --vocab 1024 --repeats 5

Times forward+backward of both on the same random joint tensor (NeMo's `.cuda()` calls are made
no-ops so its reference runs on the CPU), checks they agree, prints the speedup and writes JSON
to artifacts/bench/tdt_loss_cpu.json. The reference is a Python loop: it runs once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=32, help="encoder frames T")
    parser.add_argument("--labels", type=int, default=12, help="target tokens U")
    parser.add_argument("--vocab", type=int, default=64, help="BPE vocabulary V (blank extra)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of our loss")
    parser.add_argument("--output", default="artifacts/bench/tdt_loss_cpu.json")
    args = parser.parse_args(argv)

    import torch
    from nemo.collections.asr.losses.rnnt_pytorch import TDTLossPytorch

    from maya_asr.models.tdt_loss_cpu import tdt_loss

    torch.manual_seed(0)
    durations = [0, 1, 2, 3, 4]
    B, T, U, V = args.batch, args.frames, args.labels, args.vocab
    acts = torch.randn(B, T, U + 1, V + 1 + len(durations))
    labels = torch.randint(0, V, (B, U))
    act_lens = torch.full((B,), T, dtype=torch.long) - torch.arange(B) % 3
    label_lens = torch.full((B,), U, dtype=torch.long) - torch.arange(B) % 4

    def ours():
        x = acts.clone().requires_grad_(True)
        loss = tdt_loss(x, labels, act_lens, label_lens, V, durations, sigma=0.02)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        return loss.detach(), grad

    def reference():
        x = acts.clone().requires_grad_(True)
        ref = TDTLossPytorch(blank=V, durations=durations, reduction="none", sigma=0.02)
        loss = ref(acts=x, labels=labels, act_lens=act_lens, label_lens=label_lens)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        return loss.detach(), grad

    ours()  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        loss, grad = ours()
        times.append(time.perf_counter() - start)
    ours_s = statistics.median(times)

    cuda = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self  # the reference hard-codes .cuda()
    try:
        start = time.perf_counter()
        ref_loss, ref_grad = reference()
        ref_s = time.perf_counter() - start
    finally:
        torch.Tensor.cuda = cuda

    loss_err = float((loss - ref_loss).abs().max() / ref_loss.abs().max())
    grad_err = float((grad - ref_grad).abs().max() / ref_grad.abs().max())
    result = {
        "shape": {"B": B, "T": T, "U": U, "V": V, "durations": durations},
        "torch_threads": torch.get_num_threads(),
        "ours_fwd_bwd_s": ours_s,
        "nemo_reference_fwd_bwd_s": ref_s,
        "speedup": ref_s / ours_s,
        "max_rel_err_loss": loss_err,
        "max_rel_err_grad": grad_err,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'implementation':<28}{'fwd+bwd (s)':>14}")
    print(f"{'ours (vectorised)':<28}{ours_s:>14.4f}")
    print(f"{'NeMo TDTLossPytorch':<28}{ref_s:>14.4f}")
    print(f"speedup {result['speedup']:.0f}x; rel. error loss {loss_err:.2e}, grad {grad_err:.2e}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
