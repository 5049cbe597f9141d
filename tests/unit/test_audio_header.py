"""The header parsers agree with a full soundfile decode, and refuse what is not audio."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from maya_asr.data.audio_header import AudioHeaderError, probe_bytes
from maya_asr.data.synthetic import encode, tone


@pytest.mark.parametrize("fmt", ["wav", "flac"])
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100])
def test_header_matches_full_decode(fmt, rate):
    data = encode(tone(1.234, rate, seed=rate), rate, fmt)
    info = probe_bytes(data)
    audio, sr = sf.read(io.BytesIO(data))
    assert (info.sample_rate, info.channels, info.frames, info.format) == (rate, 1, len(audio), fmt)
    assert info.duration == pytest.approx(len(audio) / sr)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_stereo_channels_reported(fmt):
    audio = np.stack([tone(0.5, 16000, 1), tone(0.5, 16000, 2)], axis=1)
    info = probe_bytes(encode(audio, 16000, fmt))
    assert (info.channels, info.frames) == (2, 8000)


def _wav_with_list_chunk(frames: int) -> bytes:
    """A WAV whose data chunk comes after a large LIST chunk (past a small header window)."""
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    junk = b"x" * 5001  # odd size: RIFF pads it to even
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
        + b"LIST" + struct.pack("<I", len(junk)) + junk + b"\0"
        + b"data" + struct.pack("<I", frames * 2) + b"\0\0" * frames
    )  # fmt: skip
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_wav_chunks_are_walked_past_the_header_window():
    data = _wav_with_list_chunk(frames=1600)
    assert probe_bytes(data).frames == 1600
    assert sf.info(io.BytesIO(data)).frames == 1600


def test_wav_with_unset_data_size_counts_the_bytes_present():
    data = bytearray(encode(tone(0.5, 16000), 16000, "wav"))
    pos = data.index(b"data")
    data[pos + 4 : pos + 8] = struct.pack("<I", 0xFFFFFFFF)
    assert probe_bytes(bytes(data)).frames == 8000


def test_wav_cut_short_is_refused():
    data = encode(tone(0.5, 16000), 16000, "wav")
    with pytest.raises(AudioHeaderError, match="truncated"):
        probe_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "data", [b"", b"hello world, not audio at all", b"RIFF\0\0\0\0WAVEjunk", b"fLaC" + b"\xff" * 60]
)
def test_garbage_is_refused(data):
    with pytest.raises(AudioHeaderError):
        probe_bytes(data)


def test_flac_without_sample_count_is_refused_like_soundfile_refuses_it():
    data = bytearray(encode(tone(0.75, 16000), 16000, "flac"))
    # zero the 36-bit total-samples field of STREAMINFO (low nibble of byte 21 + bytes 22..25)
    data[21] &= 0xF0
    data[22:26] = b"\0\0\0\0"
    with pytest.raises(AudioHeaderError, match="length"):
        probe_bytes(bytes(data))
