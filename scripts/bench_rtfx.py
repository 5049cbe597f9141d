#!/usr/bin/env python3
"""Benchmark RTFx (audio seconds per second of model time) of TDT vs CTC decoding by batch size.

Usage:
    python scripts/bench_rtfx.py                              # random "small" model, CPU
    python scripts/bench_rtfx.py --model M.nemo --device cuda --batch-sizes 1,8,32,64
    python scripts/bench_rtfx.py --size tiny --batch-sizes 1,4 --per-language 2

Audio: the demo corpus under --shards (default artifacts/demo/shards; a small one is synthesised
into a temporary folder when it is missing). Model: --model, or a randomly initialised stock
hybrid TDT+CTC model of --size (maya_asr.inference.tiny_model) — its TDT head is untrained, so
treat TDT figures of a random model as indicative only; measure a trained .nemo for real ones.

Each (decoder, batch size) runs once untimed, then --repeats timed passes, interleaved with the
other configurations; the best pass counts.
The baseline, measured in the same run, is TDT at the first batch size: every row also shows its
speed-up against it. A long-audio section times one >60 s clip with full and with local
attention. Figures go to artifacts/bench/rtfx_<device>_<model>.json and are printed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 1)[1],
    )
    p.add_argument("--model", help=".nemo to measure (default: a random model of --size)")
    p.add_argument("--size", choices=("tiny", "small"), default="small")
    p.add_argument("--shards", default="artifacts/demo/shards", help="demo corpus root")
    p.add_argument("--per-language", type=int, default=6, help="utterances per language")
    p.add_argument("--batch-sizes", default="1,4,16")
    p.add_argument("--decoders", default="tdt,ctc")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--long-seconds", type=float, default=65.0, help="0 skips the long-audio part")
    p.add_argument("--out-dir", default="artifacts/bench")
    return p.parse_args(argv)


def _corpus(shards: str, tmp: str) -> Path:
    root = Path(shards)
    if any(root.glob("*/shard-*.tar")):
        return root
    from maya_asr.data.demo_corpus import DemoCorpusConfig, build_demo_corpus

    root = Path(tmp) / "corpus"
    print(f"no demo corpus under {shards}: synthesising a small one in {root}")
    build_demo_corpus(DemoCorpusConfig(output_root=root, utts_per_lang=6, shard_size=6), False)
    return root


def _measure(model, configs: list[tuple[dict, list, object]], repeats: int) -> list[dict]:
    """Best-of-``repeats`` figures per (label, inputs, options) config. Passes are interleaved
    (every config once, then again) so a load spike on a shared machine hits all configs alike
    instead of skewing the one that happened to run during it."""
    from maya_asr.inference.transcriber import RunStats, transcribe_inputs

    for _, items, options in configs:  # warm-up, untimed
        list(transcribe_inputs(model, items[: options.batch_size], options, progress=False))
    best: list[RunStats | None] = [None] * len(configs)
    for _ in range(repeats):
        for i, (_, items, options) in enumerate(configs):
            stats = RunStats()
            for _ in transcribe_inputs(model, items, options, stats=stats, progress=False):
                pass
            if best[i] is None or stats.model_seconds < best[i].model_seconds:
                best[i] = stats
    return [
        {
            **label,
            "audio_seconds": round(b.audio_seconds, 2),
            "model_seconds": round(b.model_seconds, 3),
            "rtfx": round(b.rtfx, 2),
            "local_attention_utterances": b.local_attention_utterances,
        }
        for (label, _, _), b in zip(configs, best, strict=True)
    ]


def _long_clip(items, rate: int, seconds: float, folder: str):
    import numpy as np
    import soundfile as sf

    from maya_asr.inference.inputs import files_to_inputs, read_audio

    parts, total = [], 0
    while total < seconds * rate:
        for item in items:
            parts.append(read_audio(item, rate))
            total += len(parts[-1])
    path = Path(folder) / "long.wav"
    sf.write(path, np.concatenate(parts)[: int(seconds * rate)], rate)
    return files_to_inputs([path])


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from maya_asr.inference import inputs as inp
    from maya_asr.inference.tiny_model import build_tiny_model
    from maya_asr.inference.transcriber import TranscribeOptions, load_model, sample_rate_of

    if args.threads:
        torch.set_num_threads(args.threads)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    decoders = [d for d in args.decoders.split(",") if d]
    with tempfile.TemporaryDirectory(prefix="maya-bench-") as tmp:
        root = _corpus(args.shards, tmp)
        rows = inp.shard_rows(root, args.per_language)
        items = [inp.row_to_input(r, f"{r['tar_path']}:{r['key']}", root) for r in rows]
        model_path = args.model
        if model_path is None:
            model_path = build_tiny_model(
                [r["text"] for r in rows], Path(tmp) / f"{args.size}.nemo", args.size
            )
        model = load_model(str(model_path), args.device)
        device = str(next(model.parameters()).device)
        label = Path(args.model).stem if args.model else f"random-{args.size}"
        print(f"{label} on {device} ({torch.get_num_threads()} threads), {len(items)} utterances")

        configs = [
            ({"decoder": d, "batch_size": bs}, items, TranscribeOptions(decoder=d, batch_size=bs))
            for d in decoders
            for bs in batch_sizes
        ]
        runs = _measure(model, configs, args.repeats)
        for r in runs:
            r["speedup_vs_baseline"] = round(r["rtfx"] / runs[0]["rtfx"], 2)

        long_runs = []
        if args.long_seconds > 0:
            clip = _long_clip(items, sample_rate_of(model), args.long_seconds, tmp)
            configs = [
                (
                    {"decoder": d, "attention": mode},
                    clip,
                    TranscribeOptions(decoder=d, batch_size=1, long_audio_s=threshold),
                )
                for d in decoders
                for mode, threshold in (("full", 1e9), ("local", 40.0))
            ]
            long_runs = _measure(model, configs, args.repeats)

    report = {
        "model": label,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "host": platform.node(),
        "utterances": len(items),
        "baseline": f"{runs[0]['decoder']} batch {runs[0]['batch_size']}",
        "runs": runs,
        "long_audio": long_runs,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = Path(args.out_dir) / f"rtfx_{device.split(':')[0]}_{label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))

    print(f"\n| decoder | batch | RTFx | x baseline ({report['baseline']}) |\n|---|---:|---:|---:|")
    for r in runs:
        ratio = r["speedup_vs_baseline"]
        print(f"| {r['decoder']} | {r['batch_size']} | {r['rtfx']:.1f} | {ratio:.2f} |")
    if long_runs:
        print(f"\n{args.long_seconds:.0f} s clip, batch 1:")
        print("| decoder | attention | RTFx |\n|---|---|---:|")
        for r in long_runs:
            print(f"| {r['decoder']} | {r['attention']} | {r['rtfx']:.1f} |")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
