"""The header walker agrees with tarfile on every regular member, and reports damage."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from maya_asr.data.tar_headers import TarWalk


def _tar(path, fmt, names_sizes):
    with tarfile.open(path, "w", format=fmt) as tar:
        d = tarfile.TarInfo("a_directory")
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
        for name, size in names_sizes:
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(bytes((i * 7) % 251 for i in range(size))))
    return path


def _walk(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        walk = TarWalk(fd)
        return [(m.name, m.offset_data, m.size) for m in walk], walk
    finally:
        os.close(fd)


MEMBERS = [
    ("hi_000001.flac", 1000),
    ("hi_000001.json", 0),
    ("x" * 120 + "/long_name_past_100_bytes.wav", 513),
    ("नमस्ते_unicode.json", 511),
    ("deep/" * 30 + "f.json", 512),
]


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_members_match_tarfile(tmp_path, fmt):
    members = MEMBERS if fmt != tarfile.USTAR_FORMAT else [m for m in MEMBERS if len(m[0]) < 100]
    path = _tar(tmp_path / "t.tar", fmt, members)
    with tarfile.open(path) as tar:
        expected = [(m.name, m.offset_data, m.size) for m in tar if m.isfile()]
    got, walk = _walk(path)
    assert got == expected and len(got) == len(members)
    assert walk.ended_cleanly and walk.error is None


def test_garbled_header_stops_the_walk_with_a_reason(tmp_path):
    path = _tar(tmp_path / "t.tar", tarfile.USTAR_FORMAT, MEMBERS[:2])
    data = bytearray(path.read_bytes())
    second_header = 512 + 512 + 1024  # dir header, first header, its 1000 bytes padded
    data[second_header + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    got, walk = _walk(path)
    assert [name for name, _, _ in got] == ["hi_000001.flac"]
    assert not walk.ended_cleanly and "checksum" in walk.error
    assert walk.position == second_header


def test_cut_file_ends_without_marker(tmp_path):
    path = _tar(tmp_path / "t.tar", tarfile.USTAR_FORMAT, MEMBERS[:2])
    path.write_bytes(path.read_bytes()[: 512 + 512 + 300])  # inside the first member's data
    got, walk = _walk(path)
    assert got == [("hi_000001.flac", 1024, 1000)]  # the caller checks data against file size
    assert not walk.ended_cleanly and walk.error is None


def test_not_a_tar(tmp_path):
    path = tmp_path / "t.tar"
    path.write_bytes(b"\x01" * 1500)
    got, walk = _walk(path)
    assert got == [] and walk.position == 0 and "not octal" in walk.error
