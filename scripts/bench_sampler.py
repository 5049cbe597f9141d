"""Benchmark ProductionBatchSampler against Lhotse's DynamicBucketingSampler, in one run.

Measures, on a synthetic duration mix (gamma, mean 7 s, clipped to 0.3-24 s; clips >= 20 s fall
outside the default buckets and are dropped for every sampler):
  * padding efficiency (sum of real durations / sum of B x longest clip) of ours with the
    default 5 buckets at the production caps, and of Lhotse with 30 and 5 buckets at
    max_duration=120, max_cuts=16 on the same clips;
  * language shares over an epoch against the temperature target (T=0.3);
  * DDP balance with 8 simulated ranks: per-step max/mean rank cost, equal step counts;
  * audio seconds per micro-batch, batch size and padding per bucket: one sample cap of 16 for
    every bucket (the old default) against `bucket_batch_sizes: auto` with the production joint
    cap and the 20-40 s bucket (configs/train/stage1_prod_8xh200.yaml);
  * planning speed (rows/s) of ours and Lhotse's (cuts/s);
  * one epoch over --plan-rows rows (default 50M) in a fresh process pinned to one core: wall
    time and peak RSS.

Writes artifacts/bench/sampler.json.

Usage:
    python scripts/bench_sampler.py                       # full run (50M-row planning included)
    python scripts/bench_sampler.py --rows 50000 --plan-rows 1000000   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

LANG_SHARES = {  # hours share of a realistic 12-language mix (hi-heavy, or/as scarce)
    "hi": 0.25, "en": 0.15, "bn": 0.10, "ta": 0.09, "te": 0.08, "mr": 0.08,
    "gu": 0.06, "kn": 0.06, "ml": 0.05, "pa": 0.04, "or": 0.02, "as": 0.02,
}  # fmt: skip


def synthetic_columns(n: int, seed: int, chunk: int = 1 << 22):
    """(duration_s float32, language int16, num_tokens int32): gamma(2, 3.5) durations clipped
    to [0.3, 24] s, languages by LANG_SHARES, ~3.5 tokens/s. Generated in chunks so the input
    itself does not dominate the planner's memory figure."""
    import numpy as np

    rng = np.random.default_rng(seed)
    p = np.array(list(LANG_SHARES.values()))
    d = np.empty(n, np.float32)
    lang = np.empty(n, np.int16)
    tok = np.empty(n, np.int32)
    for c0 in range(0, n, chunk):
        m = min(chunk, n - c0)
        dc = np.clip(rng.gamma(2.0, 3.5, m), 0.3, 24.0)
        d[c0 : c0 + m] = dc
        lang[c0 : c0 + m] = rng.choice(len(p), m, p=p / p.sum())
        tok[c0 : c0 + m] = np.maximum(1, rng.poisson(dc * 3.5))
    return d, lang, tok


def ours(d, lang, tok, world_size=1, rank=0, **cfg):
    from lf_asr.data.production_sampler import ProductionBatchSampler, SamplerConfig

    return ProductionBatchSampler(
        d, lang, tok, languages=list(LANG_SHARES), config=SamplerConfig(**cfg),
        rank=rank, world_size=world_size, seed=0,
    )  # fmt: skip


def efficiency_of_plan(plan) -> dict:
    import numpy as np

    from lf_asr.data.batch_planning import padding_efficiency

    b = plan.batches
    ids = plan.steps.reshape(-1)
    sizes = b.sizes[ids]
    return {
        "padding_efficiency": round(
            padding_efficiency(b.sum_duration_s[ids], sizes, b.max_duration_s[ids]), 4
        ),
        "batches": len(ids),
        "mean_batch_size": round(float(np.mean(sizes)), 2),
    }


def lhotse_run(durations, num_buckets: int) -> dict:
    from lhotse import CutSet
    from lhotse.dataset.sampling import DynamicBucketingSampler
    from lhotse.testing.dummies import dummy_cut

    cuts = CutSet.from_cuts(dummy_cut(i, duration=float(x)) for i, x in enumerate(durations))
    t0 = time.perf_counter()
    sampler = DynamicBucketingSampler(
        cuts, max_duration=120.0, max_cuts=16, num_buckets=num_buckets, shuffle=True, seed=0
    )
    real = padded = 0.0
    batches = 0
    for batch in sampler:
        ds = [c.duration for c in batch]
        real += sum(ds)
        padded += len(ds) * max(ds)
        batches += 1
    secs = time.perf_counter() - t0
    return {
        "padding_efficiency": round(real / padded, 4),
        "batches": batches,
        "mean_batch_size": round(len(durations) / batches, 2),
        "plan_seconds": round(secs, 2),
        "cuts_per_s": round(len(durations) / secs),
    }


def ddp_balance(sampler_factory, accumulation: int) -> dict:
    import numpy as np

    samplers = [sampler_factory(rank) for rank in range(8)]
    plan = samplers[0].plan()
    per_rank = plan.costs[plan.steps].sum(-1)  # (steps, ranks)
    ratio = per_rank.max(1) / per_rank.mean(1)
    return {
        "accumulation": accumulation,
        "steps": int(plan.steps.shape[0]),
        "micro_batches_per_rank": sorted({len(s) for s in samplers}),
        "max_over_mean_worst_step": round(float(ratio.max()), 4),
        "max_over_mean_p99": round(float(np.percentile(ratio, 99)), 4),
        "epoch_cost_weighted": round(float(per_rank.max(1).sum() / per_rank.mean(1).sum()), 4),
    }


def peak_rss_gib() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries the parent's
    high-water mark into a fork+exec'd child's ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def plan_only(rows: int, temperature: float) -> dict:
    """One epoch over ``rows`` synthetic rows (rank 0 of 8), in this process."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    d, lang, tok = synthetic_columns(rows, seed=1)
    input_rss = peak_rss_gib()
    t0, c0 = time.perf_counter(), time.process_time()
    sampler = ours(d, lang, tok, world_size=8, temperature=temperature)
    n = len(sampler)  # plans the epoch
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "rows": rows,
        "temperature": temperature,
        "plan_seconds": round(secs, 2),
        # CPU seconds of this single-threaded process: the wall time on an idle core, which a
        # machine shared with other jobs does not give (wall counts time the core was taken).
        "plan_cpu_seconds": round(cpu, 2),
        "rows_per_s": round(rows / secs),
        "peak_rss_gib": round(peak_rss_gib(), 3),
        "input_columns_rss_gib": round(input_rss, 3),
        "micro_batches_rank0": n,
        "selected_rows": sampler.stats["selected_rows"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000, help="rows for efficiency/shares/DDP")
    ap.add_argument("--plan-rows", type=int, default=50_000_000, help="rows for the plan timing")
    ap.add_argument("--out", default="artifacts/bench/sampler.json")
    ap.add_argument(
        "--plan-temperature", type=float, default=1.0,
        help="temperature of the timed plan: 1.0 (default) packs every row, the worst case",
    )  # fmt: skip
    ap.add_argument("--plan-only", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.plan_only:
        print(json.dumps(plan_only(args.plan_only, args.plan_temperature)))
        return

    import numpy as np

    result: dict = {"rows": args.rows, "duration_mix": "gamma(2, 3.5 s) clipped to 0.3-24 s"}
    d, lang, tok = synthetic_columns(args.rows, seed=0)
    usable = d < 20.0
    result["dropped_over_20s"] = int((~usable).sum())

    t0 = time.perf_counter()
    s = ours(d, lang, tok, temperature=1.0)
    plan = s.plan()
    secs = time.perf_counter() - t0
    result["ours_5_buckets_production_caps"] = {
        **efficiency_of_plan(plan), "plan_seconds": round(secs, 3),
        "rows_per_s": round(args.rows / secs), "dropped_over_cap": plan.stats["dropped_over_cap"],
    }  # fmt: skip
    result["ours_5_buckets_no_token_cap"] = efficiency_of_plan(
        ours(d, lang, tok, temperature=1.0, max_tokens_in_batch=10**9).plan()
    )
    for nb in (30, 5):
        result[f"lhotse_{nb}_buckets"] = lhotse_run(d[usable], nb)

    s = ours(d, lang, tok, temperature=0.3, world_size=8)
    plan = s.plan()
    share_dev = np.abs(np.array(plan.stats["epoch_share"]) - plan.stats["target_share"])
    result["language_shares_T0.3"] = {
        "target": dict(
            zip(LANG_SHARES, np.round(plan.stats["target_share"], 4).tolist(), strict=True)
        ),
        "epoch": dict(
            zip(LANG_SHARES, np.round(plan.stats["epoch_share"], 4).tolist(), strict=True)
        ),
        "max_abs_deviation_pp": round(float(share_dev.max() * 100), 3),
        "epoch_hours": round(plan.stats["epoch_hours"], 1),
        **efficiency_of_plan(plan),
    }
    from lf_asr.data.batch_planning import JointCap
    from maya_asr.data.rehearsal import plan_quality

    def per_bucket(sampler) -> list:
        q = plan_quality(sampler.plan(), sampler)
        return [
            {k: b[k] for k in ("bucket_s", "cap", "mean_batch_size", "mean_audio_s",
                               "padding_efficiency")}
            for b in q["buckets"]
        ]  # fmt: skip

    prod_joint = JointCap(8113841060, 8, 32000, 5, fused_batch_size=4)
    result["audio_per_micro_batch_T0.3"] = {
        "cap_16_every_bucket": per_bucket(ours(d, lang, tok, temperature=0.3)),
        "auto_caps_prod_joint_cap": per_bucket(
            ours(d, lang, tok, temperature=0.3, bucket_batch_sizes="auto", joint=prod_joint,
                 bucket_edges=(0, 4, 8, 12, 16, 20, 40))
        ),
    }  # fmt: skip
    result["ddp_8_ranks"] = [
        ddp_balance(
            lambda r, a=a: ours(d, lang, tok, world_size=8, rank=r, accumulate_grad_batches=a), a
        )
        for a in (1, 4)
    ]

    if args.plan_rows:
        print(f"planning {args.plan_rows:,} rows in a fresh process pinned to one core ...")
        out = subprocess.run(
            [sys.executable, __file__, "--plan-only", str(args.plan_rows),
             "--plan-temperature", str(args.plan_temperature)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        result["plan_epoch_one_core"] = json.loads(out.stdout.strip().splitlines()[-1])
        lhotse_rate = result["lhotse_30_buckets"]["cuts_per_s"]
        result["plan_epoch_one_core"]["lhotse_estimate_seconds_same_rows"] = round(
            args.plan_rows / lhotse_rate
        )

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
