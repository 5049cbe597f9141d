"""validate-r2 and the readiness R2 probe against the local R2 stand-in; and the rule that no
credential value ever appears in any output of any ops command, failing or not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from ops_helpers import REPO, SECRETS, make_checkpoint, store_for, watcher_args

from maya_asr.ops.local_s3 import LocalS3
from maya_asr.ops.readiness import FAIL, PASS, ReadinessConfig, check_r2
from maya_asr.ops.validate import validate_bucket

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3():
    with LocalS3() as server:
        server.create_bucket("val")
        yield server


@pytest.fixture(autouse=True)
def no_faults(s3):
    s3.set_faults([])


def run_script(s3, name, *args, bucket="val", **env_over):
    env = {
        **os.environ,
        **s3.env(bucket, "maya"),
        "PYTHONPATH": f"{REPO / 'src'}:{REPO}",
        **env_over,
    }
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_validate_passes_every_step_and_leaves_nothing(s3):
    store = store_for(s3, "val")
    results = validate_bucket(store, "maya/_validate")
    assert [(r.name, r.status) for r in results] == [
        ("bucket reachable", "PASS"),
        ("multipart upload", "PASS"),
        ("HEAD metadata", "PASS"),
        ("listing", "PASS"),
        ("download + sha256", "PASS"),
        ("delete", "PASS"),
        ("no open uploads", "PASS"),
    ]
    assert "3 parts" in results[1].detail
    assert store.list_objects("maya/") == {} and store.list_uploads("") == []


def test_validate_reports_corruption_and_cleans_up(s3):
    s3.set_faults([{"action": "corrupt", "method": "GET", "bare": True, "count": 100}])
    store = store_for(s3, "val")
    results = {r.name: r for r in validate_bucket(store, "maya/_validate")}
    assert results["download + sha256"].status == "FAIL"
    assert results["delete"].status == "SKIP"
    assert store.list_objects("maya/") == {}  # the probe object was removed anyway


def test_validate_script_exit_codes(s3):
    ok = run_script(s3, "validate_r2.py", "--env-file", "/nonexistent")
    assert ok.returncode == 0 and ok.stdout.count("PASS ") == 7, ok.stdout + ok.stderr
    missing = run_script(s3, "validate_r2.py", "--env-file", "/nonexistent", R2_BUCKET="")
    assert missing.returncode == 2 and "R2_BUCKET" in missing.stdout
    down = run_script(
        s3,
        "validate_r2.py",
        "--env-file",
        "/nonexistent",
        "--retry-attempts",
        "2",
        "--timeout-seconds",
        "1",
        R2_ENDPOINT="http://127.0.0.1:9",
    )
    assert down.returncode == 1 and "FAIL  bucket reachable" in down.stdout


def test_readiness_r2_rows(s3, monkeypatch, tmp_path):
    for key, value in s3.env("val", "maya").items():
        monkeypatch.setenv(key, value)
    rows = check_r2(ReadinessConfig(env_file=tmp_path / "none"))
    assert [(r.name, r.status) for r in rows] == [
        ("credentials", PASS),
        ("bucket", PASS),
        ("put/get/delete", PASS),
    ]
    monkeypatch.setenv("R2_BUCKET", "no-such-bucket")
    rows = check_r2(ReadinessConfig(env_file=tmp_path / "none"))
    assert rows[-1].name == "bucket" and rows[-1].status == FAIL and rows[-1].fix


def test_no_credential_value_in_any_output(s3, tmp_path):
    """Success, failures, retries, tracebacks: no output of any command carries a secret."""
    ck = tmp_path / "ck"
    ck.mkdir()
    make_checkpoint(ck / "a.ckpt")
    outputs = []
    s3.set_faults(
        [{"action": "error", "method": "PUT", "status": 503, "code": "SlowDown", "count": 3}]
    )
    log_file = tmp_path / "watcher.log"
    env = {**os.environ, **s3.env("val"), "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    w = subprocess.run(
        [*watcher_args(ck, keep=0), "--once", "--log-file", str(log_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert w.returncode == 0, w.stderr
    outputs += [w.stdout, w.stderr, log_file.read_text()]
    bad = {**env, "R2_BUCKET": "missing-bucket"}
    w2 = subprocess.run(
        [*watcher_args(ck, keep=0), "--once"], env=bad, capture_output=True, text=True, timeout=120
    )
    assert w2.returncode == 2 and "cannot use bucket missing-bucket" in w2.stderr
    assert "Traceback" not in w2.stderr
    outputs += [w2.stdout, w2.stderr]
    for result in (
        run_script(s3, "validate_r2.py", "--env-file", "/nonexistent"),
        run_script(
            s3,
            "validate_r2.py",
            "--env-file",
            "/nonexistent",
            "--retry-attempts",
            "1",
            R2_ENDPOINT="http://127.0.0.1:9",
        ),
        run_script(
            s3,
            "readiness.py",
            "--json",
            "--config",
            "/nonexistent.yaml",
            "--env-file",
            "/nonexistent",
            "--expect-gpus",
            "0",
        ),
        run_script(
            s3,
            "readiness.py",
            "--env-file",
            "/nonexistent",
            "--expect-gpus",
            "0",
            bucket="missing-bucket",
        ),
    ):
        outputs += [result.stdout, result.stderr]
    env_file = tmp_path / ".env"
    env_file.write_text(f"R2_SECRET_ACCESS_KEY={SECRETS[1]}\nR2_ACCESS_KEY_ID={SECRETS[0]}\n")
    env_file.chmod(0o644)  # unsafe: refused
    leaky = run_script(s3, "validate_r2.py", "--env-file", str(env_file))
    assert leaky.returncode == 2 and "chmod 600" in leaky.stdout
    outputs += [leaky.stdout, leaky.stderr]
    text = "\n".join(outputs)
    assert "SlowDown" in text and "FAIL" in text  # the failures really were exercised
    for secret in SECRETS:
        assert secret not in text
