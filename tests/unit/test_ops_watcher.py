"""The checkpoint watcher against a real S3 server on 127.0.0.1, with faults injected.

Invariant in every test: no local checkpoint is deleted unless a verified remote copy exists;
after a restart everything converges (each checkpoint uploaded once with its exact bytes, no
multipart upload left open, the newest K kept locally).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest
from ops_helpers import (
    assert_converged,
    assert_no_unverified_deletion,
    make_checkpoint,
    run_watcher,
    store_for,
    watcher_args,
    watcher_env,
)

from maya_asr.ops.local_s3 import LocalS3
from maya_asr.ops.watcher import JOURNAL_NAME, PHASES, CheckpointWatcher, WatcherConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = LocalS3(log_dir=tmp_path_factory.mktemp("s3logs")).start()
    yield server
    server.stop()


_bucket_ids = iter(range(10**6))


@pytest.fixture
def bucket(s3):
    name = f"ckpt-{next(_bucket_ids)}"
    s3.create_bucket(name)
    s3.set_faults([])
    return name


def three_checkpoints(ckpt_dir):
    ckpt_dir.mkdir(exist_ok=True)
    return {
        f"step-{i}.ckpt": make_checkpoint(ckpt_dir / f"step-{i}.ckpt", seed=i, age_s=1000 - i)
        for i in (1, 2, 3)
    }


def journal_states(ckpt_dir):
    entries = json.loads((ckpt_dir / JOURNAL_NAME).read_text())["entries"]
    return {name: e["state"] for name, e in entries.items()}


def test_one_pass_uploads_verifies_and_keeps_newest(s3, bucket, tmp_path):
    shas = three_checkpoints(tmp_path / "ck")
    store = store_for(s3, bucket)
    cfg = WatcherConfig(directory=tmp_path / "ck", run_name="run", keep_local=2, settle_s=1)
    watcher = CheckpointWatcher(cfg, store)
    watcher.start()
    try:
        counts = watcher.run(once=True)
    finally:
        watcher.close()
    assert counts == {"deleted": 1, "verified": 2}
    assert_converged(tmp_path / "ck", shas, store, keep=2)


def test_files_being_written_are_left_alone(s3, bucket, tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    make_checkpoint(ck / "fresh.ckpt", age_s=0)  # younger than the settle time
    (ck / "partial.ckpt").write_bytes(b"PK\x03\x04" + b"\0" * 6_000_000)  # no zip directory
    (ck / "step-9.ckpt.tmp").write_bytes(b"x")  # a temp name before its rename
    (ck / "last.ckpt").write_bytes(b"x")  # excluded alias
    store = store_for(s3, bucket)
    with (ck / "open.ckpt").open("wb") as writer:  # held open for writing by this process
        make_checkpoint(ck / "open-src.ckpt")
        writer.write((ck / "open-src.ckpt").read_bytes())
        writer.flush()
        (ck / "open-src.ckpt").unlink()
        old = time.time() - 600
        os.utime(ck / "open.ckpt", (old, old))
        cfg = WatcherConfig(directory=ck, run_name="run", keep_local=0, settle_s=60)
        watcher = CheckpointWatcher(cfg, store)
        watcher.start()
        try:
            watcher.run(once=True)
        finally:
            watcher.close()
    assert store.list_objects("") == {}
    assert sorted(p.name for p in ck.iterdir() if not p.name.startswith(".")) == [
        "fresh.ckpt",
        "last.ckpt",
        "open.ckpt",
        "partial.ckpt",
        "step-9.ckpt.tmp",
    ]


def test_marker_makes_a_fresh_file_complete(s3, bucket, tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    sha = make_checkpoint(ck / "a.ckpt", age_s=0)
    (ck / "a.ckpt.done").touch()
    store = store_for(s3, bucket)
    cfg = WatcherConfig(directory=ck, run_name="run", keep_local=0, settle_s=3600)
    watcher = CheckpointWatcher(cfg, store)
    watcher.start()
    try:
        watcher.run(once=True)
    finally:
        watcher.close()
    assert store.remote_sha256("run/a.ckpt", store.head("run/a.ckpt").size) == sha
    assert not (ck / "a.ckpt").exists() and not (ck / "a.ckpt.done").exists()


@pytest.mark.parametrize("phase", PHASES)
def test_sigkill_at_every_phase_then_restart_converges(s3, bucket, tmp_path, phase):
    ck = tmp_path / "ck"
    shas = three_checkpoints(ck)
    store = store_for(s3, bucket)
    args = [*watcher_args(ck, keep=1), "--once"]

    killed = run_watcher(s3, bucket, args, crashpoint=phase)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert f"crashpoint {phase} reached" in killed.stderr
    assert_no_unverified_deletion(ck, shas, store)

    resumed = run_watcher(s3, bucket, args)
    assert resumed.returncode == 0, resumed.stderr
    if phase == "mid_part":  # parts acknowledged before the kill are kept, not re-sent
        assert re.search(r"resuming upload, [12]/3 parts already on the server", resumed.stderr)
    if phase == "after_complete":
        assert "already completed" in resumed.stderr
    assert_converged(ck, shas, store, keep=1)
    assert journal_states(ck) == {
        "step-1.ckpt": "deleted",
        "step-2.ckpt": "deleted",
        "step-3.ckpt": "verified",
    }


def test_orphaned_multipart_upload_is_aborted_at_start(s3, bucket, tmp_path):
    store = store_for(s3, bucket)
    orphan = store.client.create_multipart_upload(Bucket=bucket, Key="run/x.ckpt")["UploadId"]
    other = store.client.create_multipart_upload(Bucket=bucket, Key="elsewhere/y")["UploadId"]
    (tmp_path / "ck").mkdir()
    watcher = CheckpointWatcher(WatcherConfig(directory=tmp_path / "ck", run_name="run"), store)
    watcher.start()
    watcher.close()
    assert store.list_uploads("") == [("elsewhere/y", other)]  # only our prefix is swept
    assert orphan not in {u for _, u in store.list_uploads("")}


def test_sigterm_mid_upload_leaves_resumable_state(s3, bucket, tmp_path):
    ck = tmp_path / "ck"
    shas = three_checkpoints(ck)
    store = store_for(s3, bucket)
    s3.set_faults(
        [{"action": "delay", "method": "PUT", "query": "partNumber", "delay_s": 0.3, "count": 1000}]
    )
    args = [*watcher_args(ck, keep=1, concurrency=1), "--poll-seconds", "0.2"]
    proc = subprocess.Popen(args, env=watcher_env(s3, bucket), stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:  # bounded by the watcher's own output
        lines.append(line)
        if "uploading step-1.ckpt" in line:
            time.sleep(0.4)  # let a part be in flight
            proc.send_signal(signal.SIGTERM)
            break
    _, rest = proc.communicate(timeout=60)
    log = "".join(lines) + rest
    assert proc.returncode == 0, log
    assert "SIGTERM received" in log and "resumable" in log
    state = journal_states(ck)["step-1.ckpt"]
    assert state in ("hashed", "uploading")  # "uploading" unless the signal beat CreateUpload
    assert_no_unverified_deletion(ck, shas, store)

    s3.set_faults([])
    resumed = run_watcher(s3, bucket, [*watcher_args(ck, keep=1), "--once"])
    assert resumed.returncode == 0, resumed.stderr
    assert state == "hashed" or "resuming step-1.ckpt" in resumed.stderr
    assert_converged(ck, shas, store, keep=1)


def test_flipped_remote_byte_is_caught_and_reuploaded(s3, bucket, tmp_path):
    ck = tmp_path / "ck"
    shas = three_checkpoints(ck)
    store = store_for(s3, bucket)
    args = [*watcher_args(ck, keep=1), "--once"]
    killed = run_watcher(s3, bucket, args, crashpoint="before_verify")
    assert killed.returncode == -signal.SIGKILL
    # Bit rot at rest: same size, same metadata, one byte different.
    backend = s3._backend_client()
    obj = backend.get_object(Bucket=bucket, Key="run/step-1.ckpt")
    body = bytearray(obj["Body"].read())
    body[len(body) // 2] ^= 0x01
    backend.put_object(
        Bucket=bucket, Key="run/step-1.ckpt", Body=bytes(body), Metadata=obj["Metadata"]
    )

    resumed = run_watcher(s3, bucket, args)
    assert resumed.returncode == 0, resumed.stderr
    assert "sha256 of the remote bytes" in resumed.stderr and "uploading again" in resumed.stderr
    assert_converged(ck, shas, store, keep=1)


def test_persistent_corruption_keeps_the_local_file(s3, bucket, tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    sha = make_checkpoint(ck / "a.ckpt")
    make_checkpoint(ck / "b.ckpt", seed=2, age_s=10)
    store = store_for(s3, bucket)
    s3.set_faults(
        [{"action": "corrupt", "method": "GET", "bare": True, "count": 1000}]
    )  # every read-back
    cfg = WatcherConfig(
        directory=ck, run_name="run", keep_local=1, settle_s=1, max_verify_failures=2
    )
    watcher = CheckpointWatcher(cfg, store)
    watcher.start()
    try:
        for _ in range(3):
            watcher.run(once=True)
    finally:
        watcher.close()
    assert (ck / "a.ckpt").exists()  # never deleted: no verified copy
    assert watcher.journal.entries["a.ckpt"].state == "failed"
    assert watcher.journal.entries["a.ckpt"].sha256 == sha

    s3.set_faults([])  # the read path is healthy again; touching the file asks for a retry
    old = (ck / "a.ckpt").stat().st_mtime - 1
    os.utime(ck / "a.ckpt", (old, old))
    watcher.start()
    try:
        watcher.run(once=True)  # first look at the changed file: not settled yet
        assert watcher.journal.entries["a.ckpt"].state == "failed"
        watcher.run(once=True)
    finally:
        watcher.close()
    assert watcher.journal.entries["a.ckpt"].state == "deleted"
    assert store.remote_sha256("run/a.ckpt", store.head("run/a.ckpt").size) == sha


def test_5xx_and_slowdown_bursts_are_retried(s3, bucket, tmp_path):
    ck = tmp_path / "ck"
    shas = three_checkpoints(ck)
    store = store_for(s3, bucket)
    s3.set_faults(
        [
            {
                "action": "error",
                "method": "PUT",
                "query": "partNumber",
                "status": 503,
                "code": "SlowDown",
                "count": 3,
            },
            {
                "action": "error",
                "method": "PUT",
                "query": "partNumber",
                "status": 500,
                "code": "InternalError",
                "count": 2,
                "skip": 2,
            },
            {
                "action": "error",
                "method": "POST",
                "query": "uploadId",
                "status": 502,
                "code": "BadGateway",
                "count": 2,
            },
            {"action": "error", "method": "GET", "status": 503, "code": "SlowDown", "count": 2},
            {
                "action": "error",
                "method": "HEAD",
                "status": 500,
                "code": "InternalError",
                "count": 1,
            },
            {"action": "reset", "method": "PUT", "query": "partNumber", "count": 1, "skip": 4},
        ]
    )
    result = run_watcher(s3, bucket, [*watcher_args(ck, keep=1), "--once"])
    assert result.returncode == 0, result.stderr
    stats = s3.stats()
    assert stats["fault:error"] == 10 and stats["fault:reset"] == 1
    assert "SlowDown (HTTP 503)" in result.stderr
    assert_converged(ck, shas, store, keep=1)


def test_outage_longer_than_retries_deletes_nothing_then_recovers(s3, bucket, tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    shas = {"step-1.ckpt": make_checkpoint(ck / "step-1.ckpt")}
    store = store_for(s3, bucket)
    s3.set_faults(
        [{"action": "error", "method": "PUT", "status": 503, "code": "SlowDown", "count": 10_000}]
    )
    failed = run_watcher(s3, bucket, [*watcher_args(ck, keep=0), "--once"])
    assert failed.returncode == 0  # it logs and retries next pass rather than dying
    assert "will retry next pass" in failed.stderr
    assert (ck / "step-1.ckpt").exists()
    s3.set_faults([])
    assert run_watcher(s3, bucket, [*watcher_args(ck, keep=0), "--once"]).returncode == 0
    assert_converged(ck, shas, store, keep=0)


def test_drain_exits_nonzero_when_something_is_left(s3, bucket, tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "cut.ckpt").write_bytes(b"PK\x03\x04" + b"\0" * 100)  # a checkpoint cut short
    make_checkpoint(ck / "ok.ckpt")
    result = run_watcher(s3, bucket, [*watcher_args(ck, keep=0), "--drain"])
    assert result.returncode == 1
    assert "left without a verified remote copy: cut.ckpt" in result.stderr
    assert not (ck / "ok.ckpt").exists() and (ck / "cut.ckpt").exists()


def test_second_watcher_on_same_directory_is_refused(s3, bucket, tmp_path):
    (tmp_path / "ck").mkdir()
    store = store_for(s3, bucket)
    first = CheckpointWatcher(WatcherConfig(directory=tmp_path / "ck", run_name="run"), store)
    first.start()
    try:
        second = run_watcher(s3, bucket, [*watcher_args(tmp_path / "ck"), "--once"])
    finally:
        first.close()
    assert second.returncode == 2 and "another checkpoint watcher" in second.stderr


class _ProxyRestarter:
    """Restart the proxy (or backend) as soon as it dies, like a supervisor would."""

    def __init__(self, s3: LocalS3, which: str):
        import threading

        self.s3, self.which = s3, which
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        if self.which == "proxy":
            self.s3.wait_proxy_exit(120)
            time.sleep(0.5)
            self.s3.start_proxy()
        else:
            self.s3.wait_backend_exit(120)
            time.sleep(0.5)
            self.s3.start_backend()

    def join(self):
        self.thread.join(timeout=120)
        assert not self.thread.is_alive()


@pytest.fixture
def private_s3(tmp_path):
    """A server of our own: these tests kill it."""
    server = LocalS3(log_dir=tmp_path / "s3logs").start()
    server.create_bucket("ckpt")
    yield server
    server.stop()


def test_endpoint_killed_mid_upload_and_restarted(private_s3, tmp_path):
    ck = tmp_path / "ck"
    shas = three_checkpoints(ck)
    store = store_for(private_s3, "ckpt", concurrency=1)
    private_s3.set_faults([{"action": "die", "method": "PUT", "query": "partNumber", "skip": 1}])
    restarter = _ProxyRestarter(private_s3, "proxy")
    watcher = CheckpointWatcher(
        WatcherConfig(directory=ck, run_name="run", keep_local=1, settle_s=1), store
    )
    watcher.start()
    try:
        watcher.run(once=True)  # retries ride out a quick restart; a slow one is left resumable
        restarter.join()
        watcher.run(once=True)  # so a second pass, after the restart, must finish the job
    finally:
        watcher.close()
    assert private_s3.proxy.poll() is None  # the restarted proxy is the one serving
    assert_converged(ck, shas, store, keep=1)


def test_backend_killed_mid_upload_loses_state_and_upload_restarts(private_s3, tmp_path):
    ck = tmp_path / "ck"
    shas = three_checkpoints(ck)
    store = store_for(private_s3, "ckpt", concurrency=1)
    private_s3.set_faults(
        [{"action": "kill_backend", "method": "PUT", "query": "partNumber", "skip": 1}]
    )
    restarter = _ProxyRestarter(private_s3, "backend")
    watcher = CheckpointWatcher(
        WatcherConfig(directory=ck, run_name="run", keep_local=1, settle_s=1), store
    )
    watcher.start()
    try:
        watcher.run(once=True)
        restarter.join()
        watcher.run(once=True)  # anything the outage stopped is finished next pass
    finally:
        watcher.close()
    assert_converged(ck, shas, store, keep=1)
