"""The production raw shard format: the contract between whoever delivers data and our pipeline.

Layout::

    <root>/<lang>/shard-000000.tar
    <root>/<lang>/shard-000001.tar
    ...

Each tar is WebDataset-style: members are grouped by *key* (the member name up to its first dot)
and each key has exactly one audio member and one metadata member::

    hi_000042.flac   audio: WAV or FLAC, mono, any sample rate (16 kHz, 22.05 kHz, 8 kHz seen)
    hi_000042.json   UTF-8 JSON object with at least {"text": str, "lang": str, "speaker": str}

Keys are unique within a language and contain no dots or slashes. Members of one key are
adjacent. Extra JSON fields are allowed and passed through.
"""

from __future__ import annotations

import io
import json
import re
import tarfile

AUDIO_EXTENSIONS = ("wav", "flac")
METADATA_EXTENSION = "json"
REQUIRED_METADATA_FIELDS = ("text", "lang", "speaker")
SHARD_GLOB = "shard-*.tar"
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+$")

# The same split as webdataset's ``base_plus_ext``: key = name up to the first dot of the basename.
_BASE_PLUS_EXT = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")


def shard_name(index: int) -> str:
    """File name of shard ``index``: ``shard-000042.tar``."""
    return f"shard-{index:06d}.tar"


def split_member_name(name: str) -> tuple[str, str] | None:
    """``"a/hi_1.flac"`` -> ``("a/hi_1", "flac")``; None for a name without an extension."""
    m = _BASE_PLUS_EXT.match(name)
    return (m.group(1), m.group(2).lower()) if m else None


def validate_key(key: str) -> None:
    if not _KEY_RE.match(key):
        raise ValueError(f"key {key!r} must use only letters, digits, '_' and '-' (no dots)")


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Append ``data`` as a regular file with fixed metadata, so equal content gives equal bytes."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uname = info.gname = "maya"
    tar.addfile(info, io.BytesIO(data))


def metadata_bytes(text: str, lang: str, speaker: str, **extra: object) -> bytes:
    """The ``<key>.json`` member for one utterance."""
    record = {"text": text, "lang": lang, "speaker": speaker, **extra}
    return json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")
