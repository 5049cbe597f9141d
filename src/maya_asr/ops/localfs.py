"""Local file facts the watcher relies on: hashes, atomic writes, and "is this file finished?".

A checkpoint is *complete* when one of these holds:

1. a sidecar marker ``<file><marker_suffix>`` exists (the trainer says so), or
2. all of: its mtime is at least ``settle_s`` old and its (size, mtime) did not change between
   two looks; no process on this host holds it open for writing (``/proc/*/fdinfo``); and, for
   zip-based formats (``torch.save``'s ``.ckpt``/``.pt``), the zip end-of-central-directory
   record is present, which ``torch.save`` writes last. A file cut short by a crash or a full
   disk fails the zip test forever and is never uploaded.

The trainer can make this trivial by writing ``<name>.tmp`` and renaming it atomically to
``<name>`` (the watcher ignores ``*.tmp``) and then touching the marker.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

ZIP_SUFFIXES = (".ckpt", ".pt", ".pth", ".nemo.zip")
_HASH_CHUNK = 8 * 1024 * 1024


def sha256_file(path: str | os.PathLike, chunk: int = _HASH_CHUNK) -> str:
    """Hex SHA-256 of a file, read in ``chunk``-byte blocks (memory stays flat)."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    """Replace ``path`` with ``obj`` as JSON so that a crash leaves the old or the new file whole.

    Write a temp file in the same directory, fsync it, rename over ``path``, fsync the directory.
    On any error (e.g. a full disk) the temp file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(obj, indent=1, sort_keys=True).encode()
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def zip_complete(path: str | os.PathLike) -> bool:
    """True when the file ends in a readable zip central directory (torch.save writes it last)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return len(zf.infolist()) > 0
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False


def open_for_writing(path: str | os.PathLike, proc: str = "/proc") -> bool:
    """True when a process on this host (that we may inspect) holds ``path`` open for writing.

    Reads ``/proc/<pid>/fd`` links and the access mode in ``fdinfo``; processes we may not
    inspect are skipped, so this is evidence, not proof (the other checks still apply).
    """
    try:
        target = os.path.realpath(path)
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return False
    for pid in pids:
        fd_dir = os.path.join(proc, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(os.path.join(fd_dir, fd)) != target:
                    continue
                with open(os.path.join(proc, pid, "fdinfo", fd)) as fh:
                    flags = next(
                        int(line.split()[1], 8) for line in fh if line.startswith("flags:")
                    )
            except (OSError, StopIteration, ValueError):
                continue
            if flags & (os.O_WRONLY | os.O_RDWR):
                return True
    return False


def needs_zip_check(path: str | os.PathLike) -> bool:
    return str(path).endswith(ZIP_SUFFIXES)
