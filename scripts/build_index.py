#!/usr/bin/env python3
"""Write the production index (parquet) from the train split and the val manifest from val.

Usage:
    python scripts/build_index.py --train data/manifests/train.jsonl \\
        --val data/manifests/val.jsonl --tokenizer-dir tokenizers/stage1_prod_bpe \\
        --output artifacts/phase3/production_train_final.parquet \\
        --val-output data/manifests/stage1_prod_val_v2.jsonl

The parquet has the columns of lf_asr.data.schema.PRODUCTION_INDEX_SCHEMA (num_tokens counted
with the tokenizer) and is written in row groups, so any number of rows fits in memory. The val
manifest keeps NeMo's fields (audio_filepath, duration, text) and the tar offsets our loader reads.

The data config's manifest.max_duration_s is recorded in the parquet metadata
(index_max_duration_s). With --train-config, the index is refused when clips that long would pass
the training config's last bucket edge (data.bucket_edges), since the sampler would drop them.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", required=True, help="train.jsonl from split_manifest.py")
    parser.add_argument("--val", default=None, help="val.jsonl from split_manifest.py")
    parser.add_argument("--tokenizer-dir", required=True, help="output of build_tokenizer.py")
    parser.add_argument("--output", required=True, help="production parquet to write")
    parser.add_argument("--val-output", default=None, help="val manifest JSONL to write")
    parser.add_argument("--config", default="configs/data/prod.yaml", help="data config YAML")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="tokenizer threads"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--train-config", default=None,
        help="training YAML whose data.bucket_edges must cover manifest.max_duration_s",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if (args.val is None) != (args.val_output is None):
        parser.error("--val and --val-output go together")

    from maya_asr.data.config import load_data_config
    from maya_asr.data.index import build_index, training_bucket_edges, write_val_manifest

    try:
        cfg = load_data_config(args.config)
        edges = training_bucket_edges(args.train_config) if args.train_config else None
        info = build_index(
            args.train, args.tokenizer_dir, args.output, cfg.index, args.threads,
            progress=not args.no_progress, max_duration_s=cfg.manifest.max_duration_s,
            bucket_edges=edges,
        )  # fmt: skip
        print(f"index: {info['rows']} rows, {info['row_groups']} row group(s), "
              f"{info['tokens']} tokens -> {info['path']}")  # fmt: skip
        if args.val:
            val = write_val_manifest(args.val, args.tokenizer_dir, args.val_output, args.threads)
            print(f"val manifest: {val['rows']} rows -> {val['path']}")
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
