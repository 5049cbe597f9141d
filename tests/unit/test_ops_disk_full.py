"""Local disk full while a checkpoint is written: the cut-short file is never uploaded or deleted.

Two ways to fill the disk:
- RLIMIT_FSIZE in the writer's process (always available): writes past the limit fail with EFBIG,
  exactly where ENOSPC would hit, leaving a truncated file;
- a real 16 MiB tmpfs (needs root and mount rights; skipped elsewhere): true ENOSPC, which also
  makes the watcher's own journal write fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest
from ops_helpers import CKPT_BYTES, make_checkpoint, store_for

from maya_asr.ops.local_s3 import LocalS3
from maya_asr.ops.watcher import CheckpointWatcher, WatcherConfig

pytestmark = pytest.mark.slow

# Writes a checkpoint in place, as Lightning's torch.save does, in a zip like torch.save's.
WRITER = """
import os, random, resource, signal, sys, zipfile
path, limit = sys.argv[1], int(sys.argv[2])
if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", random.Random(0).randbytes(int(sys.argv[3])))
except OSError as exc:
    print(f"write failed: errno {exc.errno}", flush=True)
    sys.exit(3)
"""


def write_checkpoint(path, nbytes, limit=0):
    return subprocess.run(
        [sys.executable, "-c", WRITER, str(path), str(limit), str(nbytes)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def s3():
    with LocalS3() as server:
        server.create_bucket("full")
        yield server


def run_once(store, ck, keep, run="run"):
    watcher = CheckpointWatcher(
        WatcherConfig(directory=ck, run_name=run, keep_local=keep, settle_s=0), store
    )
    watcher.start()
    try:
        watcher.run(once=True)
    finally:
        watcher.close()
    return watcher


def test_checkpoint_cut_short_by_a_file_size_limit_is_never_uploaded(s3, tmp_path, caplog):
    ck = tmp_path / "ck"
    ck.mkdir()
    sha = make_checkpoint(ck / "step-1.ckpt")
    size = (ck / "step-1.ckpt").stat().st_size
    out = write_checkpoint(ck / "step-2.ckpt", CKPT_BYTES, limit=3 * 1024 * 1024)
    assert out.returncode == 3 and "errno 27" in out.stdout  # EFBIG, where ENOSPC would be
    assert (ck / "step-2.ckpt").stat().st_size == 3 * 1024 * 1024
    store = store_for(s3, "full")
    caplog.set_level("INFO")
    run_once(store, ck, keep=0)
    assert "not a complete zip archive" in caplog.text
    assert store.list_objects("run/") == {"run/step-1.ckpt": size}
    assert store.remote_sha256("run/step-1.ckpt", size) == sha
    assert not (ck / "step-1.ckpt").exists()  # verified, so freed
    assert (ck / "step-2.ckpt").exists()  # the cut-short file stays for a human to look at


@pytest.fixture
def tiny_fs(tmp_path):
    """A 16 MiB tmpfs, or skip when this machine will not let us mount one."""
    mnt = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_real_enospc_during_checkpoint_and_journal_writes(s3, tiny_fs, caplog):
    ck = tiny_fs
    sha = make_checkpoint(ck / "step-1.ckpt", nbytes=6 * 1024 * 1024)
    size = (ck / "step-1.ckpt").stat().st_size
    out = write_checkpoint(ck / "step-2.ckpt", CKPT_BYTES)
    assert out.returncode == 3 and "errno 28" in out.stdout  # ENOSPC: the disk is full
    store = store_for(s3, "full")
    caplog.set_level("INFO")
    run_once(store, ck, keep=0, run="enospc")  # the journal cannot be written: nothing may happen
    assert "No space left on device" in caplog.text
    assert (ck / "step-1.ckpt").exists() and (ck / "step-2.ckpt").exists()
    assert (
        store.list_objects("enospc/") == {} or store.verify("enospc/step-1.ckpt", size, sha).ok
    )  # if an upload slipped through before a journal write failed, it is a good copy

    (ck / "step-2.ckpt").unlink()  # the operator (or the trainer's cleanup) frees the space
    run_once(store, ck, keep=0, run="enospc")
    assert not (ck / "step-1.ckpt").exists()
    assert store.verify("enospc/step-1.ckpt", size, sha).ok
    assert store.list_uploads("") == []
