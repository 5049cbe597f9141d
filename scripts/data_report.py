#!/usr/bin/env python3
"""Write the data report (JSON, markdown, PNG plots) from the artifacts of make prod-artifacts.

Usage:
    python scripts/data_report.py --index artifacts/phase3/production_train_final.parquet \\
        --val-manifest data/manifests/stage1_prod_val_v2.jsonl \\
        --manifest-summary data/manifests/raw/summary.json \\
        --split-report data/manifests/split_report.json \\
        --tokenizer-report tokenizers/stage1_prod_bpe/tokenizer_report.json \\
        --output-dir artifacts/phase3/data_report

Hours per language, the duration histogram, BPE tokens per second per language and rejects per
reason go to report.json, report.md and hours_per_language.png, duration_histogram.png,
tokens_per_second.png, rejects_by_reason.png.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", required=True, help="production parquet")
    parser.add_argument("--val-manifest", required=True, help="val manifest JSONL")
    parser.add_argument("--manifest-summary", required=True, help="summary.json of build_manifest")
    parser.add_argument("--split-report", default=None, help="split_report.json")
    parser.add_argument("--tokenizer-report", default=None, help="tokenizer_report.json")
    parser.add_argument("--output-dir", required=True, help="folder for the report files")
    args = parser.parse_args(argv)

    from maya_asr.data.report import build_report, to_markdown, write_report

    try:
        report = build_report(
            args.index, args.val_manifest, args.manifest_summary,
            args.split_report, args.tokenizer_report,
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    files = write_report(report, args.output_dir)
    print(to_markdown(report).split("\n## ")[0].strip())
    print(f"wrote {', '.join(files)} to {args.output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
