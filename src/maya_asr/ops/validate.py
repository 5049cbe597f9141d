"""End-to-end checks of a bucket: the full round trip (``make validate-r2``) and a quick probe.

:func:`validate_bucket` uploads a random object of 2.5 parts with the same code path as the
checkpoint watcher, reads it back, compares SHA-256, checks the listing and the metadata,
deletes it and checks no multipart upload is left behind. Every step is reported, and the
probe object is removed even when a step fails.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from maya_asr.ops.store import ObjectStore


@dataclass(frozen=True)
class StepResult:
    name: str  # what was checked
    status: str  # "PASS", "FAIL" or "SKIP" (an earlier step failed)
    detail: str  # figures or the error (secret-free)
    seconds: float = 0.0


def _run(name: str, fn: Callable[[], str], results: list[StepResult]) -> bool:
    if results and results[-1].status != "PASS":
        results.append(StepResult(name, "SKIP", "an earlier step failed"))
        return False
    t0 = time.monotonic()
    try:
        detail = fn()
        results.append(StepResult(name, "PASS", detail, time.monotonic() - t0))
        return True
    except Exception as exc:
        results.append(StepResult(name, "FAIL", str(exc), time.monotonic() - t0))
        return False


def validate_bucket(store: ObjectStore, key_prefix: str, parts: float = 2.5) -> list[StepResult]:
    """Round-trip a random ``parts``-part object under ``key_prefix``; one result per step."""
    part = store.transfer.part_size
    size = int(part * parts)
    key = f"{key_prefix.strip('/')}/validate-r2-{secrets.token_hex(6)}.bin".lstrip("/")
    results: list[StepResult] = []
    with tempfile.TemporaryDirectory(prefix="validate-r2-") as tmp:
        path = os.path.join(tmp, "probe.bin")
        with open(path, "wb") as fh:
            fh.write(os.urandom(size))
        with open(path, "rb") as fh:
            sha = hashlib.sha256(fh.read()).hexdigest()

        def bucket() -> str:
            store.check_bucket()
            return f"bucket {store.bucket} is reachable"

        def upload() -> str:
            t0 = time.monotonic()
            store.upload_file(path, key, sha)
            mbps = size / max(time.monotonic() - t0, 1e-9) / 1e6
            return (
                f"{size} bytes in {store.transfer.parts_for(size)} parts to {key} ({mbps:.1f} MB/s)"
            )

        def metadata() -> str:
            info = store.head(key)
            if info is None:
                raise RuntimeError(f"HEAD {key}: not found right after upload")
            if info.size != size or info.sha256 != sha:
                raise RuntimeError(f"HEAD says size {info.size}, sha256 {info.sha256}")
            return f"size {info.size} and sha256 metadata match"

        def listing() -> str:
            listed = store.list_objects(key)
            if listed.get(key) != size:
                raise RuntimeError(f"listing under {key} gave {listed}")
            return "object listed with its size"

        def download() -> str:
            t0 = time.monotonic()
            remote = store.remote_sha256(key, size)
            if remote != sha:
                raise RuntimeError(f"downloaded sha256 {remote} != uploaded {sha}")
            mbps = size / max(time.monotonic() - t0, 1e-9) / 1e6
            return f"read back, sha256 {sha[:16]}... matches ({mbps:.1f} MB/s)"

        def delete() -> str:
            store.delete(key)
            if store.head(key) is not None:
                raise RuntimeError(f"{key} still exists after DELETE")
            return "deleted and gone"

        def no_open_uploads() -> str:
            open_uploads = [u for k, u in store.list_uploads(key) if k == key]
            if open_uploads:
                raise RuntimeError(f"{len(open_uploads)} multipart upload(s) left open")
            return "no multipart upload left open"

        for name, fn in (
            ("bucket reachable", bucket),
            ("multipart upload", upload),
            ("HEAD metadata", metadata),
            ("listing", listing),
            ("download + sha256", download),
            ("delete", delete),
            ("no open uploads", no_open_uploads),
        ):
            _run(name, fn, results)
    if any(r.status != "PASS" for r in results):
        _cleanup(store, key)
    return results


def _cleanup(store: ObjectStore, key: str) -> None:
    """Best effort: remove the probe object and any upload of it."""
    try:
        for k, upload_id in store.list_uploads(key):
            if k == key:
                store.abort_upload(k, upload_id)
        store.delete(key)
    except Exception:
        pass  # the store is what failed; the report already says so


def probe_bucket(store: ObjectStore, key_prefix: str) -> str:
    """A small put/get/delete round trip; returns a summary, raises on failure."""
    key = f"{key_prefix.strip('/')}/readiness-probe-{secrets.token_hex(6)}".lstrip("/")
    data = os.urandom(4096)
    t0 = time.monotonic()
    store.put_bytes(key, data, {"sha256": hashlib.sha256(data).hexdigest()})
    try:
        if store.get_range(key, 0, len(data)) != data:
            raise RuntimeError(f"GET {key} returned different bytes")
    finally:
        store.delete(key)
    return f"put/get/delete round trip in {(time.monotonic() - t0) * 1000:.0f} ms"
