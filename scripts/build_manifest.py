#!/usr/bin/env python3
"""Build manifest.jsonl and rejects.jsonl from raw tar shards (<root>/<lang>/shard-*.tar).

Usage:
    python scripts/build_manifest.py --input-root artifacts/demo/shards \\
        --output-dir artifacts/demo/manifests/raw --workers 2
    # many machines (e.g. a SLURM array of 16), then one merge:
    python scripts/build_manifest.py --input-root R --output-dir O --shard-index $I --num-shards 16
    python scripts/build_manifest.py --input-root R --output-dir O --merge-only

Reads each shard once (headers only, nothing extracted or decoded), normalises and checks every
transcript with the per-language policy in --config, and writes per-shard parts under
<output-dir>/parts/ (a shard whose part is newer than its tar is skipped; --force redoes it),
then merges them into <output-dir>/manifest.jsonl, rejects.jsonl and summary.json.

Exit status: 0 done; 3 the reject rate passed --max-reject-rate; 4 no shard could be read;
2 bad arguments or input (the message says what to fix).
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input-root", required=True, help="folder of <lang>/shard-*.tar")
    parser.add_argument("--output-dir", required=True, help="where manifest.jsonl etc. go")
    parser.add_argument("--config", default="configs/data/prod.yaml", help="data config YAML")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--shard-index", type=int, default=0, help="this machine's slice")
    parser.add_argument("--num-shards", type=int, default=1, help="number of slices (machines)")
    parser.add_argument("--merge-only", action="store_true", help="only merge existing parts")
    parser.add_argument("--force", action="store_true", help="rescan shards with current parts")
    parser.add_argument(
        "--max-reject-rate", type=float, default=None,
        help="exit 3 above this reject share (default: manifest.max_reject_rate of --config)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    from maya_asr.data.config import load_data_config
    from maya_asr.data.manifest import (
        EXIT_NO_SHARDS,
        build_parts,
        discover_shards,
        exit_code,
        format_summary,
        merge_parts,
        select_slice,
    )

    try:
        cfg = load_data_config(args.config)
        tasks = discover_shards(args.input_root)
        mine = select_slice(tasks, args.shard_index, args.num_shards)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not tasks:
        print(f"error: no <lang>/shard-*.tar under {args.input_root}", file=sys.stderr)
        return EXIT_NO_SHARDS
    os.makedirs(args.output_dir, exist_ok=True)
    if not args.merge_only:
        stats = build_parts(
            mine, args.output_dir, cfg, args.workers, args.force, progress=not args.no_progress
        )
        print(
            f"slice {args.shard_index}/{args.num_shards}: scanned {stats['scanned']} shard(s), "
            f"skipped {stats['skipped']} current, {stats['wall_seconds']:.1f} s"
        )
        if args.num_shards > 1:
            print("run again with --merge-only once every slice has finished")
            return 0
    try:
        summary = merge_parts(tasks, args.output_dir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    limit = cfg.manifest.max_reject_rate if args.max_reject_rate is None else args.max_reject_rate
    code = exit_code(summary, limit)
    if code == EXIT_NO_SHARDS:
        print("error: no shard could be read (see rejects.jsonl)", file=sys.stderr)
    elif code:
        print(f"error: reject rate {summary['reject_rate']:.2%} > {limit:.2%}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
