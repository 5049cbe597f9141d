#!/usr/bin/env python3
"""Upload and verify throughput to a local S3 server (moto behind the R2-like proxy).

Usage:
    python scripts/bench_r2_upload.py                      # 128 MiB file, 8 MiB parts
    python scripts/bench_r2_upload.py --size-mib 512 --part-size-mib 16 --concurrency 8

Measures, in one run against the same server and file:
  baseline   boto3's managed transfer (s3transfer) with the same part size and concurrency
  ours       ObjectStore.upload_file (fixed parts, Content-MD5, SHA-256 metadata), 1 and N
             threads, and N threads without Content-MD5 (what the per-part check costs)
  verify     ObjectStore.verify (HEAD + ranged read-back + SHA-256)
  sha256     hashing the local file (the watcher's extra pass before upload)
Writes artifacts/bench/r2_upload.json with MB/s and ratios to the baseline. The local server is
loopback only, so these figures say what the client costs, not what R2 over a WAN will give.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path


def timed(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=128, help="file size")
    parser.add_argument("--part-size-mib", type=int, default=8, help="multipart part size")
    parser.add_argument("--concurrency", type=int, default=4, help="parts in flight")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--output", default="artifacts/bench/r2_upload.json", help="JSON path")
    args = parser.parse_args(argv)

    import tempfile

    from boto3.s3.transfer import TransferConfig as Boto3TransferConfig

    from maya_asr.ops.credentials import load_settings
    from maya_asr.ops.local_s3 import LocalS3
    from maya_asr.ops.localfs import sha256_file
    from maya_asr.ops.store import MiB, ObjectStore, TransferConfig

    size = args.size_mib * MiB
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-r2-") as tmp, LocalS3() as s3:
        path = Path(tmp) / "ckpt.bin"
        with open(path, "wb") as fh:
            for _ in range(args.size_mib):
                fh.write(os.urandom(MiB))
        s3.create_bucket("bench")
        settings = load_settings(s3.env("bench"), env_file=None)

        def store(concurrency: int, content_md5: bool = True) -> ObjectStore:
            return ObjectStore.from_settings(
                settings,
                TransferConfig(
                    part_size=args.part_size_mib * MiB,
                    concurrency=concurrency,
                    content_md5=content_md5,
                ),
            )

        sha = None

        def hash_file():
            nonlocal sha
            sha = sha256_file(path)

        results["sha256_local"] = {"seconds": timed(hash_file, args.repeats)}
        ours_n, ours_1 = store(args.concurrency), store(1)
        boto_cfg = Boto3TransferConfig(
            multipart_threshold=args.part_size_mib * MiB,
            multipart_chunksize=args.part_size_mib * MiB,
            max_concurrency=args.concurrency,
        )
        results["baseline_boto3_managed"] = {
            "seconds": timed(
                lambda: ours_n.client.upload_file(
                    str(path), "bench", "baseline.bin", Config=boto_cfg
                ),
                args.repeats,
            )
        }
        results["ours_1_thread"] = {
            "seconds": timed(lambda: ours_1.upload_file(path, "ours1.bin", sha), args.repeats)
        }
        results[f"ours_{args.concurrency}_threads"] = {
            "seconds": timed(lambda: ours_n.upload_file(path, "oursn.bin", sha), args.repeats)
        }

        no_md5 = store(args.concurrency, content_md5=False)
        results[f"ours_{args.concurrency}_threads_no_md5"] = {
            "seconds": timed(lambda: no_md5.upload_file(path, "nomd5.bin", sha), args.repeats)
        }

        def verify():
            assert ours_n.verify("oursn.bin", size, sha).ok

        results["verify_readback"] = {"seconds": timed(verify, args.repeats)}

    base = results["baseline_boto3_managed"]["seconds"]
    for row in results.values():
        row["MB_per_s"] = round(size / row["seconds"] / 1e6, 1)
        row["speed_vs_baseline"] = round(base / row["seconds"], 2)
        row["seconds"] = round(row["seconds"], 3)
    report = {
        "benchmark": "r2_upload",
        "server": "moto_server behind maya_asr.ops.r2_proxy on 127.0.0.1",
        "size_mib": args.size_mib,
        "part_size_mib": args.part_size_mib,
        "concurrency": args.concurrency,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "results": results,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'measurement':<26}{'seconds':>9}{'MB/s':>9}{'vs boto3':>10}")
    for name, row in results.items():
        print(
            f"{name:<26}{row['seconds']:>9.3f}{row['MB_per_s']:>9.1f}"
            f"{row['speed_vs_baseline']:>9.2f}x"
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
