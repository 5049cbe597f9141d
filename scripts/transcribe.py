#!/usr/bin/env python3
"""Transcribe audio with a .nemo model; one JSON line per input.

Usage:
    python scripts/transcribe.py --model M.nemo --manifest in.jsonl --output out.jsonl
    python scripts/transcribe.py --model M.nemo a.wav b.flac --output out.jsonl --decoder ctc
    python scripts/transcribe.py --model M.nemo --dir recordings/ --output out.jsonl \\
        --language hi --timestamps

Inputs: a manifest (NeMo rows with audio_filepath, or tar-offset rows with tar_path,
tar_offset_data, tar_nbytes), audio files, or every audio file under --dir. Any sample rate and
channel count is accepted (mixed to mono, resampled to the model's rate). Every input is checked
before decoding starts; a missing file stops the run with the manifest line that names it.

Output rows are the input row (or {"audio_filepath": ...}) plus "duration", "pred_text",
"decoder" and, with --timestamps, "words": [{"word", "start", "end"}] in seconds.

Audio longer than --long-audio-s (40 s) is decoded whole with local attention, not truncated.
--language passes a language to models that take one (Maya models); --language-from-manifest
takes each row's lang/language field.
"""

from __future__ import annotations

import argparse
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 1)[1],
    )
    p.add_argument("--model", required=True, help="the .nemo file")
    p.add_argument("--manifest", help="JSON-lines manifest (NeMo or tar-offset rows)")
    p.add_argument("--dir", help="transcribe every audio file under this folder")
    p.add_argument("audio", nargs="*", help="audio files")
    p.add_argument("--output", required=True, help="output JSON-lines file")
    p.add_argument("--decoder", choices=("tdt", "ctc"), default="tdt", help="head to decode with")
    lang = p.add_mutually_exclusive_group()
    lang.add_argument("--language", help="language code for every input (e.g. hi)")
    lang.add_argument(
        "--language-from-manifest", action="store_true", help="use each row's lang field"
    )
    p.add_argument("--batch-size", type=int, default=16, help="utterances per model call")
    p.add_argument("--timestamps", action="store_true", help="add word start/end times")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    p.add_argument("--long-audio-s", type=float, default=40.0, help="local attention above this")
    p.add_argument("--max-bad", type=int, default=10, help="undecodable inputs to skip at most")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if sum(map(bool, (args.manifest, args.dir, args.audio))) != 1:
        p.error("give exactly one of --manifest, --dir or audio files")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from maya_asr.inference import inputs as inp
    from maya_asr.inference.transcriber import (
        RunStats,
        TranscribeOptions,
        load_model,
        transcribe_inputs,
        write_transcripts,
    )

    try:
        options = TranscribeOptions(
            decoder=args.decoder,
            language=args.language,
            language_from_rows=args.language_from_manifest,
            batch_size=args.batch_size,
            timestamps=args.timestamps,
            long_audio_s=args.long_audio_s,
            max_bad=args.max_bad,
        )
        if args.manifest:
            items = inp.read_manifest(args.manifest)
        elif args.dir:
            items = inp.folder_to_inputs(args.dir)
        else:
            items = inp.files_to_inputs(args.audio)
        t0 = time.perf_counter()
        model = load_model(args.model, args.device)
        load_s = time.perf_counter() - t0
        stats = RunStats()
        transcripts = transcribe_inputs(
            model, items, options, stats=stats, progress=not args.no_progress
        )
        written = write_transcripts(transcripts, args.output)
    except ValueError as e:  # InputError included: bad inputs, options or model/flag mismatch
        print(f"error: {e}", file=sys.stderr)
        return 2
    rtfx = f"{stats.rtfx:.1f}" if stats.rtfx else "—"
    print(
        f"wrote {written} transcripts to {args.output} ({args.decoder}): "
        f"{stats.audio_seconds / 60:.1f} min of audio, model load {load_s:.1f} s, RTFx {rtfx}, "
        f"{stats.local_attention_utterances} long input(s) decoded with local attention"
    )
    if stats.bad:
        print(f"skipped {len(stats.bad)} undecodable input(s):", file=sys.stderr)
        for line in stats.bad:
            print(f"  {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
