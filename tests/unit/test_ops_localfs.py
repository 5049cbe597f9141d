"""Local file facts: hashing, atomic JSON, and the signals of a finished checkpoint."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from ops_helpers import make_checkpoint

from maya_asr.ops.localfs import atomic_write_json, open_for_writing, sha256_file, zip_complete


def test_sha256_matches_hashlib(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f", chunk=1 << 20) == hashlib.sha256(data).hexdigest()


def test_zip_complete_only_for_whole_archives(tmp_path):
    path = tmp_path / "a.ckpt"
    make_checkpoint(path, nbytes=200_000)
    assert zip_complete(path)
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) - 22, len(data) // 2, 10):
        (tmp_path / "cut.ckpt").write_bytes(data[:cut])
        assert not zip_complete(tmp_path / "cut.ckpt"), cut
    assert not zip_complete(tmp_path / "missing.ckpt")


def test_open_for_writing_sees_our_own_writer(tmp_path):
    path = tmp_path / "w.ckpt"
    path.write_bytes(b"x")
    assert not open_for_writing(path)
    with open(path, "rb"):
        assert not open_for_writing(path)  # readers do not count
    with open(path, "ab"):
        assert open_for_writing(path)
    assert not open_for_writing(path)


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / "j.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": object()})  # fails while serialising
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.json"]
