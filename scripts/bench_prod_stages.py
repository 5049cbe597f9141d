#!/usr/bin/env python3
"""Throughput of each `make prod-artifacts` stage, and its projected wall time at 150K hours.

Usage:
    python scripts/bench_prod_stages.py                      # 200K-row synthetic manifest
    python scripts/bench_prod_stages.py --rows 50000 --cores 64 --target-rows 50000000

Measured here, one process per stage (threads=1), in one run:
  manifest   build_parts + merge_parts on the demo shards (--shards, real audio headers and
             JSON; configs/data/demo.yaml): rows/s of one worker, and of the serial merge;
  split      split_manifest on a synthetic manifest of --rows rows written from the rehearsal
             index (maya_asr.data.rehearsal_corpus: production durations and transcript sizes);
  tokenizer  build_tokenizer (configs/data/prod.yaml: vocab 32000, max_sentences 5M) on its
             train split: the sampling passes and the SentencePiece training timed apart;
  index      build_index on the train split: total, and again with token counting stubbed
             out (the serial JSON parse + parquet write; the difference is tokenisation);
  report     scan_index (the data report's pass over the parquet).
Projection to --target-rows rows (default 50M, ~146K h) on a --cores node (default 64):
manifest workers and index tokenisation threads scale with cores (shards and blocks are
independent; assumes storage keeps up with ~4 KB of header reads per clip); merge, split,
tokenizer sampling, parquet writing and the report are serial; SentencePiece training grows
with its sentences, capped at max_sentences (assumed linear, and given no thread speed-up).
Writes artifacts/bench/prod_stages.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _lines(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


def synthetic_manifest(index: Path, out: Path) -> int:
    """The rehearsal index as manifest.jsonl rows (unique keys, trailing space trimmed)."""
    import pyarrow.parquet as pq

    rows = 0
    with open(out, "w", encoding="utf-8") as f:
        for batch in pq.ParquetFile(index).iter_batches(batch_size=65536):
            for r in batch.to_pylist():
                key = f"{r['language']}_{rows:09d}"
                rec = {
                    "key": key, "audio_filepath": f"{r['tar_path']}#{key}.wav",
                    "duration": round(float(r["duration_s"]), 6), "text": r["transcript"].rstrip(),
                    "lang": r["language"], "speaker": r["speaker"],
                    "sample_rate": r["sample_rate"], "tar_path": r["tar_path"],
                    "tar_offset_data": r["tar_offset_data"], "tar_nbytes": r["tar_nbytes"],
                }  # fmt: skip
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                rows += 1
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shards", default=str(REPO / "artifacts/demo/shards"))
    parser.add_argument("--rows", type=int, default=200_000, help="synthetic manifest rows")
    parser.add_argument("--target-rows", type=int, default=50_000_000)
    parser.add_argument("--cores", type=int, default=64)
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--output", default=str(REPO / "artifacts/bench/prod_stages.json"))
    args = parser.parse_args(argv)

    from maya_asr.data import index as index_module
    from maya_asr.data.config import load_data_config
    from maya_asr.data.index import build_index
    from maya_asr.data.manifest import build_parts, discover_shards, merge_parts
    from maya_asr.data.rehearsal_corpus import scan_pool, write_rehearsal_index
    from maya_asr.data.report import scan_index
    from maya_asr.data.split import split_manifest
    from maya_asr.data.tokenizer import build_tokenizer, sample_text

    demo_cfg = load_data_config(REPO / "configs/data/demo.yaml")
    prod_cfg = load_data_config(REPO / "configs/data/prod.yaml")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_prod_stages_"))
    work.mkdir(parents=True, exist_ok=True)
    stages: dict[str, dict] = {}
    try:
        tasks = discover_shards(args.shards)
        _, t_parts = _timed(build_parts, tasks, work / "raw", demo_cfg, 1, True, False)
        _, t_merge = _timed(merge_parts, tasks, work / "raw")
        n = _lines(work / "raw" / "manifest.jsonl") + _lines(work / "raw" / "rejects.jsonl")
        stages["manifest (per worker)"] = {"rows": n, "s": t_parts, "parallel": True}
        stages["manifest merge"] = {"rows": n, "s": t_merge, "parallel": False}

        pool = scan_pool([t.tar_path for t in tasks])
        write_rehearsal_index(work / "synth.parquet", pool, rows=args.rows, progress=False)
        manifest = work / "manifest.jsonl"
        rows = synthetic_manifest(work / "synth.parquet", manifest)

        _, t_split = _timed(split_manifest, manifest, work / "split", prod_cfg.split)
        stages["split"] = {"rows": rows, "s": t_split, "parallel": False}

        train = work / "split" / "train.jsonl"
        train_rows = _lines(train)
        (lines, _), t_sample = _timed(sample_text, train, prod_cfg)
        _, t_tok = _timed(build_tokenizer, train, work / "tok", prod_cfg, threads=1)
        sentences = len(lines)
        cap = prod_cfg.tokenizer.max_sentences
        stages["tokenizer sampling"] = {"rows": train_rows, "s": t_sample, "parallel": False}
        stages["tokenizer training"] = {
            "rows": sentences, "s": max(t_tok - t_sample, 0.0), "parallel": False,
            "scale": min(cap, args.target_rows) / sentences,
        }  # fmt: skip

        _, t_index = _timed(
            build_index, train, work / "tok", work / "index.parquet", prod_cfg.index, 1,
            progress=False,
        )  # fmt: skip
        # the serial part alone: the same build with token counting replaced by a constant
        real_count = index_module.count_tokens
        index_module.count_tokens = lambda sp, texts, threads=1: [1] * len(texts)
        try:
            _, t_write = _timed(
                build_index, train, work / "tok", work / "plain.parquet", prod_cfg.index, 1,
                progress=False,
            )  # fmt: skip
        finally:
            index_module.count_tokens = real_count
        stages["index tokenisation"] = {
            "rows": train_rows,
            "s": max(t_index - t_write, 0.0),
            "parallel": True,
        }
        stages["index write"] = {"rows": train_rows, "s": t_write, "parallel": False}
        _, t_report = _timed(scan_index, work / "index.parquet")
        stages["report"] = {"rows": train_rows, "s": t_report, "parallel": False}
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    total = 0.0
    for s in stages.values():
        s["rows_per_s"] = round(s["rows"] / s["s"], 1) if s["s"] > 0 else None
        scale = s.pop("scale", args.target_rows / s["rows"])
        projected = s["s"] * scale / (args.cores if s["parallel"] else 1)
        s["projected_s"] = round(projected, 1)
        s["s"] = round(s["s"], 3)
        total += projected
    report = {
        "target_rows": args.target_rows,
        "cores": args.cores,
        "synthetic_rows": args.rows,
        "stages": stages,
        "projected_total_h": round(total / 3600, 2),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(f"{'stage':<24}{'rows':>9}{'s':>9}{'rows/s':>11}{'par':>5}{'projected':>12}")
    for name, s in stages.items():
        par = "yes" if s["parallel"] else "no"
        print(f"{name:<24}{s['rows']:>9,}{s['s']:>9.2f}{s['rows_per_s'] or 0:>11,.0f}"
              f"{par:>5}{s['projected_s'] / 3600:>11.2f}h")  # fmt: skip
    print(
        f"make prod-artifacts for {args.target_rows:,} rows on {args.cores} cores: "
        f"~{report['projected_total_h']} h (projection) -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
