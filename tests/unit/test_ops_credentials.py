"""R2 settings: env over .env, the permission rule, and secrets that never show."""

from __future__ import annotations

import io
import logging
import os
import pickle
import subprocess
import sys

import pytest

from maya_asr.ops.credentials import (
    CredentialsError,
    RedactingFilter,
    Secret,
    load_settings,
    read_env_file,
    redact,
)

KEY_ID = "test-key-id-not-real-0001"
SECRET = "s3cr3t/with+chars=and-length-40-xxxxxxxx"
FULL = {
    "R2_ACCOUNT_ID": "acct123",
    "R2_ACCESS_KEY_ID": KEY_ID,
    "R2_SECRET_ACCESS_KEY": SECRET,
    "R2_BUCKET": "maya-ckpt",
}


def write_env(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_account_id_gives_the_r2_endpoint():
    s = load_settings(FULL, env_file=None)
    assert s.endpoint_url == "https://acct123.r2.cloudflarestorage.com"
    assert s.region == "auto" and s.prefix == ""


def test_explicit_endpoint_wins_and_prefix_is_normalised():
    s = load_settings(
        {**FULL, "R2_ENDPOINT": "http://127.0.0.1:9000/", "R2_PREFIX": "/a/b/"}, env_file=None
    )
    assert s.endpoint_url == "http://127.0.0.1:9000"
    assert s.key("run1", "x.ckpt") == "a/b/run1/x.ckpt"


def test_env_file_is_read_and_environment_wins(tmp_path):
    env = write_env(
        tmp_path / ".env",
        (
            "# comment\n"
            f"export R2_ACCESS_KEY_ID={KEY_ID}\n"
            f"R2_SECRET_ACCESS_KEY='{SECRET}'\n"
            'R2_BUCKET="from-file"\n'
            "R2_ACCOUNT_ID=acct\n"
            "UNRELATED=1\n"
        ),
    )
    s = load_settings({"R2_BUCKET": "from-env"}, env_file=env)
    assert s.bucket == "from-env"
    assert s.secret_access_key.reveal() == SECRET and s.access_key_id.reveal() == KEY_ID


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_env_file_readable_by_others_is_refused(tmp_path, mode):
    env = write_env(tmp_path / ".env", f"R2_SECRET_ACCESS_KEY={SECRET}\n", mode)
    with pytest.raises(CredentialsError, match="chmod 600") as err:
        load_settings({}, env_file=env)
    assert SECRET not in str(err.value)


def test_bad_env_line_is_named_but_not_echoed(tmp_path):
    env = write_env(tmp_path / ".env", f"R2_BUCKET=b\n{SECRET}\n")
    with pytest.raises(CredentialsError, match=r"\.env:2 is not KEY=VALUE") as err:
        read_env_file(env)
    assert SECRET not in str(err.value)


def test_missing_settings_are_all_named():
    with pytest.raises(CredentialsError) as err:
        load_settings({"R2_BUCKET": "b"}, env_file=None)
    msg = str(err.value)
    for name in ("R2_ACCOUNT_ID or R2_ENDPOINT", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"):
        assert name in msg
    assert "R2_BUCKET" not in msg


def test_secret_never_prints():
    s = load_settings(FULL, env_file=None)
    for text in (repr(s), str(s), f"{s.secret_access_key}", s.describe(), repr(s.access_key_id)):
        assert SECRET not in text and KEY_ID not in text
    with pytest.raises(TypeError):
        pickle.dumps(Secret(SECRET))


def test_redacting_filter_scrubs_messages_args_and_tracebacks():
    logger = logging.getLogger("test.redact")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter([KEY_ID, SECRET]))
    logger.addHandler(handler)
    try:
        logger.warning("key %s secret %s", KEY_ID, SECRET)
        try:
            raise RuntimeError(f"boom with {SECRET}")
        except RuntimeError:
            logger.exception("failed for %s", KEY_ID)
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "***" in out and "boom with ***" in out
    assert SECRET not in out and KEY_ID not in out
    assert redact(f"a{SECRET}b{KEY_ID}", [SECRET, KEY_ID]) == "a***b***"


def test_botocore_debug_log_is_redacted(tmp_path):
    """Even botocore's DEBUG logs (which carry the Authorization header) come out clean."""
    code = f"""
import logging, sys
from maya_asr.ops.credentials import load_settings, install_redaction
from maya_asr.ops.store import ObjectStore, TransferConfig, StoreError
from maya_asr.ops.retry import RetryPolicy
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
s = load_settings({{"R2_ENDPOINT": "http://127.0.0.1:9", "R2_BUCKET": "b",
    "R2_ACCESS_KEY_ID": "{KEY_ID}", "R2_SECRET_ACCESS_KEY": "{SECRET}"}}, env_file=None)
install_redaction(s)
store = ObjectStore.from_settings(s, TransferConfig(retry=RetryPolicy(2, 0.01, 0.01),
    connect_timeout_s=0.5, read_timeout_s=0.5))
try:
    store.put_bytes("k", b"x")
except StoreError as exc:
    logging.getLogger("t").error("failed: %s", exc)
    print(exc)
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    text = out.stdout + out.stderr
    assert "Credential=***" in text  # signed requests were logged, with the key id scrubbed
    assert KEY_ID not in text and SECRET not in text
