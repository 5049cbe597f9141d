#!/usr/bin/env python3
"""Split manifest.jsonl into train.jsonl and val.jsonl: per language, speaker-disjoint, stable.

Usage:
    python scripts/split_manifest.py --manifest data/manifests/raw/manifest.jsonl \\
        --output-dir data/manifests --config configs/data/prod.yaml

Val size per language comes from the config's split section (val_hours or val_fraction, with
min_val_utterances). The thresholds chosen on the first run are kept in
<output-dir>/split_state.json: re-running after new shards arrive never moves an existing
utterance between train and val. --reset recomputes them (and does move utterances).
Writes train.jsonl, val.jsonl, split_report.json and split_state.json.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--manifest", required=True, help="manifest.jsonl from build_manifest.py")
    parser.add_argument("--output-dir", required=True, help="where train/val.jsonl go")
    parser.add_argument("--config", default="configs/data/prod.yaml", help="data config YAML")
    parser.add_argument("--reset", action="store_true", help="recompute val thresholds")
    args = parser.parse_args(argv)

    from maya_asr.data.config import load_data_config
    from maya_asr.data.split import format_report, split_manifest

    try:
        cfg = load_data_config(args.config)
        report = split_manifest(args.manifest, args.output_dir, cfg.split, reset=args.reset)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
