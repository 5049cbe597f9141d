"""The header parsers agree with a full soundfile decode, and refuse what is not audio."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess

import numpy as np
import pytest
import soundfile as sf

from maya_asr.data.audio_header import AudioHeaderError, probe_audio, probe_bytes
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


def _counting_reader(data: bytes):
    """A ReadAt over ``data`` that records how many bytes were asked for."""
    asked = [0]

    def read_at(offset: int, n: int) -> bytes:
        asked[0] += n
        return data[offset : offset + n]

    return read_at, asked


@pytest.mark.parametrize("subtype", ["IMA_ADPCM", "MS_ADPCM", "GSM610", "ULAW", "ALAW", "FLOAT"])
def test_compressed_and_companded_wav_durations_match_soundfile_decode(subtype):
    # 3 s at 8 kHz: block_align-based counting made ADPCM/GSM clips ~0.003-0.009 s long
    buf = io.BytesIO()
    sf.write(buf, tone(3.0, 8000, seed=3), 8000, format="WAV", subtype=subtype)
    data = buf.getvalue()
    read_at, asked = _counting_reader(data)
    info = probe_audio(read_at, len(data))
    decoded, _ = sf.read(io.BytesIO(data))
    assert (info.sample_rate, info.channels, info.format) == (8000, 1, "wav")
    assert info.frames == len(decoded)
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert asked[0] < len(data) // 2  # header facts, not a read of every audio byte


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")
@pytest.mark.parametrize("encoding", ["ima-adpcm", "ms-adpcm", "gsm-full-rate"])
def test_sox_written_telephone_wavs_get_their_real_duration(tmp_path, encoding):
    path = tmp_path / f"{encoding}.wav"
    args = ["-r", "8000", "-c", "1", "-e", encoding, str(path), "synth", "3", "sine", "440"]
    subprocess.run(["sox", "-n", *args], check=True)
    data = path.read_bytes()
    info = probe_bytes(data)
    assert info.frames == len(sf.read(io.BytesIO(data))[0])
    assert info.duration == pytest.approx(3.0, abs=0.05)


def test_compressed_wav_soundfile_cannot_read_is_refused_with_its_format_tag():
    data = bytearray(encode(tone(0.5, 16000), 16000, "wav"))
    pos = data.index(b"fmt ")
    data[pos + 8 : pos + 10] = struct.pack("<H", 0x7777)  # a tag no decoder knows
    with pytest.raises(AudioHeaderError, match="0x7777"):
        probe_bytes(bytes(data))
