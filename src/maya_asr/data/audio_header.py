"""Sample rate, channels and duration of a WAV or FLAC member from its first bytes.

Why hand-written: libsndfile (soundfile) needs the whole member to report frames — given only a
header it clamps the frame count to the bytes it was handed — and reading every audio byte is
what makes a manifest pass slow. WAV's ``fmt``/``data`` chunks and FLAC's STREAMINFO block hold
everything we need in the first few hundred bytes, so the builder reads ~4 KB per member.
Anything these parsers do not recognise (ID3-tagged FLAC, FLAC without a sample count) falls
back to soundfile on the member's full bytes, and what soundfile cannot read is refused: the
loader decodes with soundfile too.

Only uncompressed WAV (PCM, float, A-law, µ-law) has ``frames = data_size / block_align``. For a
compressed format tag (IMA/MS-ADPCM, GSM 6.10, …) one block holds hundreds of samples, so the
frame count comes from soundfile reading through a pread-backed file object: libsndfile seeks and
reads only the chunks it needs, and it reports the count its own decode will produce.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

# A reader of ``n`` bytes at member-relative ``offset`` (short reads at the end are fine).
ReadAt = Callable[[int, int], bytes]

MAX_SAMPLE_RATE = 768_000
_WAV_SIZE_UNKNOWN = 0xFFFFFFFF  # streaming writers leave the data size unset
# WAV format tags whose frames are data_size / block_align: PCM, IEEE float, A-law, µ-law.
_UNCOMPRESSED_TAGS = frozenset({0x0001, 0x0003, 0x0006, 0x0007})
_TAG_EXTENSIBLE = 0xFFFE  # the real tag is the first two bytes of the SubFormat GUID


class AudioHeaderError(ValueError):
    """The member's bytes are not decodable audio; the message says why."""


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int  # native rate in Hz
    channels: int  # interleaved channels
    frames: int  # samples per channel
    format: str  # "wav" or "flac" (by content, not by member name)

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def _check(info: AudioInfo) -> AudioInfo:
    if not 0 < info.sample_rate <= MAX_SAMPLE_RATE:
        raise AudioHeaderError(f"implausible sample rate {info.sample_rate} Hz")
    if info.channels < 1:
        raise AudioHeaderError(f"{info.channels} channels")
    return info


def parse_wav(read_at: ReadAt, size: int) -> AudioInfo:
    """Walk the RIFF chunks (reading only chunk headers) up to ``data``."""
    head = read_at(0, 12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        raise AudioHeaderError("not a RIFF/WAVE file")
    if head[:4] == b"RIFX":
        raise AudioHeaderError("big-endian RIFX WAV is not supported")
    pos, fmt = 12, None
    while pos + 8 <= size:
        chunk_id, chunk_size = struct.unpack("<4sI", read_at(pos, 8))
        if chunk_id == b"fmt ":
            body = read_at(pos + 8, min(chunk_size, 40))
            if len(body) < 16:
                raise AudioHeaderError("fmt chunk is cut short")
            tag, channels, rate, _rate, block_align, _bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _TAG_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = (tag, channels, rate, block_align)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioHeaderError("data chunk before fmt chunk")
            tag, channels, rate, block_align = fmt
            if block_align == 0:
                raise AudioHeaderError("fmt chunk has block_align 0")
            available = size - (pos + 8)
            if chunk_size == _WAV_SIZE_UNKNOWN:
                chunk_size = available
            elif chunk_size > available:
                raise AudioHeaderError(
                    f"data chunk claims {chunk_size} bytes but only {available} follow: truncated"
                )
            if tag not in _UNCOMPRESSED_TAGS:
                return _compressed_wav_info(read_at, size, tag)
            return _check(AudioInfo(rate, channels, chunk_size // block_align, "wav"))
        pos += 8 + chunk_size + (chunk_size & 1)
    raise AudioHeaderError("no data chunk")


def parse_flac(read_at: ReadAt, size: int) -> AudioInfo | None:
    """STREAMINFO is the first metadata block; None when it does not state the sample count."""
    head = read_at(0, 42)
    if len(head) < 42 or head[:4] != b"fLaC":
        raise AudioHeaderError("not a FLAC stream")
    if head[4] & 0x7F != 0 or int.from_bytes(head[5:8], "big") != 34:
        raise AudioHeaderError("first FLAC metadata block is not STREAMINFO")
    # STREAMINFO bytes 10..17 (after min/max block and frame sizes): 20 bits sample rate,
    # 3 bits channels-1, 5 bits bits-per-sample-1, 36 bits total samples.
    packed = int.from_bytes(head[18:26], "big")
    rate = packed >> 44
    channels = ((packed >> 41) & 0x7) + 1
    frames = packed & ((1 << 36) - 1)
    if frames == 0:
        return None  # unknown length: only a decode can tell
    return _check(AudioInfo(rate, channels, frames, "flac"))


class _ReadAtFile(io.RawIOBase):
    """A seekable read-only file over a :data:`ReadAt`, so soundfile reads only what it needs."""

    def __init__(self, read_at: ReadAt, size: int):
        self._read_at, self._size, self._pos = read_at, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), self._size - self._pos))
        data = self._read_at(self._pos, n) if n else b""
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _compressed_wav_info(read_at: ReadAt, size: int, tag: int) -> AudioInfo:
    try:
        info = _soundfile_info(_ReadAtFile(read_at, size))
    except AudioHeaderError as e:
        raise AudioHeaderError(f"compressed WAV (format tag 0x{tag:04x}): {e}") from None
    return AudioInfo(info.sample_rate, info.channels, info.frames, "wav")


def _soundfile_info(source: bytes | io.RawIOBase) -> AudioInfo:
    import soundfile as sf

    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with sf.SoundFile(source) as f:
            rate, channels, fmt = f.samplerate, f.channels, f.format.lower()
            frames = f.frames
    except (RuntimeError, sf.LibsndfileError, TypeError) as e:
        raise AudioHeaderError(f"soundfile cannot read it: {e}") from None
    if not 0 <= frames < 2**40:
        # libsndfile's "length unknown": soundfile.read (what the loader calls) fails on it too
        raise AudioHeaderError("the stream does not state its length; re-encode it")
    return _check(AudioInfo(rate, channels, frames, fmt))


def probe_audio(read_at: ReadAt, size: int) -> AudioInfo:
    """Header facts of an audio member of ``size`` bytes; ``AudioHeaderError`` when unreadable."""
    if size < 12:
        raise AudioHeaderError(f"only {size} bytes")
    magic = read_at(0, 4)
    if magic in (b"RIFF", b"RIFX"):
        return parse_wav(read_at, size)
    if magic == b"fLaC":
        info = parse_flac(read_at, size)
        if info is not None:
            return info
    elif magic[:3] != b"ID3":
        raise AudioHeaderError(f"neither WAV nor FLAC (starts with {magic!r})")
    return _soundfile_info(read_at(0, size))


def probe_bytes(data: bytes) -> AudioInfo:
    """:func:`probe_audio` over bytes already in memory."""
    return probe_audio(lambda offset, n: data[offset : offset + n], len(data))
