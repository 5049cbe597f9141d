#!/usr/bin/env python3
"""Synthesise the demo encoder's pretraining corpus: espeak-ng speech in en, de, fr, es, it, nl.

Usage:
    python scripts/make_pretrain_corpus.py --output-root artifacts/demo_pretrain/shards \\
        --heldout-manifest artifacts/demo/manifests/stage1_prod_val_v2.jsonl
    python scripts/make_pretrain_corpus.py --output-root /tmp/tiny --languages de,fr \\
        --utts-per-lang 4

Writes <output-root>/<lang>/shard-NNNNNN.tar (the raw shard format) and corpus.json. No Indic
language and no demo sentence; voices are the demo's speaker styles minus the demo's validation
speakers (read from --heldout-manifest; needed when English is pretrained on). Deterministic for
a given --seed; re-running with the same flags skips finished shards.
"""

from __future__ import annotations

import argparse
import os

from maya_asr.data.demo_corpus import format_summary
from maya_asr.data.pretrain_corpus import (
    PRETRAIN_LANGUAGES,
    PretrainCorpusConfig,
    build_pretrain_corpus,
    heldout_speakers_from_manifest,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    codes = ",".join(lang.code for lang in PRETRAIN_LANGUAGES)
    parser.add_argument("--output-root", required=True, help="folder for <lang>/shard-*.tar")
    parser.add_argument("--languages", default=codes, help=f"comma-separated (default {codes})")
    parser.add_argument("--heldout-manifest", help="demo validation manifest: speakers to avoid")
    parser.add_argument("--utts-per-lang", type=int, default=400, help="utterances per language")
    parser.add_argument("--shard-size", type=int, default=50, help="utterances per shard")
    parser.add_argument("--seed", type=int, default=1, help="seed for words, speakers, formats")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    heldout = heldout_speakers_from_manifest(args.heldout_manifest) if args.heldout_manifest else ()
    cfg = PretrainCorpusConfig(
        output_root=args.output_root,
        languages=args.languages,
        utts_per_lang=args.utts_per_lang,
        shard_size=args.shard_size,
        seed=args.seed,
        workers=args.workers,
        heldout_speakers=heldout,
    )
    summary = build_pretrain_corpus(cfg, progress=not args.no_progress)
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
