"""Walk a tar's member headers with ``os.pread``: (name, data offset, size) per regular file.

Why not ``tarfile``: it builds a full ``TarInfo`` per member (owner, mode, times, checksum via
Python loops), ~40 us a header; a production index walks ~100M headers, so that alone is an hour
of CPU. This walker decodes only what the manifest needs — name, size, type — from the same
512-byte blocks, verifies each header's checksum, and understands the extensions real writers
use for long names (GNU ``L``, POSIX pax ``x`` records with ``path``/``size``; ``g`` and ``K``
are skipped). tests/unit/test_tar_headers.py checks it against ``tarfile`` member by member.

Damage is reported, not raised past the caller: :class:`TarWalk` records where and why it
stopped, and whether it saw the end-of-archive marker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

BLOCK = 512
_ZERO = bytes(BLOCK)
_REGULAR = (b"0", b"\0", b"7")  # regular file, old-style regular file, contiguous file


class TarHeaderError(ValueError):
    """A header block is not a valid tar header; the message says where and why."""


@dataclass(frozen=True)
class TarMember:
    name: str  # member path inside the tar
    offset_data: int  # byte offset of the member's data in the tar file
    size: int  # data size in bytes


def _octal(field: bytes, what: str, at: int) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for sizes of 8 GiB and more
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise TarHeaderError(f"header at byte {at}: {what} {field!r} is not octal") from None


def _name(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(data: bytes) -> dict[str, str]:
    """``"<len> key=value\\n"`` records of a pax extended header."""
    records, pos = {}, 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class TarWalk:
    """Iterate the regular members of an open tar file descriptor, headers only.

    After iteration: ``ended_cleanly`` is True when an end-of-archive block was found, and
    ``error`` says why the walk stopped otherwise (``None`` with ``ended_cleanly`` False means
    the file simply ran out: a cut at a member boundary). ``position`` is where it stopped.
    """

    def __init__(self, fd: int, file_size: int | None = None) -> None:
        self.fd = fd
        self.file_size = os.fstat(fd).st_size if file_size is None else file_size
        self.position = 0
        self.ended_cleanly = False
        self.error: str | None = None

    def _read(self, n: int, offset: int) -> bytes:
        return os.pread(self.fd, n, offset)

    def __iter__(self) -> Iterator[TarMember]:
        long_name: str | None = None
        pax: dict[str, str] = {}
        pos = 0
        while True:
            self.position = pos
            block = self._read(BLOCK, pos)
            if len(block) < BLOCK:
                if block:
                    self.error = f"header at byte {pos} is cut short ({len(block)} bytes)"
                return
            if block == _ZERO:
                self.ended_cleanly = True
                return
            try:
                stored = _octal(block[148:156], "checksum", pos)
                if stored != sum(block[:148]) + 256 + sum(block[156:]):
                    raise TarHeaderError(f"header at byte {pos} fails its checksum")
                size = _octal(block[124:136], "size", pos)
            except TarHeaderError as e:
                self.error = str(e)
                return
            kind = block[156:157]
            data_at = pos + BLOCK
            pos = data_at + -(-size // BLOCK) * BLOCK
            if kind == b"L":  # GNU long name: the data is the next member's name
                long_name = _name(self._read(size, data_at))
                continue
            if kind == b"x":  # pax extended header for the next member
                pax = _pax_records(self._read(size, data_at))
                continue
            if kind in (b"g", b"K"):
                continue
            name = _name(block[:100])
            if block[257:263] == b"ustar\0" and block[345] != 0:  # POSIX prefix field
                name = _name(block[345:500]) + "/" + name
            name = pax.get("path", long_name or name)
            if "size" in pax:
                size = int(pax["size"])
                pos = data_at + -(-size // BLOCK) * BLOCK
            long_name, pax = None, {}
            if kind in _REGULAR:
                yield TarMember(name, data_at, size)
