"""`scripts/run_stage1_prod.sh` end to end on CPU: torchrun runs a stand-in trainer that writes
checkpoints the way the real one should (temp name, then rename), the watcher uploads them to the
local R2 stand-in while training runs, and the drain leaves every checkpoint verified remotely
and only the newest KEEP_LOCAL on disk."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maya_asr.ops.local_s3 import LocalS3

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

FAKE_TRAINER = '''
"""Stand-in for scripts/train_prod.py: rank 0 writes 3 checkpoints like Lightning would."""
import argparse, os, random, time, zipfile
p = argparse.ArgumentParser()
for flag in ("--config", "--train-parquet", "--val-manifest", "--pretrained-encoder",
             "--checkpoint-dir"):
    p.add_argument(flag, required=True)
args, _ = p.parse_known_args()
if os.environ.get("RANK", "0") == "0":
    for step in (1, 2, 3):
        final = os.path.join(args.checkpoint_dir, f"step-{step}.ckpt")
        with zipfile.ZipFile(final + ".tmp", "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("archive/data.pkl", random.Random(step).randbytes(6 * 1024 * 1024))
        os.replace(final + ".tmp", final)  # atomic: the watcher never sees a partial file
        time.sleep(1.0)
print("fake training done", flush=True)
'''


def launch(tmp_path, env_over):
    trainer = tmp_path / "fake_train.py"
    trainer.write_text(FAKE_TRAINER)
    env = {
        **os.environ,
        "PY": sys.executable,
        "PYTHONPATH": f"{REPO / 'src'}:{REPO}",
        "TRAIN_SCRIPT": str(trainer),
        "EXP_DIR": str(tmp_path / "exp"),
        "RUN_NAME": "e2e",
        "GPUS_PER_NODE": "1",
        "MASTER_PORT": "29533",
        "ENV_FILE": str(tmp_path / "none.env"),
        "WATCHER_ARGS": "--part-size-mib 5 --settle-seconds 0.5 --poll-seconds 0.3 "
        "--retry-base-seconds 0.05 --retry-max-seconds 0.5",
        **env_over,
    }
    return subprocess.run(
        ["bash", str(REPO / "scripts/run_stage1_prod.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_launch_uploads_verifies_and_drains(tmp_path):
    with LocalS3() as s3:
        s3.create_bucket("prod")
        out = launch(tmp_path, {**s3.env("prod", "maya"), "SKIP_READINESS": "1", "KEEP_LOCAL": "1"})
        log = out.stdout + out.stderr
        assert out.returncode == 0, log
        assert "every checkpoint has a verified copy in R2" in log
        ck = tmp_path / "exp" / "checkpoints"
        assert sorted(p.name for p in ck.glob("*.ckpt")) == ["step-3.ckpt"]
        from maya_asr.ops.credentials import load_settings
        from maya_asr.ops.store import ObjectStore

        store = ObjectStore.from_settings(load_settings(s3.env("prod"), env_file=None))
        remote = store.list_objects("maya/e2e/")
        assert sorted(remote) == [f"maya/e2e/step-{i}.ckpt" for i in (1, 2, 3)]
        local3 = hashlib.sha256((ck / "step-3.ckpt").read_bytes()).hexdigest()
        assert store.remote_sha256("maya/e2e/step-3.ckpt", remote["maya/e2e/step-3.ckpt"]) == local3
        watcher_log = (tmp_path / "exp" / "logs" / "watcher.log").read_text()
        assert "verified step-1.ckpt" in watcher_log


def test_launch_stops_at_a_failed_readiness_gate(tmp_path):
    out = launch(tmp_path, {"GPUS_PER_NODE": "8"})  # this machine: no GPU, no config, no R2
    assert out.returncode == 1
    assert "readiness gate FAILED" in out.stderr
    assert "NOT READY" in out.stdout
    assert not (tmp_path / "exp" / "logs" / "watcher.log").exists()  # nothing was started
