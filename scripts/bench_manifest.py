#!/usr/bin/env python3
"""Benchmark manifest building against a naive baseline on the same shards, in one run.

Usage:
    make demo-corpus   # the source of real espeak-ng utterances
    python scripts/bench_manifest.py --source-root artifacts/demo/shards --copies 4
    python scripts/bench_manifest.py --long-clips 100 --bench-root artifacts/bench/long_clips \
        --output artifacts/bench/manifest_long_clips.json   # production-like ~10 s clips

Builds a bench corpus by re-keying the source corpus --copies times (real audio and text, more
shards), warms the page cache, then times:
  ours   header-only scan (scripts/build_manifest.py's code path), 1 and 2 processes;
  naive  tarfile.extractfile + full soundfile decode for the duration, same text policy,
         1 and 2 processes.
Writes artifacts/bench/manifest.json and prints the speedups.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


def make_bench_corpus(source_root: Path, out_root: Path, copies: int) -> int:
    """Re-key every utterance of ``source_root`` ``copies`` times into new shards; return count."""
    import tarfile

    from maya_asr.data import raw_format

    done = out_root / "corpus.json"
    wanted = {"source": str(source_root), "copies": copies}
    if done.exists() and json.loads(done.read_text()) == wanted:
        return -1
    n = 0
    for lang_dir in sorted(p for p in source_root.iterdir() if p.is_dir()):
        for shard in sorted(lang_dir.glob(raw_format.SHARD_GLOB)):
            with tarfile.open(shard) as src:
                members = [(m.name, src.extractfile(m).read()) for m in src if m.isfile()]
            for c in range(copies):
                dst = out_root / lang_dir.name / f"{shard.stem}-c{c:02d}.tar"
                dst.parent.mkdir(parents=True, exist_ok=True)
                with tarfile.open(dst, "w", format=tarfile.USTAR_FORMAT) as out:
                    for name, data in members:
                        key, ext = raw_format.split_member_name(name)
                        raw_format.add_member(out, f"{key}-c{c:02d}.{ext}", data)
                        n += ext == "json"
    done.write_text(json.dumps(wanted))
    return n


def make_long_clip_corpus(out_root: Path, per_lang: int, mean_seconds: float) -> int:
    """Synthetic shards with production-like clips (16 kHz, ~``mean_seconds`` long, WAV/FLAC);
    production averages ~10 s per utterance (150K h / 54M), the demo's espeak clips ~4 s."""
    import numpy as np

    from maya_asr.data.synthetic import SAMPLE_TEXT, SyntheticUtterance, write_utterances
    from maya_asr.languages import LANGUAGES

    done = out_root / "corpus.json"
    wanted = {"per_lang": per_lang, "mean_seconds": mean_seconds}
    if done.exists() and json.loads(done.read_text()) == wanted:
        return -1
    rng = np.random.default_rng(0)
    for lang in LANGUAGES:
        words = SAMPLE_TEXT[lang].split()
        utts = []
        for i in range(per_lang):
            seconds = float(np.clip(rng.gamma(4.0, mean_seconds / 4.0), 1.0, 30.0))
            text = " ".join(rng.choice(words, size=max(2, int(seconds * 2))))
            fmt = ("wav", "flac")[i % 2]
            key, speaker = f"{lang}_{i:06d}", f"{lang}-s{i % 7}"
            utts.append(
                SyntheticUtterance(key, lang, text, speaker, round(seconds, 3), 16000, fmt, i)
            )
        for s in range(0, per_lang, 25):
            write_utterances(out_root / lang / f"shard-{s // 25:06d}.tar", utts[s : s + 25])
    done.write_text(json.dumps(wanted))
    return per_lang * len(LANGUAGES)


def naive_shard(args) -> int:
    """The baseline: extract each member, decode the audio fully, same text checks."""
    import io
    import json as _json
    import tarfile

    import soundfile as sf

    from maya_asr.data.text_policy import check_rate, check_text, normalize_for

    tar_path, cfg = args
    records, pending = 0, {}
    with tarfile.open(tar_path) as tar:
        for m in tar:
            if not m.isfile():
                continue
            key, ext = m.name.split(".", 1)
            data = tar.extractfile(m).read()
            if ext in ("wav", "flac"):
                audio, sr = sf.read(io.BytesIO(data))
                pending.setdefault(key, {})["duration"] = len(audio) / sr
            else:
                pending.setdefault(key, {})["meta"] = _json.loads(data.decode("utf-8"))
            item = pending[key]
            if "duration" in item and "meta" in item:
                meta = item["meta"]
                policy = cfg.text[meta["lang"]]
                text = normalize_for(meta["text"], policy)
                if not (check_text(text, policy) or check_rate(text, item["duration"], policy)):
                    records += 1
                del pending[key]
    return records


def run_naive(tasks, cfg, workers: int) -> int:
    jobs = [(t.tar_path, cfg) for t in tasks]
    if workers == 1:
        return sum(map(naive_shard, jobs))
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        return sum(pool.map(naive_shard, jobs, chunksize=1))


def run_ours(tasks, cfg, workers: int, out: Path) -> int:
    from maya_asr.data.manifest import build_parts

    return build_parts(tasks, out, cfg, workers=workers, force=True, progress=False)[
        "accepted_in_scanned"
    ]


def _cpu_seconds() -> float:
    import resource

    self_, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


def _bytes_read() -> int:
    """Bytes this process read through read/pread syscalls (page-cache hits included)."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def timed(fn, repeats: int) -> tuple[list[float], list[float], int, int]:
    """Wall seconds and CPU seconds (this process + its workers) per repeat, result, bytes read."""
    times, cpu, result, read = [], [], None, 0
    for _ in range(repeats):
        c0, r0, t0 = _cpu_seconds(), _bytes_read(), time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(_cpu_seconds() - c0)
        read = _bytes_read() - r0
    return times, cpu, result, read


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source-root", default="artifacts/demo/shards", help="demo corpus")
    parser.add_argument("--bench-root", default="artifacts/bench/manifest_corpus")
    parser.add_argument("--copies", type=int, default=4, help="re-keyed copies of the source")
    parser.add_argument(
        "--long-clips", type=int, default=0,
        help="instead of the demo corpus: N synthetic 16 kHz clips per language (production-like)",
    )  # fmt: skip
    parser.add_argument("--mean-seconds", type=float, default=10.0, help="mean clip length")
    parser.add_argument("--config", default="configs/data/prod.yaml")
    parser.add_argument("--repeats", type=int, default=3, help="timings per method (median)")
    parser.add_argument("--output", default="artifacts/bench/manifest.json")
    args = parser.parse_args(argv)

    from maya_asr.data.config import load_data_config
    from maya_asr.data.manifest import discover_shards

    bench_root = Path(args.bench_root)
    if args.long_clips:
        make_long_clip_corpus(bench_root / "shards", args.long_clips, args.mean_seconds)
    else:
        source = Path(args.source_root)
        if not source.is_dir():
            print(f"error: {source} missing; run `make demo-corpus` first", file=sys.stderr)
            return 2
        make_bench_corpus(source, bench_root / "shards", args.copies)
    tasks = discover_shards(bench_root / "shards")
    cfg = load_data_config(args.config)
    total_bytes = sum(os.path.getsize(t.tar_path) for t in tasks)
    for t in tasks:  # warm the page cache: both methods then read from memory
        Path(t.tar_path).read_bytes()

    results = {}
    for name, fn in [
        ("ours_1proc", lambda: run_ours(tasks, cfg, 1, bench_root / "parts1")),
        ("ours_2proc", lambda: run_ours(tasks, cfg, 2, bench_root / "parts2")),
        ("naive_1proc", lambda: run_naive(tasks, cfg, 1)),
        ("naive_2proc", lambda: run_naive(tasks, cfg, 2)),
    ]:
        times, cpu, count, read = timed(fn, args.repeats)
        results[name] = {
            "seconds": [round(t, 4) for t in times],
            "median_s": round(statistics.median(times), 4),
            "cpu_seconds_median": round(statistics.median(cpu), 4),
            "utterances": count,
        }
        if name.endswith("1proc"):  # workers' reads are not visible from here
            results[name]["bytes_read_in_process"] = read
        print(f"{name:<12} median {results[name]['median_s']:8.3f} s  {count} utterances  "
              f"({count / statistics.median(times):,.0f} utt/s)")  # fmt: skip
    counts = {r["utterances"] for r in results.values()}
    med = {k: v["median_s"] for k, v in results.items()}
    summary = {
        "shards": len(tasks),
        "utterances": results["ours_1proc"]["utterances"],
        "bytes": total_bytes,
        "same_utterance_count": len(counts) == 1,
        "speedup_vs_naive_1proc": round(med["naive_1proc"] / med["ours_1proc"], 2),
        # the same ratio in CPU seconds: what the wall ratio would be on an idle machine
        "cpu_speedup_vs_naive_1proc": round(
            results["naive_1proc"]["cpu_seconds_median"]
            / results["ours_1proc"]["cpu_seconds_median"],
            2,
        ),
        "speedup_vs_naive_2proc": round(med["naive_2proc"] / med["ours_2proc"], 2),
        "ours_scaling_2proc": round(med["ours_1proc"] / med["ours_2proc"], 2),
        "naive_scaling_2proc": round(med["naive_1proc"] / med["naive_2proc"], 2),
        # CPU seconds with 2 workers / with 1: ~1.0 means the work splits with no extra cost,
        # so with 2 free cores the wall time would halve (a busy box cannot show that directly)
        "ours_cpu_ratio_2proc_vs_1proc": round(
            results["ours_2proc"]["cpu_seconds_median"]
            / results["ours_1proc"]["cpu_seconds_median"],
            2,
        ),
        "bytes_read_ours_vs_naive_1proc": [
            results["ours_1proc"]["bytes_read_in_process"],
            results["naive_1proc"]["bytes_read_in_process"],
        ],
        "cpus": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
        "note": "warm page cache; shared machine (see load_avg): wall figures are noisy, "
        "CPU-second ratios are not",
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"summary": summary, "runs": results}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
