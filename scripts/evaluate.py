#!/usr/bin/env python3
"""Score a .nemo model on a manifest: WER and CER overall and per language, both heads side by side.

Usage:
    python scripts/evaluate.py --model M.nemo --manifest val.jsonl --out-dir artifacts/eval/run1
    python scripts/evaluate.py --model new.nemo --compare old.nemo --manifest val.jsonl \\
        --out-dir artifacts/eval/new-vs-old
    python scripts/evaluate.py --model M.nemo --shards artifacts/demo/shards --per-language 20 \\
        --out-dir artifacts/eval/demo

Every head of every model (TDT and CTC for a hybrid) transcribes the whole manifest; the table
has one WER and one CER column per model/head, one row per language and an "all" row, then each
system's RTFx (audio seconds per second of model time). Writes report.md, report.json,
report.png and predictions/<model>.<head>.jsonl under --out-dir, and prints the table.

Scoring normalisation (shared with training validation, maya_asr.text.scoring): NFC, ZWJ/ZWNJ
removed, nukta letters folded to one spelling (--nukta drop also removes nuktas), native digits
to ASCII (--digits keep to keep them), punctuation and danda stripped, Latin lower-cased.
Language: a model that takes one (ours) is scored both with each row's language and
language-free (no language, as every stock NeMo client calls it: the model's language-ID when it
has one, else its language-free path); the report adds a per-language table of the two CERs and
their ratio. --language auto scores only with the language, --language none only without.
Models that take no language are scored language-free.

Chart (report.png): the first model's CER per language on its own scale; with --compare, a
second panel of every model's overall CER per head (log scale: before/after training).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 1)[1],
    )
    p.add_argument("--model", required=True, help="the .nemo file to evaluate")
    p.add_argument("--compare", action="append", default=[], help="another .nemo (repeatable)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", help="JSON-lines manifest with reference text")
    src.add_argument("--shards", help="raw shard root <root>/<lang>/shard-*.tar instead")
    p.add_argument(
        "--per-language", type=int, help="with --shards: first N utterances per language"
    )
    p.add_argument("--out-dir", required=True, help="where the reports go")
    p.add_argument("--decoders", default="", help="heads to run, e.g. tdt or tdt,ctc (default all)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    p.add_argument(
        "--language",
        choices=("both", "auto", "none"),
        default="both",
        help="score with each row's language and language-free (both), with it only (auto) or "
        "language-free only (none); default both",
    )
    p.add_argument("--nukta", choices=("fold", "drop", "keep"), default="fold")
    p.add_argument("--digits", choices=("ascii", "keep"), default="ascii")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from maya_asr.inference import inputs as inp
    from maya_asr.inference.evaluation import (
        evaluate_model,
        language_id_accuracy,
        model_labels,
        write_predictions,
    )
    from maya_asr.inference.report import language_id_report, markdown_report, write_reports
    from maya_asr.inference.transcriber import load_model
    from maya_asr.text.scoring import ScoringPolicy

    try:
        policy = ScoringPolicy(nukta=args.nukta, digits=args.digits)
        if args.manifest:
            items, source = inp.read_manifest(args.manifest), args.manifest
        else:
            items, source = inp.shard_inputs(args.shards, args.per_language), args.shards
        paths = [args.model, *args.compare]
        decoders = [d for d in args.decoders.split(",") if d]
        results, language_id = [], {}
        for path, label in zip(paths, model_labels(paths), strict=True):
            model = load_model(path, args.device)
            if (lid := language_id_accuracy(model, items, args.batch_size)) is not None:
                language_id[label] = lid
            results += evaluate_model(
                path,
                items,
                model=model,
                label=label,
                decoders=decoders or None,
                batch_size=args.batch_size,
                device=args.device,
                language=args.language,
                policy=policy,
                progress=not args.no_progress,
            )
            del model  # one model in memory at a time (--compare)
    except ValueError as e:  # InputError included
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out_dir)
    write_predictions(results, out / "predictions")
    written = write_reports(results, out, policy, source, language_id)
    print(markdown_report(results))
    if language_id:
        print(language_id_report(language_id))
    print("reports: " + ", ".join(str(p) for p in written.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
