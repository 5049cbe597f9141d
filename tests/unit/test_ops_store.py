"""The object store client against moto behind the R2-like proxy, over real HTTP."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import pytest
from ops_helpers import PART, store_for

from maya_asr.ops.local_s3 import LocalS3
from maya_asr.ops.r2_proxy import check_part_sizes
from maya_asr.ops.store import MiB, StoreError, TransferConfig, UploadInterrupted

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3():
    with LocalS3() as server:
        server.create_bucket("store")
        yield server


@pytest.fixture
def store(s3):
    s3.set_faults([])
    return store_for(s3, "store")


def blob(tmp_path, nbytes, seed=0):
    data = hashlib.sha256(str(seed).encode()).digest() * (nbytes // 32) + b"x" * (nbytes % 32)
    path = tmp_path / f"blob{seed}"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_r2_part_size_rule():
    assert check_part_sizes([5, 5, 3]) is None
    assert check_part_sizes([5]) is None and check_part_sizes([]) is None
    assert check_part_sizes([5, 5, 5]) is None
    assert check_part_sizes([5, 6, 3]) is not None  # unequal non-trailing parts
    assert check_part_sizes([5, 5, 6]) is not None  # last larger than the others


def test_proxy_rejects_unequal_parts_like_r2(store, tmp_path):
    c, b = store.client, store.bucket
    uid = c.create_multipart_upload(Bucket=b, Key="unequal")["UploadId"]
    parts = []
    for n, size in enumerate((6 * MiB, 5 * MiB, 1 * MiB), start=1):
        etag = c.upload_part(Bucket=b, Key="unequal", UploadId=uid, PartNumber=n, Body=b"a" * size)[
            "ETag"
        ]
        parts.append({"PartNumber": n, "ETag": etag})
    with pytest.raises(Exception, match="same length"):
        c.complete_multipart_upload(
            Bucket=b, Key="unequal", UploadId=uid, MultipartUpload={"Parts": parts}
        )
    store.abort_upload("unequal", uid)


def test_upload_stores_sha256_metadata_and_verifies(store, tmp_path):
    path, sha = blob(tmp_path, 2 * PART + 123)
    result = store.upload_file(path, "k/a.bin", sha)
    assert result.parts_sent == 3 and result.etag.endswith("-3")
    info = store.head("k/a.bin")
    assert (info.size, info.sha256) == (os.path.getsize(path), sha)
    assert store.verify("k/a.bin", info.size, sha).ok
    bad = store.verify("k/a.bin", info.size, "0" * 64)
    assert not bad.ok and "metadata sha256" in bad.reasons[0]
    assert not store.verify("k/a.bin", info.size + 1, sha).ok
    assert not store.verify("k/missing", 1, sha).ok


def test_single_part_and_exact_multiple(store, tmp_path):
    for seed, nbytes in ((1, 1000), (2, 2 * PART)):
        path, sha = blob(tmp_path, nbytes, seed)
        store.upload_file(path, f"k/{seed}", sha)
        assert store.verify(f"k/{seed}", nbytes, sha).ok


def test_upload_without_content_md5(s3, tmp_path):
    plain = store_for(s3, "store")
    plain = type(plain)(plain.client, plain.bucket, replace(plain.transfer, content_md5=False))
    path, sha = blob(tmp_path, PART + 7, seed=9)
    plain.upload_file(path, "k/plain", sha)
    assert plain.verify("k/plain", PART + 7, sha).ok


def test_verification_stops_on_request(store, tmp_path):
    path, sha = blob(tmp_path, 2 * PART, seed=8)
    store.upload_file(path, "k/stop", sha)
    with pytest.raises(UploadInterrupted, match="verification stopped"):
        store.verify("k/stop", 2 * PART, sha, should_stop=lambda: True)


def test_resume_keeps_matching_parts_and_resends_the_rest(store, tmp_path):
    path, sha = blob(tmp_path, 2 * PART + 5, seed=3)
    ids = []
    calls = iter(range(10))
    with pytest.raises(UploadInterrupted):
        store.upload_file(
            path, "k/resume", sha, on_upload_id=ids.append, should_stop=lambda: next(calls) >= 1
        )
    # One part is on the server; damage our record of it by uploading a wrong part 2.
    store.client.upload_part(
        Bucket=store.bucket, Key="k/resume", UploadId=ids[0], PartNumber=2, Body=b"z" * PART
    )
    result = store.upload_file(path, "k/resume", sha, upload_id=ids[0])
    assert result.upload_id == ids[0] and result.parts_sent == 2  # part 1 kept, 2 and 3 sent
    assert store.verify("k/resume", os.path.getsize(path), sha).ok
    assert store.list_uploads("k/resume") == []


def test_vanished_upload_restarts_and_completed_one_is_recognised(store, tmp_path):
    path, sha = blob(tmp_path, PART + 1, seed=4)
    ids = []
    result = store.upload_file(
        path, "k/gone", sha, upload_id="no-such-upload", on_upload_id=ids.append
    )
    assert len(ids) == 1 and result.upload_id == ids[0]
    again = store.upload_file(path, "k/gone", sha, upload_id=ids[0])  # already completed
    assert again.parts_sent == 0 and again.upload_id == ""


def test_stale_uploads_are_aborted(store):
    keep = store.client.create_multipart_upload(Bucket=store.bucket, Key="s/keep")["UploadId"]
    drop = store.client.create_multipart_upload(Bucket=store.bucket, Key="s/drop")["UploadId"]
    aborted = store.abort_stale_uploads("s/", keep=[keep])
    assert aborted == [("s/drop", drop)]
    assert store.list_uploads("s/") == [("s/keep", keep)]
    store.abort_upload("s/keep", keep)


def test_exhausted_retries_raise_a_store_error(s3, store, tmp_path):
    path, sha = blob(tmp_path, 100, seed=5)
    s3.set_faults(
        [{"action": "error", "method": "POST", "status": 503, "code": "SlowDown", "count": 100}]
    )
    with pytest.raises(StoreError, match="SlowDown"):
        store.upload_file(path, "k/never", sha)


def test_transfer_config_validation():
    with pytest.raises(ValueError, match="5 MiB"):
        TransferConfig(part_size=MiB)
    with pytest.raises(ValueError, match="at least 6 MiB"):
        TransferConfig(part_size=PART).parts_for(10_001 * PART + 1)
    assert TransferConfig(part_size=PART).parts_for(0) == 1
