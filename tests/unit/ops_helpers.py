"""Shared helpers for the ops tests: fake checkpoints, a store on the local R2 stand-in, the
watcher as a subprocess, and the invariant every fault test checks."""

from __future__ import annotations

import hashlib
import io
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

from maya_asr.ops.credentials import load_settings
from maya_asr.ops.local_s3 import TEST_ACCESS_KEY, TEST_SECRET_KEY, LocalS3
from maya_asr.ops.retry import RetryPolicy
from maya_asr.ops.store import MiB, ObjectStore, TransferConfig

REPO = Path(__file__).resolve().parents[2]
WATCHER = REPO / "scripts" / "checkpoint_watcher.py"
PART = 5 * MiB  # S3's minimum part size; moto enforces it too
CKPT_BYTES = 11 * MiB  # three parts: two full, one short
FAST_RETRY = RetryPolicy(max_attempts=8, base_delay_s=0.02, max_delay_s=0.3)
SECRETS = (TEST_ACCESS_KEY, TEST_SECRET_KEY)


def make_checkpoint(path: Path, nbytes: int = CKPT_BYTES, seed: int = 0, age_s: float = 600):
    """A torch.save-like zip of about ``nbytes`` random bytes, mtime ``age_s`` in the past.

    Returns its SHA-256.
    """
    rng = random.Random(seed)
    payload = rng.randbytes(nbytes - 200)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", payload)
    data = buf.getvalue()
    path.write_bytes(data)
    old = path.stat().st_mtime - age_s
    os.utime(path, (old, old))
    return hashlib.sha256(data).hexdigest()


def store_for(s3: LocalS3, bucket: str, concurrency: int = 2, retry: RetryPolicy = FAST_RETRY):
    settings = load_settings(s3.env(bucket), env_file=None)
    transfer = TransferConfig(
        part_size=PART, concurrency=concurrency, retry=retry, connect_timeout_s=2, read_timeout_s=10
    )
    return ObjectStore.from_settings(settings, transfer)


def watcher_args(ckpt_dir: Path, run: str = "run", keep: int = 1, concurrency: int = 2) -> list:
    return [
        sys.executable,
        str(WATCHER),
        "--checkpoint-dir",
        str(ckpt_dir),
        "--run-name",
        run,
        "--keep-local",
        str(keep),
        "--settle-seconds",
        "1",
        "--part-size-mib",
        "5",
        "--concurrency",
        str(concurrency),
        "--retry-attempts",
        "8",
        "--retry-base-seconds",
        "0.02",
        "--retry-max-seconds",
        "0.3",
        "--read-timeout-seconds",
        "10",
        "--env-file",
        str(ckpt_dir / "no.env"),
    ]


def run_watcher(
    s3: LocalS3, bucket: str, args: list, crashpoint: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    env = watcher_env(s3, bucket, crashpoint)
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def watcher_env(s3: LocalS3, bucket: str, crashpoint: str | None = None) -> dict[str, str]:
    env = {**os.environ, **s3.env(bucket), "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    env.pop("MAYA_WATCHER_CRASHPOINT", None)
    if crashpoint:
        env["MAYA_WATCHER_CRASHPOINT"] = crashpoint
    return env


def remote_objects(store: ObjectStore, prefix: str = "") -> dict[str, str | None]:
    """``{key: sha256 of the remote bytes}`` for every object under ``prefix``."""
    out = {}
    for key, size in store.list_objects(prefix).items():
        out[key] = store.remote_sha256(key, size)
    return out


def assert_no_unverified_deletion(local_dir: Path, shas: dict[str, str], store, run="run"):
    """THE invariant: every checkpoint missing locally has a remote copy with its exact bytes."""
    remote = remote_objects(store, f"{run}/")
    for name, sha in shas.items():
        if not (local_dir / name).exists():
            assert remote.get(f"{run}/{name}") == sha, f"{name} deleted without a verified copy"


def assert_converged(local_dir: Path, shas: dict[str, str], store, keep: int, run="run"):
    """Everything uploaded once with the right bytes, no upload left open, newest ``keep`` local."""
    remote = remote_objects(store, f"{run}/")
    assert remote == {f"{run}/{n}": s for n, s in shas.items()}  # no loss, no duplicate
    assert store.list_uploads("") == []  # no multipart upload left to rot
    names = sorted(shas)  # make_checkpoint ages: names sort oldest -> newest in these tests
    local = sorted(p.name for p in local_dir.glob("*.ckpt"))
    assert local == names[len(names) - keep :]
