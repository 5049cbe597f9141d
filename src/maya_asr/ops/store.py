"""Object store client over boto3's S3 API, shaped by what Cloudflare R2 demands.

- Uploads are always multipart with ONE fixed part size: R2 rejects a multipart upload whose
  non-trailing parts differ in size, and checkpoints exceed the 5 GB single-PUT limit.
  Each part carries Content-MD5 (``TransferConfig.content_md5``), so the server rejects a part
  damaged in transit before the full read-back would catch it.
- The file's SHA-256, computed locally beforehand, is stored as object metadata
  (``x-amz-meta-sha256``), together with its size and the part size.
- Every call is retried with jittered exponential backoff (:mod:`maya_asr.ops.retry`).
- An interrupted multipart upload is resumed: ``ListParts`` says which parts the server holds,
  parts whose size and MD5 ETag match the local bytes are kept and the rest are (re)sent. An
  upload that vanished (``NoSuchUpload``) is restarted, and uploads nobody will finish are
  aborted (:meth:`ObjectStore.abort_stale_uploads`), never left to rot.
- :meth:`ObjectStore.verify` proves a remote copy good: size and metadata SHA-256 from HEAD,
  then the SHA-256 of the bytes read back from the server.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from maya_asr.ops.credentials import R2Settings, redact
from maya_asr.ops.retry import RetryPolicy, call_with_retry

log = logging.getLogger(__name__)

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3 and R2 minimum for every part but the last
MAX_PARTS = 10_000  # S3 and R2 maximum parts per upload
META_SHA256 = "sha256"
META_SIZE = "source-size"
META_PART_SIZE = "part-size"


class StoreError(RuntimeError):
    """An object store operation failed for good; the message holds no credential."""


class UploadInterrupted(StoreError):
    """An upload or verification was stopped on request (SIGTERM); it can be resumed."""


@dataclass(frozen=True)
class TransferConfig:
    """How to move bytes; the defaults suit 13 GB checkpoints going to R2."""

    part_size: int = 64 * MiB  # fixed size of every part but the last (>= 5 MiB)
    concurrency: int = 4  # parts in flight at once (memory: concurrency x part_size)
    connect_timeout_s: float = 10.0  # TCP connect timeout per request
    read_timeout_s: float = 120.0  # socket read timeout per request
    retry: RetryPolicy = field(default_factory=RetryPolicy)  # backoff for every call
    max_upload_restarts: int = 3  # fresh multipart uploads after NoSuchUpload before giving up
    content_md5: bool = True  # send Content-MD5 per part: the server rejects a damaged part

    def __post_init__(self):
        if self.part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be >= 5 MiB (S3/R2 minimum), got {self.part_size}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")

    def parts_for(self, size: int) -> int:
        """Number of parts for a file of ``size`` bytes (at least 1)."""
        parts = max(1, math.ceil(size / self.part_size))
        if parts > MAX_PARTS:
            need = math.ceil(size / MAX_PARTS / MiB)
            raise ValueError(
                f"{size} bytes need {parts} parts of {self.part_size} bytes, over the "
                f"{MAX_PARTS}-part limit: raise the part size to at least {need} MiB"
            )
        return parts


@dataclass(frozen=True)
class ObjectInfo:
    """What HEAD says about an object."""

    key: str
    size: int
    etag: str
    sha256: str | None  # from our metadata; None when the object was not written by us


@dataclass(frozen=True)
class UploadResult:
    key: str
    size: int
    etag: str  # ETag of the completed object
    upload_id: str  # the multipart upload that produced it ("" when found already complete)
    parts_sent: int  # parts transferred by this call (0 when everything was already there)


@dataclass(frozen=True)
class Verification:
    ok: bool
    reasons: tuple[str, ...]  # why not, one sentence each (empty when ok)
    etag: str = ""


def make_client(settings: R2Settings, transfer: TransferConfig):
    """A boto3 S3 client for ``settings``; its own retries are off (ours wrap every call)."""
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=settings.region,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": 1},
        connect_timeout=transfer.connect_timeout_s,
        read_timeout=transfer.read_timeout_s,
        max_pool_connections=transfer.concurrency + 4,
        # We send Content-MD5 per part and check SHA-256 ourselves; the newer default CRC
        # trailers are not understood by every S3-compatible server.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.access_key_id.reveal(),
        aws_secret_access_key=settings.secret_access_key.reveal(),
        config=config,
    )


def _error_code(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _is_missing(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 404 or _error_code(exc) in ("NoSuchKey", "NotFound", "404")


def _read_part(path: str, number: int, part_size: int, size: int) -> bytes:
    """Bytes of 1-based part ``number``; a short read means the file changed under us."""
    offset = (number - 1) * part_size
    length = min(part_size, size - offset)
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(data) != length:
        raise StoreError(f"{path} shrank while uploading (part {number}); it is not a final file")
    return data


class ObjectStore:
    """One bucket, spoken to through a boto3 client with our retry policy around every call."""

    def __init__(self, client, bucket: str, transfer: TransferConfig, secrets: Iterable[str] = ()):
        self.client = client
        self.bucket = bucket
        self.transfer = transfer
        self._secrets = tuple(secrets)

    @classmethod
    def from_settings(cls, settings: R2Settings, transfer: TransferConfig | None = None):
        transfer = transfer or TransferConfig()
        return cls(
            make_client(settings, transfer), settings.bucket, transfer, settings.secret_values()
        )

    # ---------------------------------------------------------------- plumbing
    def _call(self, what: str, fn: Callable[[], object]):
        try:
            return call_with_retry(fn, self.transfer.retry, what)
        except StoreError:
            raise
        except Exception as exc:
            if _is_missing(exc) or _error_code(exc) == "NoSuchUpload":
                raise
            raise StoreError(redact(f"{what} failed: {exc}", self._secrets)) from None

    # ---------------------------------------------------------------- small objects
    def head(self, key: str) -> ObjectInfo | None:
        """HEAD ``key``; None when it does not exist."""
        try:
            resp = self._call(
                f"HEAD {key}", lambda: self.client.head_object(Bucket=self.bucket, Key=key)
            )
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise
        meta = {k.lower(): v for k, v in resp.get("Metadata", {}).items()}
        return ObjectInfo(
            key, int(resp["ContentLength"]), resp.get("ETag", "").strip('"'), meta.get(META_SHA256)
        )

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        self._call(
            f"PUT {key}",
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentMD5=md5, Metadata=metadata or {}
            ),
        )

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes of ``key`` from ``start``, re-requested when the body comes up short."""

        def fetch() -> bytes:
            resp = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
            )
            data = resp["Body"].read()
            if len(data) != length:
                raise ConnectionError(f"short read: {len(data)} of {length} bytes")
            return data

        return self._call(f"GET {key} [{start}+{length}]", fetch)

    def delete(self, key: str) -> None:
        self._call(f"DELETE {key}", lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def list_objects(self, prefix: str = "") -> dict[str, int]:
        """``{key: size}`` of every object under ``prefix``."""

        def listing() -> dict[str, int]:
            out: dict[str, int] = {}
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    out[obj["Key"]] = int(obj["Size"])
            return out

        return self._call(f"LIST {prefix or '/'}", listing)

    def check_bucket(self) -> None:
        """Raise :class:`StoreError` unless the bucket exists and we may use it."""
        self._call(
            f"HEAD bucket {self.bucket}", lambda: self.client.head_bucket(Bucket=self.bucket)
        )

    # ---------------------------------------------------------------- multipart
    def list_uploads(self, prefix: str = "") -> list[tuple[str, str]]:
        """``[(key, upload_id)]`` of multipart uploads in progress under ``prefix``."""

        def listing() -> list[tuple[str, str]]:
            out = []
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                out.extend((u["Key"], u["UploadId"]) for u in page.get("Uploads", []))
            return out

        return self._call(f"LIST uploads {prefix or '/'}", listing)

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            self._call(
                f"ABORT {key}",
                lambda: self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                ),
            )
        except Exception as exc:
            if not (_is_missing(exc) or _error_code(exc) == "NoSuchUpload"):
                raise

    def abort_stale_uploads(self, prefix: str, keep: Iterable[str] = ()) -> list[tuple[str, str]]:
        """Abort every upload under ``prefix`` whose id is not in ``keep``; returns the aborted."""
        keep = set(keep)
        stale = [(k, u) for k, u in self.list_uploads(prefix) if u not in keep]
        for key, upload_id in stale:
            log.info("aborting stale multipart upload of %s (%s)", key, upload_id)
            self.abort_upload(key, upload_id)
        return stale

    def _list_parts(self, key: str, upload_id: str) -> dict[int, tuple[int, str]]:
        def listing() -> dict[int, tuple[int, str]]:
            out = {}
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
            for page in pages:
                for p in page.get("Parts", []):
                    out[int(p["PartNumber"])] = (int(p["Size"]), p["ETag"].strip('"'))
            return out

        return self._call(f"LIST parts {key}", listing)

    def upload_file(
        self,
        path: str | os.PathLike,
        key: str,
        sha256: str,
        *,
        upload_id: str | None = None,
        on_upload_id: Callable[[str], None] | None = None,
        on_part: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> UploadResult:
        """Upload ``path`` to ``key`` as a fixed-part-size multipart upload, resuming ``upload_id``.

        ``on_upload_id(id)`` runs after CreateMultipartUpload and before any part, so the caller
        can journal the id; ``on_part(done, total)`` after each acknowledged part;
        ``should_stop()`` is polled before each part (True -> :class:`UploadInterrupted`).
        """
        path = os.fspath(path)
        size = os.path.getsize(path)
        part_size = self.transfer.part_size
        n_parts = self.transfer.parts_for(size)
        restarts = 0
        while True:
            if upload_id is None:
                upload_id = self._create(key, sha256, size, part_size)
                if on_upload_id:
                    on_upload_id(upload_id)
            try:
                return self._upload_parts(path, key, size, n_parts, upload_id, on_part, should_stop)
            except Exception as exc:
                if _error_code(exc) != "NoSuchUpload":
                    raise
                done = self.head(key)
                if done and done.sha256 == sha256 and done.size == size:
                    # Completed before a crash or a lost response: the object is there.
                    log.info("%s: upload %s already completed", key, upload_id)
                    return UploadResult(key, size, done.etag, "", 0)
                restarts += 1
                if restarts > self.transfer.max_upload_restarts:
                    raise StoreError(f"{key}: multipart upload vanished {restarts} times") from None
                log.warning("%s: upload %s is gone on the server; starting afresh", key, upload_id)
                upload_id = None

    def _create(self, key: str, sha256: str, size: int, part_size: int) -> str:
        metadata = {META_SHA256: sha256, META_SIZE: str(size), META_PART_SIZE: str(part_size)}
        resp = self._call(
            f"CREATE upload {key}",
            lambda: self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, Metadata=metadata
            ),
        )
        return resp["UploadId"]

    def _upload_parts(self, path, key, size, n_parts, upload_id, on_part, should_stop):
        part_size = self.transfer.part_size
        have = self._list_parts(key, upload_id)
        etags: dict[int, str] = {}
        todo = []
        for number in range(1, n_parts + 1):
            expected = min(part_size, size - (number - 1) * part_size)
            if number in have and have[number][0] == expected:
                local_md5 = hashlib.md5(_read_part(path, number, part_size, size)).hexdigest()
                if have[number][1] == local_md5:
                    etags[number] = local_md5
                    continue
            todo.append(number)
        if have:
            log.info(
                "%s: resuming upload, %d/%d parts already on the server", key, len(etags), n_parts
            )

        def send(number: int) -> tuple[int, str]:
            data = _read_part(path, number, part_size, size)
            extra = {}
            if self.transfer.content_md5:
                extra["ContentMD5"] = base64.b64encode(hashlib.md5(data).digest()).decode()
            resp = self._call(
                f"PUT part {number}/{n_parts} of {key}",
                lambda: self.client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    **extra,
                ),
            )
            return number, resp["ETag"].strip('"')

        stopped = False
        with ThreadPoolExecutor(self.transfer.concurrency, thread_name_prefix="part") as pool:
            pending: set[Future] = set()
            queue = list(todo)
            first_error: BaseException | None = None
            while queue or pending:
                while queue and len(pending) < self.transfer.concurrency and first_error is None:
                    if should_stop and should_stop():
                        stopped = True
                        queue.clear()
                        break
                    pending.add(pool.submit(send, queue.pop(0)))
                if not pending:
                    break
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    try:
                        number, etag = fut.result()
                    except Exception as exc:
                        first_error = first_error or exc
                        queue.clear()
                        continue
                    etags[number] = etag  # only this (the calling) thread writes etags
                    if on_part:
                        on_part(len(etags), n_parts)
            if first_error is not None:
                raise first_error
        if stopped:
            raise UploadInterrupted(f"{key}: stopped with {len(etags)}/{n_parts} parts sent")

        parts = [{"PartNumber": n, "ETag": f'"{etags[n]}"'} for n in sorted(etags)]
        resp = self._call(
            f"COMPLETE upload {key}",
            lambda: self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            ),
        )
        return UploadResult(key, size, resp.get("ETag", "").strip('"'), upload_id, len(todo))

    # ---------------------------------------------------------------- verification
    def remote_sha256(
        self, key: str, size: int, should_stop: Callable[[], bool] | None = None
    ) -> str:
        """SHA-256 of the object's bytes, read back in part-sized ranges (a few in flight)."""
        digest = hashlib.sha256()
        chunk = self.transfer.part_size
        starts = list(range(0, size, chunk))
        with ThreadPoolExecutor(self.transfer.concurrency, thread_name_prefix="get") as pool:
            window: list[Future] = []
            for start in starts:
                if should_stop and should_stop():
                    for fut in window:
                        fut.cancel()
                    raise UploadInterrupted(f"{key}: verification stopped on request")
                window.append(pool.submit(self.get_range, key, start, min(chunk, size - start)))
                if len(window) >= self.transfer.concurrency:
                    digest.update(window.pop(0).result())
            for fut in window:
                digest.update(fut.result())
        return digest.hexdigest()

    def verify(
        self, key: str, size: int, sha256: str, should_stop: Callable[[], bool] | None = None
    ) -> Verification:
        """Is the remote ``key`` exactly our file? HEAD (size, metadata SHA-256), then read-back."""
        info = self.head(key)
        if info is None:
            return Verification(False, (f"{key} does not exist",))
        reasons = []
        if info.size != size:
            reasons.append(f"remote size {info.size} != local size {size}")
        if info.sha256 != sha256:
            reasons.append(f"remote metadata sha256 {info.sha256} != local {sha256}")
        if not reasons:
            remote = self.remote_sha256(key, size, should_stop)
            if remote != sha256:
                reasons.append(f"sha256 of the remote bytes {remote} != local {sha256}")
        return Verification(not reasons, tuple(reasons), info.etag)
