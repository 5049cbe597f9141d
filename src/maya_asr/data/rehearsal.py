"""The production data path at production size, on one CPU box (``make rehearsal``).

Given a production-shaped index (``scripts/make_rehearsal_index.py``: 50M rows by default, rows
pointing at real shard members) and the production sampler config, it measures what a 5-7 day
run on 8 ranks depends on and no 4,000-row test can show:

* ``plan``: one epoch planned for 8 ranks in this process, which holds only the sampler columns
  (what every rank does at every epoch start): wall and CPU time, peak RSS (VmHWM);
* ``plan_quality``: per-step max/mean rank cost, per-language share error against the
  temperature target, audio seconds per micro-batch, batch size and padding per bucket;
* ``consumption``: the rows in the order the ranks train them, step by step, over the planned
  epochs: at every checkpoint and for every language, distinct rows seen / min(rows, drawn);
* ``resume``: stop mid-epoch and after an epoch boundary, restore a fresh sampler from the
  state, compare every remaining batch; time of ``load_state_dict`` and of the re-plan;
* ``coverage``: per-language distinct fraction and repeat factor after 1, 3 and 10 epochs,
  counted on the rows the streams actually draw (not the closed form);
* ``loader``: ``ProductionDataset`` + ``DataLoader`` with 2 workers on this box, clips/s and
  audio-seconds/s, extrapolated to 8 workers per GPU next to what one H200 consumes.

Everything is a function of plain arrays and a ``ProductionBatchSampler`` factory, so the tests
run it on a few thousand rows.
"""

from __future__ import annotations

import itertools
import os
import pickle
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lf_asr.data import batch_planning as bp
from lf_asr.data.production_sampler import (
    EpochPlan,
    ProductionBatchSampler,
    RankBatches,
    SamplerConfig,
    load_sampler_columns,
)

H200_AUDIO_S_PER_S = 3000.0  # audio seconds per second one H200 trains at good utilisation
WORKERS_PER_GPU = 8  # DataLoader workers per rank in production (data.num_workers)

SamplerFactory = Callable[[int], ProductionBatchSampler]  # rank -> a fresh sampler


def peak_rss_gib() -> float:
    """This process's peak resident memory (VmHWM, GiB). Not ru_maxrss: Linux carries a
    parent's high-water mark into a fork+exec'd child's ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed_plan(sampler: ProductionBatchSampler, epoch: int = 0) -> tuple[EpochPlan, dict]:
    """Plan ``epoch`` for all ranks, with wall and CPU seconds and the peak RSS after it."""
    t0, c0 = time.perf_counter(), time.process_time()
    plan = sampler.plan(epoch)
    return plan, {
        "plan_seconds": round(time.perf_counter() - t0, 2),
        # CPU seconds of this single-threaded work: the wall time on an idle core, which a box
        # shared with other jobs does not give.
        "plan_cpu_seconds": round(time.process_time() - c0, 2),
        "peak_rss_gib": round(peak_rss_gib(), 3),
        "rows": len(sampler.duration_s),
        "micro_batches": plan.batches.num_batches,
        "steps": int(plan.steps.shape[0]),
        "chapters": plan.stats["chapters"],
    }


def plan_quality(plan: EpochPlan, sampler: ProductionBatchSampler) -> dict:
    """Rank balance, share error and per-bucket batch figures of one planned epoch."""
    per_rank = plan.costs[plan.steps].sum(-1)  # (steps, ranks)
    ratio = per_rank.max(1) / np.maximum(per_rank.mean(1), 1e-12)
    target = np.array(plan.stats["target_share"])
    share = np.array(plan.stats["epoch_share"])
    b = plan.batches
    ids = plan.steps.reshape(-1)
    first = b.rows[b.offsets[ids]]
    bucket = sampler.budget.bucket[first]
    edges = sampler.config.bucket_edges
    buckets = []
    for k, (lo, hi) in enumerate(itertools.pairwise(edges)):
        mine = ids[bucket == k]
        sizes = b.sizes[mine]
        buckets.append(
            {
                "bucket_s": [lo, hi],
                "cap": int(sampler.budget.caps[k]),
                "micro_batches": len(mine),
                "mean_batch_size": round(float(sizes.mean()), 2) if len(mine) else 0.0,
                "mean_audio_s": round(float(b.sum_duration_s[mine].mean()), 2) if len(mine) else 0,
                "padding_efficiency": round(
                    bp.padding_efficiency(b.sum_duration_s[mine], sizes, b.max_duration_s[mine]), 4
                )
                if len(mine)
                else None,
            }
        )
    filled = [x["mean_audio_s"] for x in buckets if x["micro_batches"]]
    return {
        "rank_cost_max_over_mean_worst_step": round(float(ratio.max(initial=1.0)), 4),
        "rank_cost_max_over_mean_p99": round(float(np.percentile(ratio, 99)), 4)
        if len(ratio)
        else 1.0,
        "share_error_pp_max": round(float(np.abs(share - target).max() * 100), 3),
        "share_pp": {
            name: [round(target[i] * 100, 2), round(share[i] * 100, 2)]
            for i, name in enumerate(sampler.languages)
        },
        "buckets": buckets,
        "shortest_over_longest_bucket_audio": round(filled[0] / filled[-1], 3) if filled else None,
        "dropped_out_of_range": plan.stats["dropped_out_of_range"],
        "dropped_over_cap": plan.stats["dropped_over_cap"],
        "dropped_remainder_batches": plan.stats["dropped_remainder_batches"],
    }


def consumption_order(plan: EpochPlan) -> np.ndarray:
    """Index rows in the order the ranks train them: step by step, all ranks of a step (the
    order inside one step does not matter: its micro-batches run at the same time)."""
    b = plan.batches
    ids = plan.steps.reshape(-1)
    sizes = b.sizes[ids]
    start = np.repeat(b.offsets[ids] - np.r_[0, np.cumsum(sizes)[:-1]], sizes)
    return b.rows[start + np.arange(int(sizes.sum()))]


class ConsumptionCheck:
    """Distinct rows seen vs rows drawn, per language, along the training order of epochs.

    ``feed(order, checkpoints)`` takes one epoch's rows in training order and evaluates, at
    ``checkpoints`` evenly spaced points of it, ``distinct / min(rows, drawn)`` per language;
    ``worst`` is the lowest value seen anywhere so far (1.0 = no row repeated before its
    language was exhausted)."""

    def __init__(self, lang: np.ndarray, sizes: np.ndarray):
        self.lang = lang
        self.sizes = np.asarray(sizes, np.int64)
        self.count = np.zeros(len(lang), np.uint16)  # times each row was trained (saturating)
        self.drawn = np.zeros(len(sizes), np.int64)
        self.distinct = np.zeros(len(sizes), np.int64)
        self.worst = 1.0
        self.worst_at: tuple | None = None

    def feed(self, order: np.ndarray, checkpoints: int = 200, label: str = "") -> None:
        n = len(order)
        first = np.full(len(self.lang), n, np.int64 if n >= 2**31 else np.int32)
        # Earliest position of each row in this epoch (reversed assignment: the earliest wins).
        first[order[::-1]] = np.arange(n - 1, -1, -1)
        new = (self.count[order] == 0) & (first[order] == np.arange(n, dtype=first.dtype))
        del first
        lo = self.lang[order]
        cuts = np.linspace(0, n, checkpoints + 1).astype(np.int64)[1:]
        for li in range(len(self.sizes)):
            mine = lo == li
            pos = np.flatnonzero(mine)
            pos_new = np.flatnonzero(mine & new)
            drawn = self.drawn[li] + np.searchsorted(pos, cuts)
            distinct = self.distinct[li] + np.searchsorted(pos_new, cuts)
            need = np.minimum(self.sizes[li], drawn)
            ratio = np.where(need > 0, distinct / np.maximum(need, 1), 1.0)
            k = int(np.argmin(ratio))
            if ratio[k] < self.worst:
                self.worst, self.worst_at = float(ratio[k]), (label, li, int(cuts[k]))
            self.drawn[li] += len(pos)
            self.distinct[li] += len(pos_new)
        # count[order] += 1 with repeats, via bincount (np.add.at is slow on 10^7 indices).
        inc = np.bincount(order, minlength=len(self.count))
        np.minimum(self.count + inc, 2**16 - 1, out=inc)
        self.count[:] = inc


def coverage_report(check: ConsumptionCheck, languages: Sequence[str]) -> dict:
    """Per language: distinct fraction trained and repeat factor (rows trained / rows)."""
    n = np.maximum(check.sizes, 1)
    return {
        name: {
            "distinct_fraction": round(float(check.distinct[i] / n[i]), 4),
            "repeat_factor": round(float(check.drawn[i] / n[i]), 3),
        }
        for i, name in enumerate(languages)
        if check.sizes[i] > 0
    }


def resume_check(
    reference: ProductionBatchSampler,
    mine: RankBatches,
    fresh: SamplerFactory,
    epoch: int,
    stop: int,
) -> dict:
    """Stop ``reference`` in ``epoch`` after ``stop`` consumed micro-batches (``mine``: its
    batches of that epoch), restore a fresh sampler of the same rank from the state, and
    compare every remaining batch."""
    reference.set_epoch(epoch)
    state = pickle.loads(pickle.dumps(reference.state_dict(batches_consumed=stop)))
    other = fresh(reference.rank)
    t0 = time.perf_counter()
    other.load_state_dict(state)
    restore_s = time.perf_counter() - t0
    other.set_epoch(state["epoch"])  # what Lightning calls on restart
    t0 = time.perf_counter()
    it = iter(other)
    first = next(it, None)  # plans the epoch
    replan_s = time.perf_counter() - t0
    theirs = other._my_batches()
    a0, b0 = mine.offsets[stop], theirs.offsets[stop]
    same = (
        len(mine) == len(theirs)
        and np.array_equal(mine.offsets[stop:] - a0, theirs.offsets[stop:] - b0)
        and np.array_equal(mine.rows[a0:], theirs.rows[b0:])
        and first == (mine[stop] if stop < len(mine) else None)
    )
    return {
        "epoch": epoch,
        "stopped_after_batches": stop,
        "remaining_batches": len(mine) - stop,
        "identical": bool(same),
        "state_restore_seconds": round(restore_s, 3),
        "replan_seconds": round(replan_s, 2),
    }


def loader_throughput(
    index: str | Path,
    languages: Sequence[str],
    tokenizer_model: str | Path,
    batches: Sequence[list[int]],
    workers: int = 2,
    seconds: float = 60.0,
) -> dict:
    """Clips/s and audio-seconds/s of ``ProductionDataset`` through a ``DataLoader`` with
    ``workers`` processes over ``batches`` (after the first batch per worker, which pays for
    mapping the index view), stopped after ``seconds``. The shared index view is built first,
    in this process, and timed on its own."""
    import tempfile

    import torch

    from lf_asr.data.dataset import DatasetConfig, ProductionDataset, open_index_view

    t0 = time.perf_counter()
    del_view = open_index_view(Path(index))
    view_s = time.perf_counter() - t0
    del del_view
    bad_log = Path(tempfile.mkdtemp()) / "bad.jsonl"
    dataset = ProductionDataset(
        index, list(languages), tokenizer_model, DatasetConfig(bad_sample_log=str(bad_log))
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=list(batches), num_workers=workers, prefetch_factor=4
    )
    clips = 0
    audio_s = 0.0
    t_start = None
    n = 0
    for n, batch in enumerate(loader):
        if n == workers:  # warm-up done: every worker has opened its view
            t_start = time.perf_counter()
        elif t_start is not None:
            clips += int(batch[0].shape[0])
            audio_s += float(batch[1].sum()) / 16000
            if time.perf_counter() - t_start > seconds:
                break
    if t_start is None or clips == 0:
        raise RuntimeError(f"only {n + 1} batches loaded: give the loader more batches")
    secs = time.perf_counter() - t_start
    per_worker = audio_s / secs / workers
    return {
        "index_view_build_seconds": round(view_s, 1),
        "workers": workers,
        "seconds": round(secs, 1),
        "clips": clips,
        "clips_per_s": round(clips / secs, 1),
        "audio_s_per_s": round(audio_s / secs, 1),
        "cpu_cores_here": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        f"extrapolated_{WORKERS_PER_GPU}_workers_audio_s_per_s": round(
            per_worker * WORKERS_PER_GPU, 1
        ),
        "h200_consumes_audio_s_per_s": H200_AUDIO_S_PER_S,
        f"{WORKERS_PER_GPU}_workers_over_h200_need": round(
            per_worker * WORKERS_PER_GPU / H200_AUDIO_S_PER_S, 2
        ),
        "bad_samples": len(bad_log.read_text().splitlines()) if bad_log.exists() else 0,
    }


def run_rehearsal(
    index: str | Path,
    languages: Sequence[str],
    config: SamplerConfig,
    tokenizer_model: str | Path | None,
    *,
    ranks: int = 8,
    seed: int = 0,
    coverage_epochs: Sequence[int] = (1, 3, 10),
    loader_workers: int = 2,
    loader_seconds: float = 60.0,
    one_core: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Every measurement of the module docstring on ``index``; returns the JSON document.

    Planning runs pinned to one core (``one_core``) in this process, which holds nothing else
    yet, so the plan's peak RSS is a rank's. The loader runs last, on every core again."""
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if one_core and cores:
        os.sched_setaffinity(0, {min(cores)})
    t0 = time.perf_counter()
    dur, lang, tok, names = load_sampler_columns(index)
    load_s = time.perf_counter() - t0

    def fresh(rank: int) -> ProductionBatchSampler:
        return ProductionBatchSampler.from_columns(
            dur, lang, tok, names, languages=languages, config=config, rank=rank,
            world_size=ranks, seed=seed,
        )  # fmt: skip

    ref = fresh(0)
    log(f"planning epoch 0 of {len(dur):,} rows for {ranks} ranks ...")
    plan, plan_fig = timed_plan(ref, 0)
    plan_fig["load_columns_seconds"] = round(load_s, 2)
    result: dict = {
        "index": str(index),
        "ranks": ranks,
        "temperature": config.temperature,
        "accumulation": config.accumulate_grad_batches,
        "plan": plan_fig,
        "plan_quality": plan_quality(plan, ref),
    }
    check = ConsumptionCheck(ref.lang, ref.budget.streams.sizes)
    kept: dict[int, RankBatches] = {}
    coverage = {}
    for epoch in range(max(coverage_epochs)):
        if epoch:
            log(f"planning epoch {epoch} ...")
            plan = ref.plan(epoch)
        check.feed(consumption_order(plan), label=f"epoch {epoch}")
        if epoch < 2:
            kept[epoch] = plan.rank_batches(0)
        if epoch + 1 in coverage_epochs:
            coverage[epoch + 1] = coverage_report(check, ref.languages)
        del plan
    result["consumption"] = {
        "worst": round(check.worst, 5),
        "worst_at": check.worst_at,
        "epochs_checked": max(coverage_epochs),
        "checkpoints_per_epoch": 200,
    }
    result["coverage"] = coverage
    log("resume checks ...")
    stops = [(0, len(kept[0]) // 2), (1, 0), (1, len(kept[1]) // 3)]
    result["resume"] = [resume_check(ref, kept[e], fresh, e, k) for e, k in stops]
    if one_core and cores:
        os.sched_setaffinity(0, cores)
    if tokenizer_model is None:
        result["loader"] = {"error": "no tokenizer model given (--tokenizer)"}
    else:
        log(f"DataLoader with {loader_workers} workers for {loader_seconds:g} s ...")
        batches = [kept[0][i] for i in range(min(len(kept[0]), 20000))]
        try:
            result["loader"] = loader_throughput(
                index, ref.languages, tokenizer_model, batches, loader_workers, loader_seconds
            )
        except Exception as exc:  # reported, not fatal: the other figures stand
            result["loader"] = {"error": f"{type(exc).__name__}: {exc}"}
    return result


def render_table(result: dict) -> str:
    """The goals of the rehearsal with their figures, one line each."""
    p, q, c = result["plan"], result["plan_quality"], result["consumption"]
    lines = [
        f"rehearsal: {p['rows']:,} rows, {result['ranks']} ranks, T={result['temperature']}",
        f"  plan one epoch (1 core)     {p['plan_seconds']:8.1f} s wall, "
        f"{p['plan_cpu_seconds']:.1f} s CPU, peak RSS {p['peak_rss_gib']:.2f} GiB "
        "(goal <= 60 s, <= 3 GB)",
        f"  no repeat before exhaustion  worst distinct/min(rows, drawn) {c['worst']:.4f} over "
        f"{c['epochs_checked']} epochs   (goal >= 0.99)",
        f"  share error                 {q['share_error_pp_max']:8.3f} pp max   (goal <= 1 pp)",
        f"  rank cost max/mean          {q['rank_cost_max_over_mean_worst_step']:8.4f} worst step,"
        f" p99 {q['rank_cost_max_over_mean_p99']:.4f}   (goal <= 1.05)",
        f"  shortest/longest bucket audio {q['shortest_over_longest_bucket_audio']} (goal >= 0.8)",
    ]
    for bk in q["buckets"]:
        lines.append(
            f"    bucket {bk['bucket_s'][0]:>4g}-{bk['bucket_s'][1]:<4g} s  cap {bk['cap']:>4}  "
            f"mean B {bk['mean_batch_size']:>6}  audio/batch {bk['mean_audio_s']:>7} s  "
            f"padding eff {bk['padding_efficiency']}"
        )
    for r in result["resume"]:
        lines.append(
            f"  resume epoch {r['epoch']} after {r['stopped_after_batches']} batches: identical="
            f"{r['identical']}, restore {r['state_restore_seconds']} s (goal <= 5 s), re-plan "
            f"{r['replan_seconds']} s"
        )
    for k, cov in result["coverage"].items():
        dmin = min(cov.items(), key=lambda kv: kv[1]["distinct_fraction"])
        rmax = max(cov.items(), key=lambda kv: kv[1]["repeat_factor"])
        lines.append(
            f"  coverage after {k:>2} epoch(s): min distinct {dmin[1]['distinct_fraction']:.3f} "
            f"({dmin[0]}), max repeat factor {rmax[1]['repeat_factor']:.2f} ({rmax[0]})"
        )
    ld = result.get("loader")
    if ld and "error" not in ld:
        lines.append(
            f"  DataLoader {ld['workers']} workers: {ld['clips_per_s']} clips/s, "
            f"{ld['audio_s_per_s']} audio-s/s; x{WORKERS_PER_GPU} workers/GPU ~ "
            f"{ld[f'extrapolated_{WORKERS_PER_GPU}_workers_audio_s_per_s']} audio-s/s vs "
            f"{H200_AUDIO_S_PER_S:g} an H200 consumes"
        )
    elif ld:
        lines.append(f"  DataLoader: {ld['error']}")
    lines += _lookup_lines(result.get("row_lookup")) + _stage_lines(result.get("prod_stages"))
    return "\n".join(lines)


def _lookup_lines(report: dict | None) -> list[str]:
    """Row-lookup goals from scripts/bench_row_lookup.py's JSON (``make rehearsal`` runs it)."""
    if not report:
        return ["  row lookup: not measured (python scripts/bench_row_lookup.py)"]
    sizes, s = report["sizes"], report["summary"]
    lines = []
    for size, e in sizes.items():
        old = e.get("old_take", {})
        lines.append(
            f"  row lookup {int(size):>11,} rows: hot {e['hot']['mean_ms']:.3f} ms, random "
            f"{e['random']['mean_ms']:.3f} ms, {e['hot']['arrow_peak_bytes_per_lookup']} Arrow B,"
            f" {e['hot'].get('python_peak_bytes_per_lookup', 0) / 1024:.1f} KB Python heap"
            + (f"; old take {old['mean_ms']} ms" if old.get("mean_ms") is not None else "")
        )
    first, last = next(iter(sizes)), list(sizes)[-1]
    lines.append(
        f"  row lookup {int(last):,} vs {int(first):,}: hot {s['hot_ratio_largest_vs_smallest']}x,"
        f" random {s['random_ratio_largest_vs_smallest']}x (goal <= 1.5x); peak "
        f"{s['max_arrow_peak_bytes_per_lookup']} Arrow B and "
        f"{s.get('max_python_peak_bytes_per_lookup', 0) / 1024:.1f} KB Python heap per lookup "
        f"(goal <= 1 MB); anon RSS growth "
        f"{s['max_rss_anon_growth_mb']} MB over {report['lookups']:,} lookups (goal <= 100 MB)"
    )
    return lines


def _stage_lines(report: dict | None) -> list[str]:
    """Projected `make prod-artifacts` wall time from scripts/bench_prod_stages.py's JSON."""
    if not report:
        return ["  prod-artifacts stages: not measured (python scripts/bench_prod_stages.py)"]
    rates = ", ".join(
        f"{name} {st['rows_per_s']:,.0f}/s" for name, st in report["stages"].items()
        if st.get("rows_per_s")
    )  # fmt: skip
    return [
        f"  prod-artifacts stages (rows/s, 1 core): {rates}",
        f"  prod-artifacts projected for {report['target_rows']:,} rows on {report['cores']} "
        f"cores: {report['projected_total_h']} h",
    ]
