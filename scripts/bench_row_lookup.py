#!/usr/bin/env python3
"""Benchmark the dataset's row lookup against index size, and against the old Table.take.

Usage:
    python scripts/bench_row_lookup.py                                  # 0.2M, 5M, 50M rows
    python scripts/bench_row_lookup.py --sizes 200000,5000000 --lookups 2000   # quicker

For each size: the rehearsal index (scripts/make_rehearsal_index.py over --pool, reused when
present) and its loader view (lf_asr.data.index_view, built in a fresh process: time, peak RSS,
size). Then, each in a fresh process, --lookups lookups of 16 random rows:
  hot     rows drawn from 4,096 rows already looked up once (their pages in the page cache):
          the cost of the lookup itself;
  random  rows drawn uniformly from the whole index: adds page faults, which grow once the view
          exceeds the free RAM (say so when reading the figure);
reporting mean/p50/p99 ms, Arrow bytes allocated per lookup (peak, from a proxy pool) and kept
after, the Python-heap peak of one lookup (tracemalloc over 200 more lookups: the records gathered
and the strings returned), and growth of the process's anonymous RSS (leaks) and file-backed RSS
(mapped pages) over the lookups. Baseline in the same run, for sizes up to --old-take-max: the old
lookup, ``Table.take`` on the index's columns read from the parquet as one table (what
ProductionDataset.rows did).
Writes artifacts/bench/row_lookup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _rss_parts_mb() -> dict[str, float]:
    """Anonymous (private heap) and file-backed (mapped pages) resident memory, in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024
    return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_build(index: str) -> dict:
    from lf_asr.data.index_view import open_index_view, view_paths

    files = view_paths(Path(index))
    t0 = time.perf_counter()
    built = not files.rows.exists()
    view = open_index_view(index)
    return {
        "rows": len(view),
        "built_now": built,
        "build_s": round(time.perf_counter() - t0, 2),
        "view_bytes": sum(p.stat().st_size for p in files),
        "record_bytes": files.rows.stat().st_size,
        "text_bytes": files.text.stat().st_size,
        "shards": len(view.shards),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def child_lookup(index: str, mode: str, lookups: int, seed: int) -> dict:
    import numpy as np
    import pyarrow as pa

    from lf_asr.data.index_view import open_index_view

    view = open_index_view(index)
    n = len(view)
    rng = np.random.default_rng(seed)
    if mode == "hot":
        working = rng.integers(0, n, 4096)
        for i in range(0, len(working), 16):
            view.rows(working[i : i + 16])  # warm: pages of these rows now in the page cache
        draws = working[rng.integers(0, len(working), (lookups, 16))]
    else:
        draws = rng.integers(0, n, (lookups, 16))
    before, alloc0 = _rss_parts_mb(), pa.total_allocated_bytes()
    default = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(default)  # every Arrow allocation of the lookups lands here
    pa.set_memory_pool(pool)
    times = np.empty(lookups)
    for i, rows in enumerate(draws):
        t = time.perf_counter()
        view.rows(rows)
        times[i] = time.perf_counter() - t
    pa.set_memory_pool(default)
    after = _rss_parts_mb()
    # What a lookup allocates on the Python heap (numpy's gather, the bytes and str it returns),
    # peak per lookup over 200 more lookups: traced apart from the timing (tracing is slow)
    import tracemalloc

    tracemalloc.start()
    py_peak = 0
    for rows in draws[:200]:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        got = view.rows(rows)
        py_peak = max(py_peak, tracemalloc.get_traced_memory()[1] - base)
        del got
    tracemalloc.stop()
    ms = times * 1e3
    return {
        "rows": n,
        "mode": mode,
        "lookups": lookups,
        "mean_ms": round(float(ms.mean()), 4),
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "arrow_peak_bytes_per_lookup": int(pool.max_memory()),
        "arrow_bytes_kept": int(pa.total_allocated_bytes() - alloc0),
        "python_peak_bytes_per_lookup": int(py_peak),
        "rss_anon_growth_mb": round(after["RssAnon"] - before["RssAnon"], 1),
        "rss_file_growth_mb": round(after["RssFile"] - before["RssFile"], 1),
    }


def child_old_take(index: str, lookups: int, seed: int) -> dict:
    """The old lookup: ``Table.take`` on the index's columns read as one table, one chunk per
    row group (what ProductionDataset.rows did: every chunk of a string column is concatenated
    first, so time and allocation grow with the index)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from lf_asr.data.index_view import DATASET_COLUMNS

    table = pq.read_table(index, columns=list(DATASET_COLUMNS), memory_map=True)
    # the lookups' own pool, passed to take: its peak is the largest lookup's allocation (the
    # table was read into the default pool; a proxy pool crashes pyarrow 26 inside this take).
    # When the default pool is the system pool already, the peak includes the table: say so.
    pool = pa.system_memory_pool()
    shared_pool = pool.backend_name == pa.default_memory_pool().backend_name
    rng = np.random.default_rng(seed)
    times = []
    error = None
    for _ in range(lookups):
        idx = pa.array(rng.integers(0, table.num_rows, 16))
        t = time.perf_counter()
        try:
            sub = pc.take(table, idx, memory_pool=pool)
        except pa.ArrowInvalid as e:  # offset overflow once a string column passes 2 GiB
            error = str(e)
            break
        {name: sub.column(name).to_pylist() for name in sub.column_names}
        times.append(time.perf_counter() - t)
    return {
        "rows": table.num_rows,
        "lookups": len(times),
        "mean_ms": round(1e3 * float(np.mean(times)), 2) if times else None,
        "arrow_peak_bytes_per_lookup": None if shared_pool else int(pool.max_memory()),
        "error": error,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def _run_child(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    cmd = ["nice", sys.executable, __file__, "--child", *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ensure_index(size: int, pool: list[str], folder: Path) -> Path:
    index = folder / f"index_{size}.parquet"  # the name scripts/rehearsal.py uses
    cmd = [sys.executable, str(REPO / "scripts" / "make_rehearsal_index.py"), "--pool", *pool,
           "--rows", str(size), "--output", str(index), "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    subprocess.run(["nice", *cmd], check=True, env=env, stdout=subprocess.DEVNULL)
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="200000,5000000,50000000", help="index rows")
    parser.add_argument("--pool", nargs="+", default=[str(REPO / "artifacts/demo/shards")])
    parser.add_argument(
        "--workdir",
        default=str(REPO / "artifacts/rehearsal"),
        help="indexes (shared with rehearsal.py)",
    )
    parser.add_argument("--lookups", type=int, default=10_000, help="16-row lookups per mode")
    parser.add_argument("--old-take-max", type=int, default=5_000_000, help="largest old take")
    parser.add_argument("--old-take-lookups", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(REPO / "artifacts/bench/row_lookup.json"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, index, *rest = args.child
        if kind == "build":
            result = child_build(index)
        elif kind == "lookup":
            result = child_lookup(index, rest[0], int(rest[1]), int(rest[2]))
        else:
            result = child_old_take(index, int(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return 0

    folder = Path(args.workdir)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results: dict[str, dict] = {}
    for size in sizes:
        index = _ensure_index(size, args.pool, folder)
        entry = {"index_bytes": index.stat().st_size, "view": _run_child("build", str(index))}
        for mode in ("hot", "random"):
            entry[mode] = _run_child("lookup", str(index), mode, str(args.lookups), str(args.seed))
        if size <= args.old_take_max:
            entry["old_take"] = _run_child(
                "old", str(index), str(args.old_take_lookups), str(args.seed)
            )
        results[str(size)] = entry
        print(f"{size:>11,} rows: view {entry['view']['view_bytes'] / 2**30:6.2f} GiB built in "
              f"{entry['view']['build_s']} s (peak RSS {entry['view']['peak_rss_mb']:.0f} MB); "
              f"hot {entry['hot']['mean_ms']:.3f} ms, random {entry['random']['mean_ms']:.3f} ms"
              + (f"; old take {entry['old_take']['mean_ms']} ms" if "old_take" in entry else ""),
              flush=True)  # fmt: skip

    smallest, largest = str(sizes[0]), str(sizes[-1])
    summary = {
        "hot_ratio_largest_vs_smallest": round(
            results[largest]["hot"]["mean_ms"] / results[smallest]["hot"]["mean_ms"], 3
        ),
        "random_ratio_largest_vs_smallest": round(
            results[largest]["random"]["mean_ms"] / results[smallest]["random"]["mean_ms"], 3
        ),
        "max_arrow_peak_bytes_per_lookup": max(
            results[s][m]["arrow_peak_bytes_per_lookup"] for s in results for m in ("hot", "random")
        ),
        "max_python_peak_bytes_per_lookup": max(
            results[s][m]["python_peak_bytes_per_lookup"]
            for s in results
            for m in ("hot", "random")
        ),
        "max_rss_anon_growth_mb": max(
            results[s][m]["rss_anon_growth_mb"] for s in results for m in ("hot", "random")
        ),
        "free_ram_gb_at_end": round(
            os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1
        ),
    }
    report = {"lookups": args.lookups, "sizes": results, "summary": summary}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(
        f"\n{'rows':>11} {'hot ms':>8} {'rand ms':>8} {'alloc KB':>8} {'anon MB':>8} {'old ms':>9}"
    )
    for size, e in results.items():
        old = e.get("old_take", {}).get("mean_ms")
        kb = max(e[m]["python_peak_bytes_per_lookup"] for m in ("hot", "random")) / 1024
        print(f"{int(size):>11,} {e['hot']['mean_ms']:>8.3f} {e['random']['mean_ms']:>8.3f} "
              f"{kb:>8.1f} "
              f"{max(e['hot']['rss_anon_growth_mb'], e['random']['rss_anon_growth_mb']):>8.1f} "
              f"{old if old is not None else '-':>9}")  # fmt: skip
    print(f"hot lookup {largest} vs {smallest} rows: {summary['hot_ratio_largest_vs_smallest']}x "
          f"(goal <= 1.5x); random: {summary['random_ratio_largest_vs_smallest']}x -> "
          f"{args.output}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
