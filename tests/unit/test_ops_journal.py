"""The watcher journal: atomic persistence, strict loading, one owner at a time."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import pytest

from maya_asr.ops.journal import Entry, Journal, JournalLocked


def entry(name="a.ckpt", **kw):
    return Entry(name=name, key=f"run/{name}", size=10, mtime_ns=1, sha256="ab" * 32, **kw)


def test_round_trip(tmp_path):
    j = Journal(tmp_path / "j.json")
    j.put(entry(state="uploading", upload_id="u1"))
    j.put(entry("b.ckpt"))
    again = Journal(tmp_path / "j.json").load()
    assert again.entries == j.entries
    assert again.entries["a.ckpt"].upload_id == "u1"


def test_absent_journal_is_empty(tmp_path):
    assert Journal(tmp_path / "none.json").load().entries == {}


def test_unknown_keys_and_states_are_rejected(tmp_path):
    path = tmp_path / "j.json"
    path.write_text(json.dumps({"version": 1, "entries": {"a": {**entry().__dict__, "x": 1}}}))
    with pytest.raises(ValueError, match="unknown keys"):
        Journal(path).load()
    path.write_text(
        json.dumps({"version": 1, "entries": {"a": {**entry().__dict__, "state": "zombie"}}})
    )
    with pytest.raises(ValueError, match="unknown state"):
        Journal(path).load()
    path.write_text("{not json")
    with pytest.raises(ValueError, match="move it aside"):
        Journal(path).load()


def test_second_owner_is_refused(tmp_path):
    first = Journal(tmp_path / "j.json")
    first.lock()
    try:
        with pytest.raises(JournalLocked):
            Journal(tmp_path / "j.json").lock()
    finally:
        first.unlock()
    second = Journal(tmp_path / "j.json")
    second.lock()  # free again
    second.unlock()


def test_failed_write_keeps_the_old_journal_on_disk_and_in_memory(tmp_path):
    """A full disk during the journal write: old file intact, no temp left, state unchanged."""
    j = Journal(tmp_path / "j.json")
    j.put(entry())
    before = (tmp_path / "j.json").read_bytes()
    code = f"""
import resource, signal, sys
from maya_asr.ops.journal import Entry, Journal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))  # any write past 64 bytes fails (EFBIG)
j = Journal({str(tmp_path / "j.json")!r}).load()
e = j.entries["a.ckpt"]
try:
    j.put(Entry(**{{**e.__dict__, "state": "verified"}}))
except OSError as exc:
    print("EFBIG" if exc.errno == 27 else exc.errno, j.entries["a.ckpt"].state)
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert out.stdout.split() == ["EFBIG", "hashed"], out.stderr
    assert (tmp_path / "j.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # the limit only applied to the child
