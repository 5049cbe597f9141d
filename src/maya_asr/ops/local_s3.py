"""A local R2 stand-in: ``moto_server`` behind :mod:`maya_asr.ops.r2_proxy`, both on 127.0.0.1.

Used by the tests, ``scripts/bench_r2_upload.py`` and anyone who wants to try the watcher
without a Cloudflare account. Both servers are child processes so a test can kill and restart
either one mid-upload: killing the proxy drops connections but keeps the stored parts; killing
the backend loses its in-memory state, as a crashed server without durable multipart state would.

    with LocalS3() as s3:
        s3.create_bucket("ckpt")
        env = s3.env("ckpt")        # R2_ENDPOINT, R2_BUCKET, dummy credentials
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

# Dummy credentials: moto does not check signatures, but the client signs every request.
TEST_ACCESS_KEY = "LOCALTESTKEYID0000000"
TEST_SECRET_KEY = "local-test-secret-0123456789abcdefghijklmn"
_STARTUP_POLLS = 400  # x 0.05 s: how long a server may take to answer its first request


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen) -> None:
    for _ in range(_STARTUP_POLLS):
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode} while starting")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server for {url} did not answer within {_STARTUP_POLLS * 0.05:.0f}s")


class LocalS3:
    """moto_server + R2-like proxy as subprocesses; stop() (or the context manager) ends both."""

    def __init__(self, log_dir: str | os.PathLike | None = None):
        self.backend_port = free_port()
        self.proxy_port = free_port()
        self.log_dir = Path(log_dir) if log_dir else None
        self.backend: subprocess.Popen | None = None
        self.proxy: subprocess.Popen | None = None
        self.buckets: list[str] = []

    # ---------------------------------------------------------------- processes
    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        out = subprocess.DEVNULL
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)

    def start_backend(self) -> None:
        self.backend = self._spawn(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.backend_port)],
            "moto",
        )
        _wait_http(f"http://127.0.0.1:{self.backend_port}/", self.backend)
        for bucket in self.buckets:
            self._backend_client().create_bucket(Bucket=bucket)
        if self.proxy and self.proxy.poll() is None:
            self._control("backend", {"port": self.backend_port, "pid": self.backend.pid})

    def start_proxy(self) -> None:
        args = [
            sys.executable,
            "-m",
            "maya_asr.ops.r2_proxy",
            "--port",
            str(self.proxy_port),
            "--backend-port",
            str(self.backend_port),
        ]
        if self.backend:
            args += ["--backend-pid", str(self.backend.pid)]
        self.proxy = self._spawn(args, "proxy")
        _wait_http(f"{self.endpoint}/__r2proxy__/stats", self.proxy)

    def start(self) -> LocalS3:
        self.start_backend()
        self.start_proxy()
        return self

    @staticmethod
    def _kill(proc: subprocess.Popen | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait(timeout=30)

    def kill_proxy(self) -> None:
        self._kill(self.proxy)

    def kill_backend(self) -> None:
        self._kill(self.backend)

    def wait_proxy_exit(self, timeout_s: float = 60) -> int:
        """Block until the proxy process ends (e.g. after a ``die`` fault); its exit status."""
        return self.proxy.wait(timeout=timeout_s)

    def wait_backend_exit(self, timeout_s: float = 60) -> int:
        return self.backend.wait(timeout=timeout_s)

    def stop(self) -> None:
        for proc in (self.proxy, self.backend):
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in (self.proxy, self.backend):
            if proc is not None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- use
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def backend_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.backend_port}"

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """Environment variables pointing :func:`~maya_asr.ops.credentials.load_settings` here."""
        return {
            "R2_ENDPOINT": self.endpoint,
            "R2_BUCKET": bucket,
            "R2_ACCESS_KEY_ID": TEST_ACCESS_KEY,
            "R2_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
            "R2_PREFIX": prefix,
            "R2_REGION": "us-east-1",
        }

    def _backend_client(self):
        """A client straight to moto, bypassing the proxy (setup and corruption in tests)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.backend_endpoint,
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"}, request_checksum_calculation="when_required"
            ),
        )

    def create_bucket(self, name: str) -> None:
        self._backend_client().create_bucket(Bucket=name)
        self.buckets.append(name)

    def _control(self, name: str, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(
            f"{self.endpoint}/__r2proxy__/{name}",
            data=data,
            method="POST" if data is not None else "GET",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")

    def set_faults(self, rules: list[dict]) -> None:
        """Replace the proxy's fault rules (see :class:`maya_asr.ops.r2_proxy.FaultRule`)."""
        self._control("faults", rules)

    def stats(self) -> dict[str, int]:
        return self._control("stats")
