#!/usr/bin/env python3
"""Synthesise the 12-language demo corpus with espeak-ng, in the production raw shard format.

Usage:
    python scripts/make_demo_corpus.py --output-root artifacts/demo/shards
    python scripts/make_demo_corpus.py --output-root /tmp/tiny --languages hi,en --utts-per-lang 4

Writes <output-root>/<lang>/shard-NNNNNN.tar (WAV/FLAC + JSON per key) and corpus.json.
Deterministic for a given --seed; re-running with the same flags skips finished shards.
"""

from __future__ import annotations

import argparse
import os

from maya_asr.data.demo_corpus import DemoCorpusConfig, build_demo_corpus, format_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output-root", required=True, help="folder for <lang>/shard-*.tar")
    parser.add_argument("--languages", default="all", help="comma-separated codes (default all)")
    parser.add_argument(
        "--utts-per-lang",
        type=int,
        default=DemoCorpusConfig.utts_per_lang,
        help="utterances per language",
    )
    parser.add_argument("--shard-size", type=int, default=50, help="utterances per shard")
    parser.add_argument("--seed", type=int, default=0, help="seed for words, speakers, formats")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    cfg = DemoCorpusConfig(
        output_root=args.output_root,
        languages=args.languages,
        utts_per_lang=args.utts_per_lang,
        shard_size=args.shard_size,
        seed=args.seed,
        workers=args.workers,
    )
    summary = build_demo_corpus(cfg, progress=not args.no_progress)
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
