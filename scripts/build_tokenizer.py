#!/usr/bin/env python3
"""Train the multilingual SentencePiece BPE on the train split, in NeMo's tokenizer layout.

Usage:
    python scripts/build_tokenizer.py --train data/manifests/train.jsonl \\
        --val data/manifests/val.jsonl --output-dir tokenizers/stage1_prod_bpe --vocab-size 32000

Samples transcripts per language with the config's temperature, drops lines failing the quality
filter, adds every character of each script present, and trains BPE with <unk> = id 0 and no
bos/eos. Writes tokenizer.model, tokenizer.vocab, vocab.txt (load with NeMo's tokenizer config
{dir: <output-dir>, type: bpe}), build_info.json and tokenizer_report.json (tokens per char,
tokens per second, unknown-token rate per language).
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
    parser.add_argument("--val", default=None, help="val.jsonl, for the report only")
    parser.add_argument("--output-dir", required=True, help="tokenizers/<name>")
    parser.add_argument("--config", default="configs/data/prod.yaml", help="data config YAML")
    parser.add_argument("--vocab-size", type=int, default=None, help="overrides the config")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="trainer threads")
    args = parser.parse_args(argv)

    from maya_asr.data.config import load_data_config
    from maya_asr.data.tokenizer import build_tokenizer, format_report

    try:
        cfg = load_data_config(args.config)
        info = build_tokenizer(
            args.train, args.output_dir, cfg, args.val, args.vocab_size, args.threads
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_report(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
