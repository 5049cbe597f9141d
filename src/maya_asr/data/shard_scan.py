"""Scan one raw tar shard into manifest records and rejects, reading headers only.

One sequential pass over the tar's member headers (:mod:`maya_asr.data.tar_headers` preads each
512-byte header and skips member data); for each key we ``os.pread`` the JSON member and the
first ``header_bytes`` of the audio member. Nothing is extracted and no audio is decoded, so a shard
costs a few KB of reads per utterance whatever its audio size.

Every problem becomes a reject ``{"tar", "key", "lang", "reason", "detail"}``; nothing raises
for bad input. Members before a truncation are kept.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from maya_asr.data import raw_format
from maya_asr.data.audio_header import AudioHeaderError, probe_audio
from maya_asr.data.config import DataConfig
from maya_asr.data.tar_headers import TarMember, TarWalk
from maya_asr.data.text_policy import (
    ABSURD_CHARS_PER_SECOND,
    EMPTY_TRANSCRIPT,
    WRONG_SCRIPT,
    check_rate,
    check_text,
    normalize_for,
)
from maya_asr.languages import LANGUAGES

# Reject reasons, in the order the summary table lists them.
UNREADABLE_TAR = "unreadable_tar"
TRUNCATED_TAR = "truncated_tar"
UNKNOWN_LANGUAGE = "unknown_language"
LANGUAGE_MISMATCH = "language_mismatch"
BAD_KEY = "bad_key"
DUPLICATE_KEY = "duplicate_key"
MISSING_AUDIO = "missing_audio"
MISSING_TRANSCRIPT = "missing_transcript"
NON_UTF8_TRANSCRIPT = "non_utf8_transcript"
BAD_METADATA = "bad_metadata"
CORRUPT_AUDIO = "corrupt_audio"
NOT_MONO = "not_mono"
NONPOSITIVE_DURATION = "nonpositive_duration"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
# EMPTY_TRANSCRIPT, WRONG_SCRIPT and ABSURD_CHARS_PER_SECOND come from text_policy
REASONS = (
    UNREADABLE_TAR,
    TRUNCATED_TAR,
    UNKNOWN_LANGUAGE,
    LANGUAGE_MISMATCH,
    BAD_KEY,
    DUPLICATE_KEY,
    MISSING_AUDIO,
    MISSING_TRANSCRIPT,
    NON_UTF8_TRANSCRIPT,
    BAD_METADATA,
    CORRUPT_AUDIO,
    NOT_MONO,
    NONPOSITIVE_DURATION,
    TOO_SHORT,
    TOO_LONG,
    EMPTY_TRANSCRIPT,
    WRONG_SCRIPT,
    ABSURD_CHARS_PER_SECOND,
)


class Reject(Exception):
    """Internal control flow: one key is rejected for ``reason`` (never escapes this module)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass
class ShardScan:
    """What one shard yields: accepted records and rejects, both in member order."""

    tar_path: str  # absolute path of the shard
    lang: str  # the shard's language folder name (may be unknown)
    records: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    readable: bool = True  # False when not even the first header could be read


class _ShardReader:
    """Groups a shard's members by key and turns each group into a record or a reject."""

    def __init__(self, fd: int, tar_path: str, folder_lang: str, cfg: DataConfig) -> None:
        self.fd, self.tar_path, self.folder_lang, self.cfg = fd, tar_path, folder_lang, cfg
        self.scan = ShardScan(tar_path, folder_lang)
        self.seen: set[str] = set()

    def reject(self, key: str, reason: str, detail: str) -> None:
        self.scan.rejects.append(
            {"tar": self.tar_path, "key": key, "lang": self.folder_lang, "reason": reason,
             "detail": detail}
        )  # fmt: skip

    def finish(self, key: str, members: list[tuple[str, TarMember]]) -> None:
        try:
            self.scan.records.append(self._record(key, members))
        except Reject as r:
            self.reject(key, r.reason, r.detail)

    def _metadata(self, info: TarMember) -> dict:
        raw = os.pread(self.fd, info.size, info.offset_data)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Reject(NON_UTF8_TRANSCRIPT, f"{info.name} is not UTF-8: {e}") from None
        try:
            meta = json.loads(text)
        except json.JSONDecodeError as e:
            raise Reject(BAD_METADATA, f"{info.name} is not JSON: {e}") from None
        if not isinstance(meta, dict):
            raise Reject(BAD_METADATA, f"{info.name} holds a {type(meta).__name__}, not an object")
        return meta

    def _record(self, key: str, members: list[tuple[str, TarMember]]) -> dict:
        if key in self.seen:
            raise Reject(DUPLICATE_KEY, "key appears again further down the shard")
        self.seen.add(key)
        try:
            raw_format.validate_key(key)
        except ValueError as e:
            raise Reject(BAD_KEY, str(e)) from None
        exts = [ext for ext, _ in members]
        audio = [(ext, m) for ext, m in members if ext in raw_format.AUDIO_EXTENSIONS]
        metas = [m for ext, m in members if ext == raw_format.METADATA_EXTENSION]
        if len(audio) > 1 or len(metas) > 1:
            raise Reject(DUPLICATE_KEY, f"key has members {exts}: one audio and one json expected")
        if not audio:
            raise Reject(MISSING_AUDIO, f"no .wav/.flac member (has {exts})")
        if not metas:
            raise Reject(MISSING_TRANSCRIPT, f"no .json member (has {exts})")
        meta = self._metadata(metas[0])
        text = meta.get("text")
        if not isinstance(text, str):
            raise Reject(MISSING_TRANSCRIPT, "metadata has no string 'text' field")
        lang = meta.get("lang")
        if lang not in LANGUAGES:
            raise Reject(UNKNOWN_LANGUAGE, f"metadata lang {lang!r} is not one of {LANGUAGES}")
        if lang != self.folder_lang:
            raise Reject(
                LANGUAGE_MISMATCH, f"metadata lang {lang!r} in folder {self.folder_lang!r}"
            )
        speaker = meta.get("speaker") or ""
        if not isinstance(speaker, str):
            speaker = str(speaker)

        _, info = audio[0]
        audio_end = info.offset_data + info.size
        if audio_end > self.file_size:
            raise Reject(TRUNCATED_TAR, f"{info.name} ends at byte {audio_end}, past the tar's end")
        head = os.pread(self.fd, min(info.size, self.cfg.manifest.header_bytes), info.offset_data)

        def read_at(offset: int, n: int) -> bytes:
            if offset + n <= len(head):
                return head[offset : offset + n]
            n = max(0, min(n, info.size - offset))
            return os.pread(self.fd, n, info.offset_data + offset)

        try:
            audio_info = probe_audio(read_at, info.size)
        except AudioHeaderError as e:
            raise Reject(CORRUPT_AUDIO, f"{info.name}: {e}") from None
        if audio_info.channels != 1:
            raise Reject(NOT_MONO, f"{info.name} has {audio_info.channels} channels")
        duration = audio_info.duration
        mcfg = self.cfg.manifest
        if duration <= 0:
            raise Reject(NONPOSITIVE_DURATION, f"{info.name} has {audio_info.frames} frames")
        if duration <= mcfg.min_duration_s:
            raise Reject(TOO_SHORT, f"{duration:.3f} s <= {mcfg.min_duration_s} s")
        if duration > mcfg.max_duration_s:
            raise Reject(TOO_LONG, f"{duration:.1f} s > {mcfg.max_duration_s} s")

        policy = self.cfg.text[lang]
        norm = normalize_for(text, policy)
        problem = check_text(norm, policy) or check_rate(norm, duration, policy)
        if problem:
            raise Reject(*problem)
        return {
            "key": key,  # first: merge reads it without parsing the line
            "audio_filepath": f"{self.tar_path}#{info.name}",
            "duration": round(duration, 6),
            "text": norm,
            "lang": lang,
            "speaker": speaker,
            "sample_rate": audio_info.sample_rate,
            "tar_path": self.tar_path,
            "tar_offset_data": info.offset_data,
            "tar_nbytes": info.size,
        }

    def _complete(self, group: list[tuple[str, TarMember]]) -> bool:
        """Audio and JSON both present and inside the file (the last group of a cut tar)."""
        exts = {ext for ext, _ in group}
        inside = all(m.offset_data + m.size <= self.file_size for _, m in group)
        return (
            inside
            and raw_format.METADATA_EXTENSION in exts
            and bool(exts & set(raw_format.AUDIO_EXTENSIONS))
        )

    def run(self) -> ShardScan:
        self.file_size = os.fstat(self.fd).st_size
        walk = TarWalk(self.fd, self.file_size)
        key, group = None, []
        for member in walk:
            split = raw_format.split_member_name(member.name)
            name_key, ext = split if split else (member.name, "")
            if name_key != key and group:
                self.finish(key, group)
                group = []
            key = name_key
            group.append((ext, member))
        if walk.position == 0 and not walk.ended_cleanly:
            self.scan.readable = False
            why = walk.error or "empty file"
            self.reject("", UNREADABLE_TAR, f"not a readable tar: {why}")
            return self.scan
        if walk.ended_cleanly or (group and self._complete(group)):
            if group:
                self.finish(key, group)
        elif group:
            self.reject(key, TRUNCATED_TAR, "the tar breaks off within this key's members")
        if not walk.ended_cleanly:
            why = walk.error or "no end-of-archive marker"
            self.reject(
                "",
                TRUNCATED_TAR,
                f"{why} (stopped at byte {walk.position}): later members are lost",
            )
        return self.scan


def scan_shard(tar_path: str, folder_lang: str, cfg: DataConfig) -> ShardScan:
    """Records and rejects of one shard; ``folder_lang`` is the name of its language folder."""
    tar_path = os.path.abspath(tar_path)
    if folder_lang not in LANGUAGES:
        scan = ShardScan(tar_path, folder_lang, readable=False)
        scan.rejects.append(
            {"tar": tar_path, "key": "", "lang": folder_lang, "reason": UNKNOWN_LANGUAGE,
             "detail": f"folder {folder_lang!r} is not one of {LANGUAGES}; shard not read"}
        )  # fmt: skip
        return scan
    try:
        fd = os.open(tar_path, os.O_RDONLY)
    except OSError as e:
        scan = ShardScan(tar_path, folder_lang, readable=False)
        scan.rejects.append(
            {"tar": tar_path, "key": "", "lang": folder_lang, "reason": UNREADABLE_TAR,
             "detail": str(e)}
        )  # fmt: skip
        return scan
    try:
        return _ShardReader(fd, tar_path, folder_lang, cfg).run()
    finally:
        os.close(fd)
