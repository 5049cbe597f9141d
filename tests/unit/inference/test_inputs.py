"""Inputs: manifest rows of both kinds, folders, checks that name the row, audio loading."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import soundfile as sf

from maya_asr.inference.inputs import (
    InputError,
    files_to_inputs,
    folder_to_inputs,
    read_audio,
    read_manifest,
)


def write_manifest(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def sine(rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


def test_tar_offset_rows_read_the_member_bytes(corpus_rows, corpus_manifest):
    items = read_manifest(corpus_manifest)
    assert len(items) == len(corpus_rows) == 36
    item = items[0]
    assert item.text == corpus_rows[0]["text"] and item.language == corpus_rows[0]["lang"]
    with tarfile.open(item.path) as tar:
        member = next(m for m in tar if m.offset_data == item.offset)
        expected, rate = sf.read(io.BytesIO(tar.extractfile(member).read()), dtype="float32")
    audio = read_audio(item, rate)
    np.testing.assert_array_equal(audio, expected)


def test_pipeline_val_rows_read_the_tar_member_not_the_reference_path(corpus_rows, tmp_path):
    # build_index writes both: a readable-by-people "shard.tar#key.flac" and the byte range.
    row = dict(corpus_rows[0])
    row["audio_filepath"] = f"{row['tar_path']}#{row.get('key', 'k')}.flac"
    (item,) = read_manifest(write_manifest(tmp_path / "val.jsonl", [row]))
    assert item.path == row["tar_path"] and item.offset == row["tar_offset_data"]


def test_nemo_rows_resolve_relative_paths_against_the_manifest(tmp_path):
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "a.wav", sine(16000, 0.5), 16000)
    manifest = write_manifest(
        tmp_path / "m.jsonl", [{"audio_filepath": "audio/a.wav", "text": "x", "language": "hi"}]
    )
    (item,) = read_manifest(manifest)
    assert item.path == str(tmp_path / "audio" / "a.wav")
    assert item.language == "hi" and item.row["text"] == "x"


def test_nemo_segment_rows_read_only_their_segment(tmp_path):
    audio = np.arange(16000 * 3, dtype=np.float32) / (16000 * 3)  # a ramp: position is visible
    sf.write(tmp_path / "long.wav", audio, 16000, subtype="FLOAT")
    row = {"audio_filepath": "long.wav", "offset": 1.0, "duration": 0.5, "text": "x"}
    (item,) = read_manifest(write_manifest(tmp_path / "m.jsonl", [row]))
    segment = read_audio(item, 16000)
    np.testing.assert_array_equal(segment, audio[16000:24000])


def test_missing_files_fail_naming_the_row(tmp_path):
    sf.write(tmp_path / "ok.wav", sine(16000, 0.2), 16000)
    manifest = write_manifest(
        tmp_path / "m.jsonl",
        [
            {"audio_filepath": "ok.wav"},
            {"audio_filepath": "gone.wav"},
            {"tar_path": "nowhere.tar", "tar_offset_data": 512, "tar_nbytes": 10},
        ],
    )
    with pytest.raises(InputError) as err:
        read_manifest(manifest)
    msg = str(err.value)
    assert "2 input(s)" in msg
    assert f"{manifest}:2" in msg and "gone.wav" in msg
    assert f"{manifest}:3" in msg and "nowhere.tar" in msg
    assert f"{manifest}:1" not in msg


def test_tar_range_past_the_end_is_reported(corpus_rows, tmp_path):
    row = dict(corpus_rows[0], tar_offset_data=10**9)
    with pytest.raises(InputError, match=r"m\.jsonl:1: bytes .* past the end"):
        read_manifest(write_manifest(tmp_path / "m.jsonl", [row]))


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{not json", r"m\.jsonl:1: not valid JSON"),
        ('{"text": "no audio"}', r"m\.jsonl:1: a row needs 'audio_filepath'"),
        ('{"tar_path": "x.tar", "tar_offset_data": -1, "tar_nbytes": 5}', "must be integers"),
    ],
)
def test_malformed_rows_name_the_line(tmp_path, line, match):
    path = tmp_path / "m.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=match):
        read_manifest(path)


def test_any_rate_and_channel_count_becomes_mono_at_the_model_rate(tmp_path):
    sf.write(tmp_path / "stereo44k.flac", sine(44100, 1.0, channels=2), 44100)
    sf.write(tmp_path / "mono8k.wav", sine(8000, 1.0), 8000)
    items = folder_to_inputs(tmp_path)
    assert [p.path.rsplit("/", 1)[1] for p in items] == ["mono8k.wav", "stereo44k.flac"]
    for item in items:
        audio = read_audio(item, 16000)
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert len(audio) == pytest.approx(16000, abs=2)
        # a 440 Hz tone survives resampling: its spectrum peaks at 440 Hz
        spectrum = np.abs(np.fft.rfft(audio))
        assert np.argmax(spectrum) * 16000 / len(audio) == pytest.approx(440, abs=2)


def test_undecodable_audio_names_the_input(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    (item,) = files_to_inputs([bad])
    with pytest.raises(InputError, match=r"bad\.wav: cannot decode"):
        read_audio(item, 16000)


def test_files_and_folders_must_exist(tmp_path):
    with pytest.raises(InputError, match=r"x\.wav: audio file .* does not exist"):
        files_to_inputs([tmp_path / "x.wav"])
    with pytest.raises(InputError, match="no audio files"):
        folder_to_inputs(tmp_path)
