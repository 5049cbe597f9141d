"""The watcher's journal: one JSON file, replaced atomically after every state change.

Each checkpoint moves through

    hashed -> uploading -> uploaded -> verified -> deleted
                 ^            |           (kept while among the newest K)
                 +-- verify failed (re-upload) --+          failed (gave up; local file kept)

and every transition is written *after* the action it records, and every action is idempotent,
so a kill -9 between an action and its journal write only repeats that action on restart:

- killed after CreateMultipartUpload, before the id was journaled: the id is unknown to the
  journal and the startup sweep aborts it;
- killed mid-part: the journaled upload id is resumed (ListParts keeps matching parts);
- killed after CompleteMultipartUpload: ListParts says NoSuchUpload, HEAD finds the object
  with our SHA-256 and size, and verification runs as usual;
- killed after verifying: verification runs again;
- killed after deleting the local file: the file is gone and the entry is ``verified``, so the
  entry is marked ``deleted``.

A ``failed`` entry (verification failed ``max_verify_failures`` times, or the file vanished
mid-upload) is left alone and its file kept; ``touch`` the file to make the watcher try again.

A local file is unlinked only from the ``verified`` state, after re-checking that it still has the
size, mtime and SHA-256 that were verified remotely.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from maya_asr.ops.localfs import atomic_write_json

JOURNAL_VERSION = 1
STATES = ("hashed", "uploading", "uploaded", "verified", "deleted", "failed")


@dataclass
class Entry:
    """What the journal knows about one checkpoint file (keyed by its name in the directory)."""

    name: str  # file name relative to the watched directory
    key: str  # object key in the bucket
    size: int  # bytes, at hashing time
    mtime_ns: int  # st_mtime_ns at hashing time
    sha256: str  # hex SHA-256 of the local file
    state: str = "hashed"  # one of STATES
    upload_id: str = ""  # multipart upload in progress ("" when none)
    etag: str = ""  # ETag of the completed object
    verify_failures: int = 0  # remote copies that failed verification so far
    error: str = ""  # last error (secret-free), for the operator

    def __post_init__(self):
        if self.state not in STATES:
            raise ValueError(f"journal entry {self.name}: unknown state {self.state!r}")


class JournalLocked(RuntimeError):
    """Another watcher already owns this journal."""


class Journal:
    """The entries, persisted to ``path``; holds an exclusive lock on ``path + '.lock'``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.entries: dict[str, Entry] = {}
        self._lock_fh = None

    def lock(self) -> None:
        """Take the exclusive lock (non-blocking): two watchers on one directory is a bug."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path.with_name(self.path.name + ".lock"), "a")  # noqa: SIM115
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise JournalLocked(
                f"another checkpoint watcher holds {self.path}.lock; stop it first"
            ) from None
        self._lock_fh = fh

    def unlock(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def load(self) -> Journal:
        """Read the journal (an absent file is an empty journal)."""
        if not self.path.exists():
            self.entries = {}
            return self
        try:
            raw = json.loads(self.path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{self.path} is not valid JSON ({exc}); it is only ever replaced atomically, so "
                "something else wrote it: move it aside and restart (uploads are re-verified)"
            ) from None
        if raw.get("version") != JOURNAL_VERSION:
            raise ValueError(
                f"{self.path}: journal version {raw.get('version')} is not "
                f"{JOURNAL_VERSION}; move it aside and restart"
            )
        known = {f.name for f in fields(Entry)}
        entries = {}
        for name, data in raw.get("entries", {}).items():
            unknown = set(data) - known
            if unknown:
                raise ValueError(f"{self.path}: entry {name} has unknown keys {sorted(unknown)}")
            entries[name] = Entry(**data)
        self.entries = entries
        return self

    def save(self) -> None:
        """Persist all entries atomically (see :func:`~maya_asr.ops.localfs.atomic_write_json`)."""
        atomic_write_json(
            self.path,
            {
                "version": JOURNAL_VERSION,
                "entries": {n: asdict(e) for n, e in self.entries.items()},
            },
        )

    def put(self, entry: Entry) -> None:
        """Record ``entry`` and persist at once; on failure (e.g. a full disk) nothing changes."""
        previous = self.entries.get(entry.name)
        self.entries[entry.name] = entry
        try:
            self.save()
        except BaseException:
            if previous is None:
                del self.entries[entry.name]
            else:
                self.entries[entry.name] = previous
            raise
