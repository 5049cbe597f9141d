#!/usr/bin/env python3
"""Write a production-shaped index (default 50M rows, ~147K h) over a pool of real shards.

Usage:
    python scripts/make_rehearsal_index.py --pool artifacts/demo/shards \\
        --output artifacts/rehearsal/index_50M.parquet
    python scripts/make_rehearsal_index.py --pool a/hi/shard-000000.tar a/ta/shard-000000.tar \\
        --rows 200000 --output /tmp/index_200k.parquet

--pool takes shard files or folders (searched for <lang>/shard-*.tar). Rows follow the stated
hours per language, durations and tokens-per-second of maya_asr.data.rehearsal_corpus
(PRODUCTION_MIX), and point at real audio members of the pool, so the loader decodes real bytes.
Written one row group at a time (bounded memory). Skipped when the output exists with the same
row count and seed (--force rewrites). Prints the per-language table and writes
<output>.summary.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def pool_shards(items: list[str]) -> list[Path]:
    shards: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            shards.extend(sorted(item.glob("*/shard-*.tar")) or sorted(item.glob("shard-*.tar")))
        elif item.is_file():
            shards.append(item)
        else:
            raise FileNotFoundError(f"--pool {item} is neither a shard nor a folder of shards")
    return shards


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pool", nargs="+", required=True, help="shards or shard folders")
    parser.add_argument("--output", required=True, help="parquet to write")
    parser.add_argument("--rows", type=int, default=50_000_000, help="rows (default 50M)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--row-group-rows", type=int, default=500_000)
    parser.add_argument("--max-duration-s", type=float, default=40.0, help="longest clip")
    parser.add_argument("--force", action="store_true", help="rewrite an existing index")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    from maya_asr.data.rehearsal_corpus import scan_pool, write_rehearsal_index

    out = Path(args.output)
    summary_path = out.with_name(out.name + ".summary.json")
    if out.exists() and summary_path.exists() and not args.force:
        old = json.loads(summary_path.read_text())
        if (old.get("rows"), old.get("seed")) == (args.rows, args.seed):
            print(f"{out} exists ({args.rows:,} rows, seed {args.seed}); --force rewrites it")
            return 0
    try:
        pool = scan_pool(pool_shards(args.pool))
        t0 = time.perf_counter()
        info = write_rehearsal_index(
            out, pool, rows=args.rows, seed=args.seed, row_group_rows=args.row_group_rows,
            max_duration_s=args.max_duration_s, progress=not args.no_progress,
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    info["write_s"] = round(time.perf_counter() - t0, 1)
    info["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    info["bytes"] = out.stat().st_size
    summary_path.write_text(json.dumps(info, indent=2))

    print(f"{'lang':<6}{'rows':>12}{'hours':>10}{'mean_s':>8}{'tok/s':>7}{'pool':>6}")
    for lang, s in info["languages"].items():
        print(f"{lang:<6}{s['rows']:>12,}{s['hours']:>10,.0f}{s['mean_duration_s']:>8.2f}"
              f"{s['tokens_per_s']:>7.2f}{s['pool_members']:>6}")  # fmt: skip
    print(f"{info['rows']:,} rows, {info['hours']:,.0f} h over {info['pool_members']} real clips "
          f"in {info['pool_shards']} shards -> {out} ({info['bytes'] / 2**30:.2f} GiB) in "
          f"{info['write_s']} s, peak RSS {info['peak_rss_mb']:.0f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
