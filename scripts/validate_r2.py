#!/usr/bin/env python3
"""End-to-end check of the configured R2 bucket (`make validate-r2`).

Usage:
    python scripts/validate_r2.py                    # settings from the environment or .env
    python scripts/validate_r2.py --env-file /secure/r2.env --part-size-mib 8

Uploads a random object of 2.5 parts (the watcher's multipart code path, SHA-256 metadata),
checks HEAD metadata and the listing, downloads it and compares SHA-256, deletes it and checks no
multipart upload was left open. Prints PASS/FAIL/SKIP for each step; exit status 1 on any FAIL,
2 when the settings are missing or unsafe. Credentials are never printed.
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-file", default=".env", help="R2 settings file (chmod 600)")
    parser.add_argument("--part-size-mib", type=int, default=5, help="multipart part size")
    parser.add_argument("--retry-attempts", type=int, default=5, help="attempts per S3 call")
    parser.add_argument("--timeout-seconds", type=float, default=30.0, help="socket timeouts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    from maya_asr.ops.credentials import CredentialsError, install_redaction, load_settings, redact
    from maya_asr.ops.retry import RetryPolicy
    from maya_asr.ops.store import MiB, ObjectStore, TransferConfig
    from maya_asr.ops.validate import validate_bucket

    try:
        settings = load_settings(env_file=args.env_file)
    except CredentialsError as exc:
        print(f"FAIL  settings: {exc}")
        return 2
    install_redaction(settings)
    transfer = TransferConfig(
        part_size=args.part_size_mib * MiB,
        connect_timeout_s=args.timeout_seconds,
        read_timeout_s=args.timeout_seconds,
        retry=RetryPolicy(max_attempts=args.retry_attempts, base_delay_s=0.5, max_delay_s=5.0),
    )
    print(f"validate-r2: {settings.describe()}")
    store = ObjectStore.from_settings(settings, transfer)
    results = validate_bucket(store, settings.key("_validate"))
    secrets = settings.secret_values()
    for r in results:
        line = f"{r.status:<4}  {r.name:<18} {redact(r.detail, secrets)}"
        print(line + (f"  [{r.seconds:.2f}s]" if r.status != "SKIP" else ""))
    failed = [r.name for r in results if r.status == "FAIL"]
    print("validate-r2:", "FAIL (" + ", ".join(failed) + ")" if failed else "PASS")
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
