#!/usr/bin/env python3
"""Upload finished checkpoints to R2, verify each remote copy, then free the local disk.

Usage:
    python scripts/checkpoint_watcher.py --checkpoint-dir experiments/stage1/checkpoints \\
        --run-name stage1_prod                      # runs until SIGTERM (prod-launch starts it)
    python scripts/checkpoint_watcher.py ... --drain   # the trainer has exited: finish and exit
    python scripts/checkpoint_watcher.py ... --once    # one pass (tests, cron)

R2 settings come from the environment or --env-file (chmod 600): R2_ACCOUNT_ID or R2_ENDPOINT,
R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_BUCKET, optional R2_PREFIX. Objects go to
<R2_PREFIX>/<run-name>/<file name> with the file's SHA-256 in metadata.

A local checkpoint is deleted only after its remote copy is verified (size, metadata SHA-256 and
the SHA-256 of the bytes read back), and the newest --keep-local checkpoints always stay.
The journal (<checkpoint-dir>/.checkpoint-watcher.json) makes kill -9 safe: restart the same
command and it resumes. SIGTERM finishes the current part and exits, leaving a resumable state.

For the trainer: write `<name>.tmp`, rename it to `<name>`, then (optionally) touch
`<name>.done`; without a marker a file counts as finished once it is --settle-seconds old, closed
by every writer and, for .ckpt/.pt, a complete zip archive.

Exit status: 0 done; 1 (--drain) checkpoints left without a verified remote copy; 2 bad settings.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint-dir", required=True, type=Path, help="directory to watch")
    p.add_argument("--run-name", required=True, help="remote folder under R2_PREFIX")
    p.add_argument("--pattern", default="*.ckpt", help="checkpoint file glob (default *.ckpt)")
    p.add_argument(
        "--exclude",
        action="append",
        default=None,
        help="glob never uploaded; repeatable (default last*.ckpt)",
    )
    p.add_argument("--keep-local", type=int, default=2, help="newest checkpoints kept locally")
    p.add_argument("--settle-seconds", type=float, default=60.0, help="quiet time before upload")
    p.add_argument("--poll-seconds", type=float, default=30.0, help="seconds between passes")
    p.add_argument("--marker-suffix", default=".done", help="completion marker suffix")
    p.add_argument("--require-marker", action="store_true", help="only upload marked files")
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument(
        "--drain",
        action="store_true",
        help="the writer has exited: no settle wait, pass until nothing is left",
    )
    p.add_argument("--part-size-mib", type=int, default=64, help="multipart part size (>= 5)")
    p.add_argument("--concurrency", type=int, default=4, help="parts in flight")
    p.add_argument("--retry-attempts", type=int, default=10, help="attempts per S3 call")
    p.add_argument("--retry-base-seconds", type=float, default=1.0, help="first backoff ceiling")
    p.add_argument("--retry-max-seconds", type=float, default=60.0, help="backoff ceiling")
    p.add_argument("--read-timeout-seconds", type=float, default=120.0, help="socket timeout")
    p.add_argument("--env-file", default=".env", help="R2 settings file (must be chmod 600)")
    p.add_argument("--journal", type=Path, default=None, help="journal path (default in dir)")
    p.add_argument("--log-file", type=Path, default=None, help="also log to this file")
    return p


def setup_logging(log_file: Path | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s watcher: %(message)s",
        handlers=handlers,
    )
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_file)
    log = logging.getLogger("watcher")

    from maya_asr.ops.credentials import CredentialsError, install_redaction, load_settings
    from maya_asr.ops.journal import JournalLocked
    from maya_asr.ops.retry import RetryPolicy
    from maya_asr.ops.store import MiB, ObjectStore, TransferConfig
    from maya_asr.ops.watcher import CheckpointWatcher, WatcherConfig

    try:
        settings = load_settings(env_file=args.env_file)
        install_redaction(settings)
        transfer = TransferConfig(
            part_size=args.part_size_mib * MiB,
            concurrency=args.concurrency,
            read_timeout_s=args.read_timeout_seconds,
            retry=RetryPolicy(args.retry_attempts, args.retry_base_seconds, args.retry_max_seconds),
        )
        config = WatcherConfig(
            directory=args.checkpoint_dir,
            run_name=args.run_name,
            pattern=args.pattern,
            exclude=tuple(args.exclude) if args.exclude is not None else ("last*.ckpt",),
            keep_local=args.keep_local,
            settle_s=args.settle_seconds,
            poll_s=args.poll_seconds,
            marker_suffix=args.marker_suffix,
            require_marker=args.require_marker,
            journal_path=args.journal,
        )
    except (CredentialsError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    if not config.directory.is_dir():
        log.error(
            "checkpoint directory %s does not exist; create it or fix --checkpoint-dir",
            config.directory,
        )
        return 2

    store = ObjectStore.from_settings(settings, transfer)
    watcher = CheckpointWatcher(config, store, key_prefix=settings.prefix)

    def on_signal(signum, _frame):
        log.info(
            "%s received: finishing the current part, then exiting (resumable)",
            signal.Signals(signum).name,
        )
        watcher.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "watching %s -> %s/%s (keep %d local)",
        config.directory,
        settings.describe(),
        config.run_name,
        config.keep_local,
    )
    try:
        store.check_bucket()
    except Exception as exc:
        log.error(
            "cannot use bucket %s: %s; check R2_BUCKET, the endpoint and the token",
            settings.bucket,
            exc,
        )
        return 2
    try:
        watcher.start()
    except (JournalLocked, ValueError) as exc:  # another owner, or an unreadable journal
        log.error("%s", exc)
        return 2
    try:
        watcher.run(once=args.once, drain=args.drain)
    except Exception:
        log.exception("watcher failed; restart the same command to resume")  # redacted
        return 1
    finally:
        watcher.close()
    print(watcher.format_summary(), file=sys.stderr)
    pending = watcher.pending()
    if args.drain and pending:
        log.error("left without a verified remote copy: %s", ", ".join(pending))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
