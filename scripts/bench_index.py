#!/usr/bin/env python3
"""Benchmark the production index: streaming write memory vs row count, projection load time.

Usage:
    python scripts/bench_index.py --rows 1000000,5000000,20000000,50000000
    python scripts/bench_index.py --rows 1000000 --build-rows 200000,1000000   # quicker
    python scripts/bench_index.py --rows "" --baseline-rows 0 --build-rows 200000,1000000,2000000 \
        --output artifacts/bench/index_build.json   # only the real build_index path

For each row count, a fresh process streams synthetic rows (PRODUCTION_INDEX_SCHEMA, realistic
value ranges) through pyarrow's ParquetWriter one row group at a time, the way
maya_asr.data.index writes, and reports its peak RSS; another fresh process loads the sampler's
projection (duration_s, language, num_tokens) and reports time and peak RSS. Baseline in the same
run: peak RSS of a process that builds the same rows as one in-memory table first (what a
non-streaming writer does), at --baseline-rows.

--build-rows runs the real code path (maya_asr.data.index.build_index: JSON manifest ->
tokenizer -> parquet) on synthetic manifests of those sizes with --tokenizer-dir, to show its
peak RSS does not grow with rows either. Writes artifacts/bench/index.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROW_GROUP = 1_000_000


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def synthetic_batch(start: int, n: int, seed: int = 0):
    """``n`` index rows numbered from ``start``: a pyarrow Table with the production schema."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from lf_asr.data.schema import PRODUCTION_INDEX_SCHEMA
    from maya_asr.data.synthetic import SAMPLE_TEXT
    from maya_asr.languages import LANGUAGES

    rng = np.random.default_rng([seed, start])
    pool_rng = np.random.default_rng(seed)
    words = {lang: text.split() for lang, text in SAMPLE_TEXT.items()}
    pool = [
        " ".join(pool_rng.choice(words[lang], size=int(pool_rng.integers(2, 40))))
        for lang in LANGUAGES
        for _ in range(500)
    ]
    idx = np.arange(start, start + n, dtype=np.int64)
    lang_id = rng.integers(0, len(LANGUAGES), n)
    langs = pa.array(np.array(LANGUAGES)[lang_id])
    shard = idx // 2000
    tar_paths = pc.binary_join_element_wise(
        "/data/raw/", pc.cast(pa.array(shard), pa.string()), ".tar", ""
    )
    columns = {
        "tar_path": tar_paths,
        "tar_offset_data": pa.array((idx % 2000) * 400_000 + 512),
        "tar_nbytes": pa.array(rng.integers(8_000, 640_000, n)),
        "transcript": pa.array(pool).take(pa.array(lang_id * 500 + rng.integers(0, 500, n))),
        "duration_s": pa.array(rng.gamma(2.0, 3.0, n).clip(0.2, 40).astype(np.float32)),
        "language": langs,
        "speaker": pc.binary_join_element_wise(
            langs, pc.cast(pa.array(rng.integers(0, 5000, n)), pa.string()), "-spk"
        ),
        "key": pc.binary_join_element_wise(langs, pc.cast(pa.array(idx), pa.string()), "_"),
        "sample_rate": pa.array(rng.choice([8000, 16000, 22050], n).astype(np.int32)),
        "num_tokens": pa.array(rng.integers(1, 200, n).astype(np.int32)),
    }
    return pa.table(columns, schema=PRODUCTION_INDEX_SCHEMA)


def child_write(rows: int, path: str, in_memory: bool) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lf_asr.data.schema import PRODUCTION_INDEX_SCHEMA

    t0 = time.perf_counter()
    if in_memory:  # the baseline: the whole table exists before writing
        table = pa.concat_tables(
            synthetic_batch(s, min(ROW_GROUP, rows - s)) for s in range(0, rows, ROW_GROUP)
        )
        pq.write_table(table, path, row_group_size=ROW_GROUP, compression="zstd")
    else:
        with pq.ParquetWriter(path, PRODUCTION_INDEX_SCHEMA, compression="zstd") as writer:
            for s in range(0, rows, ROW_GROUP):
                writer.write_table(synthetic_batch(s, min(ROW_GROUP, rows - s)))
    return {"rows": rows, "seconds": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": round(_peak_rss_mb(), 1), "bytes": os.path.getsize(path)}  # fmt: skip


def child_project(path: str) -> dict:
    import pyarrow.parquet as pq

    from lf_asr.data.schema import SAMPLER_COLUMNS

    base = _peak_rss_mb()
    t0 = time.perf_counter()
    table = pq.read_table(path, columns=list(SAMPLER_COLUMNS), read_dictionary=["language"])
    arrays = {name: table.column(name).to_numpy() for name in ("duration_s", "num_tokens")}
    languages = table.column("language").combine_chunks().indices.to_numpy()
    seconds = time.perf_counter() - t0
    nbytes = sum(a.nbytes for a in arrays.values()) + languages.nbytes
    return {
        "rows": table.num_rows,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_before_mb": round(base, 1),
        "arrays_mb": round(nbytes / 2**20, 1),
    }


def write_manifest(path: Path, rows: int) -> None:
    """A synthetic train.jsonl with the manifest's fields (text from SAMPLE_TEXT)."""
    with open(path, "w", encoding="utf-8") as f:
        for s in range(0, rows, 100_000):
            t = synthetic_batch(s, min(100_000, rows - s)).to_pylist()
            for r in t:
                rec = {
                    "key": r["key"],
                    "audio_filepath": f"{r['tar_path']}#{r['key']}.flac",
                    "duration": round(float(r["duration_s"]), 4),
                    "text": r["transcript"],
                    "lang": r["language"],
                    "speaker": r["speaker"],
                    "sample_rate": r["sample_rate"],
                    "tar_path": r["tar_path"],
                    "tar_offset_data": r["tar_offset_data"],
                    "tar_nbytes": r["tar_nbytes"],
                }
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def child_build(manifest: str, tokenizer_dir: str, out: str) -> dict:
    from maya_asr.data.config import IndexConfig
    from maya_asr.data.index import build_index

    t0 = time.perf_counter()
    info = build_index(manifest, tokenizer_dir, out, IndexConfig(row_group_rows=100_000),
                       threads=os.cpu_count() or 1, progress=False)  # fmt: skip
    return {"rows": info["rows"], "seconds": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": round(_peak_rss_mb(), 1)}  # fmt: skip


def _run_child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="1000000,5000000,20000000", help="row counts, comma list")
    parser.add_argument("--baseline-rows", type=int, default=5_000_000, help="in-memory baseline")
    parser.add_argument("--build-rows", default="", help="row counts for the real build_index")
    parser.add_argument("--tokenizer-dir", default="tokenizers/demo_bpe")
    parser.add_argument("--workdir", default="artifacts/bench/index_work")
    parser.add_argument("--keep", action="store_true", help="keep the parquet files")
    parser.add_argument("--output", default="artifacts/bench/index.json")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, *rest = args.child
        result = {
            "write": lambda: child_write(int(rest[0]), rest[1], False),
            "write_in_memory": lambda: child_write(int(rest[0]), rest[1], True),
            "project": lambda: child_project(rest[0]),
            "build": lambda: child_build(rest[0], rest[1], rest[2]),
        }[kind]()
        print(json.dumps(result))
        return 0

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    row_counts = [int(x) for x in args.rows.split(",") if x]
    series = []
    for n in row_counts:
        path = work / f"index_{n}.parquet"
        write = _run_child("write", str(n), str(path))
        project = _run_child("project", str(path))
        series.append({"rows": n, "write": write, "project": project})
        print(
            f"{n:>11,} rows: write {write['seconds']:7.1f} s peak {write['peak_rss_mb']:7.0f} MB "
            f"({write['bytes'] / 2**20:,.0f} MB file) | projection load "
            f"{project['seconds']:5.2f} s peak {project['peak_rss_mb']:6.0f} MB",
            flush=True,
        )
        if not args.keep:
            path.unlink()
    n0 = args.baseline_rows
    baseline = {}
    if n0:
        baseline = _run_child("write_in_memory", str(n0), str(work / "baseline.parquet"))
        (work / "baseline.parquet").unlink()
        rss0 = baseline["peak_rss_mb"]
        print(f"baseline (whole table in memory) at {n0:,} rows: peak {rss0:.0f} MB")

    build = []
    for n in [int(x) for x in args.build_rows.split(",") if x]:
        manifest = work / f"train_{n}.jsonl"
        write_manifest(manifest, n)
        res = _run_child("build", str(manifest), args.tokenizer_dir, str(work / "build.parquet"))
        build.append(res)
        rss = res["peak_rss_mb"]
        print(f"build_index {n:>9,} rows: {res['seconds']:6.1f} s, peak {rss:.0f} MB", flush=True)
        manifest.unlink()
        (work / "build.parquet").unlink()

    rss = [s["write"]["peak_rss_mb"] for s in series] or [float("nan")]
    summary = {
        "row_group_rows": ROW_GROUP,
        "write_peak_rss_mb_by_rows": {s["rows"]: s["write"]["peak_rss_mb"] for s in series},
        "write_rss_growth_ratio_last_vs_first": round(rss[-1] / rss[0], 3),
        "in_memory_baseline_peak_rss_mb": {n0: baseline.get("peak_rss_mb")},
        "projection_load_s_by_rows": {s["rows"]: s["project"]["seconds"] for s in series},
        "projection_peak_rss_mb_by_rows": {s["rows"]: s["project"]["peak_rss_mb"] for s in series},
        "build_index": build,
        "cpus": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"summary": summary, "series": series}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
