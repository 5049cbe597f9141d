"""TarOffsetReader against the demo shards, synthetic shards and truncated/corrupt ones."""

from __future__ import annotations

import io
import multiprocessing as mp
import pickle
import tarfile

import numpy as np
import pytest
import soundfile as sf
from loader_factories import audio_bytes, corpus_shards, index_rows, synthetic_shard, write_shard

from lf_asr.data.tar_offset_reader import (
    AudioDecodeError,
    ReaderConfig,
    ShardMissingError,
    ShortReadError,
    TarHeaderMismatchError,
    TarOffsetReader,
    TarReadError,
    parse_tar_header,
    to_mono_16k,
)


def _extract(row) -> bytes:
    with tarfile.open(row["tar_path"]) as tar:
        return tar.extractfile(tar.getmember(f"{row['key']}.{_ext(row)}")).read()


def _ext(row) -> str:
    with tarfile.open(row["tar_path"]) as tar:
        return next(
            m.name.split(".", 1)[1]
            for m in tar
            if m.name.startswith(row["key"] + ".") and not m.name.endswith(".json")
        )


def test_reads_every_demo_clip_like_tarfile_extraction(tiny_corpus):
    rows = index_rows(corpus_shards(tiny_corpus))
    assert len(rows) == 36 and {r["sample_rate"] for r in rows} > {16000}
    reader = TarOffsetReader()
    for row in rows:
        got = reader.read(row["tar_path"], row["tar_offset_data"], row["tar_nbytes"], row["key"])
        ref, rate = sf.read(io.BytesIO(_extract(row)), dtype="float32")
        expected = to_mono_16k(ref, rate, 16000, "HQ")
        assert got.dtype == np.float32 and got.ndim == 1
        np.testing.assert_array_equal(got, expected)
        assert abs(len(got) - row["duration_s"] * 16000) <= 1


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_resamples_and_downmixes_to_16k_mono(tmp_path, rate):
    t = np.arange(rate) / rate  # 1 s
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], 1) * 0.5
    write_shard(tmp_path / "s.tar", [("k.flac", audio_bytes(stereo, rate, "flac"))])
    (row,) = _rows_of(tmp_path / "s.tar")
    audio = TarOffsetReader().read(*row)
    assert audio.shape == (16000,)
    # A 440 Hz tone survives resampling: its spectrum peaks at 440 Hz.
    assert abs(np.argmax(np.abs(np.fft.rfft(audio))) - 440) <= 1


def _rows_of(shard):
    with tarfile.open(shard) as tar:
        return [(str(shard), m.offset_data, m.size, m.name.split(".")[0]) for m in tar]


def test_truncated_shard_raises_short_read_naming_tar_offset_key(tmp_path):
    synthetic_shard(tmp_path / "s.tar", "hi", 3)
    rows = [r for r in _rows_of(tmp_path / "s.tar")]
    last = rows[-2]  # the last audio member (the last member is its JSON)
    data = (tmp_path / "s.tar").read_bytes()
    (tmp_path / "s.tar").write_bytes(data[: last[1] + last[2] // 2])
    with pytest.raises(ShortReadError) as e:
        TarOffsetReader().read(*last)
    assert str(tmp_path / "s.tar") in str(e.value) and str(last[1]) in str(e.value)
    assert last[3] in str(e.value) and e.value.key == last[3] and e.value.offset == last[1]


def test_missing_shard_wrong_offset_and_corrupt_audio_raise_typed_errors(tmp_path):
    synthetic_shard(tmp_path / "s.tar", "hi", 2)
    tar_path, off, size, key = _rows_of(tmp_path / "s.tar")[0]
    reader = TarOffsetReader()
    with pytest.raises(ShardMissingError):
        reader.read(str(tmp_path / "nope.tar"), off, size, key)
    with pytest.raises(TarHeaderMismatchError, match="rebuild"):
        reader.read(tar_path, off + 512, size, key)  # inside the data: no header there
    with pytest.raises(TarHeaderMismatchError, match="bytes"):
        reader.read(tar_path, off, size - 1, key)
    with pytest.raises(TarHeaderMismatchError, match="not 'other'"):
        reader.read(tar_path, off, size, "other")
    write_shard(tmp_path / "bad.tar", [("x.wav", b"RIFF" + bytes(200))])
    with pytest.raises(AudioDecodeError, match="cannot decode"):
        reader.read(*_rows_of(tmp_path / "bad.tar")[0])


def test_keys_with_folders_match_their_members(tmp_path):
    synthetic = audio_bytes(np.zeros(1600, np.float32), 16000)
    write_shard(tmp_path / "s.tar", [("part1/hi_7.wav", synthetic)])
    tar_path, off, size, _ = _rows_of(tmp_path / "s.tar")[0]
    reader = TarOffsetReader()
    for key in ("part1/hi_7", "hi_7"):
        assert reader.read(tar_path, off, size, key).shape == (1600,)
    with pytest.raises(TarHeaderMismatchError):
        reader.read(tar_path, off, size, "part2/hi_7")


def test_header_check_can_be_skipped_for_headerless_ranges(tmp_path):
    synthetic_shard(tmp_path / "s.tar", "hi", 1)
    tar_path, off, size, key = _rows_of(tmp_path / "s.tar")[0]
    raw = TarOffsetReader(ReaderConfig(verify_header=False)).read_bytes(tar_path, off, size, key)
    assert raw == (tmp_path / "s.tar").read_bytes()[off : off + size]


def test_parse_tar_header_reads_name_size_and_checksum(tmp_path):
    write_shard(tmp_path / "s.tar", [("dir/abc.wav", b"x" * 777)])
    block = (tmp_path / "s.tar").read_bytes()[:512]
    assert parse_tar_header(block) == ("dir/abc.wav", 777, True)
    broken = block[:150] + b"9" + block[151:]
    assert parse_tar_header(broken)[2] is False


def test_open_files_stay_within_the_lru_bound(tmp_path):
    shards = []
    for i in range(5):
        synthetic_shard(tmp_path / f"s{i}.tar", "hi", 1, seed=i)
        shards.append(_rows_of(tmp_path / f"s{i}.tar")[0])
    reader = TarOffsetReader(ReaderConfig(max_open_files=2))
    for row in shards * 2:
        reader.read(*row)
        assert reader.num_open <= 2
    reader.close()
    assert reader.num_open == 0


def test_pickles_without_handles_and_errors_keep_their_fields(tmp_path):
    synthetic_shard(tmp_path / "s.tar", "hi", 1)
    row = _rows_of(tmp_path / "s.tar")[0]
    reader = TarOffsetReader(ReaderConfig(max_open_files=3))
    first = reader.read(*row)
    clone = pickle.loads(pickle.dumps(reader))
    assert clone.num_open == 0 and clone.config == reader.config
    np.testing.assert_array_equal(clone.read(*row), first)
    err = pickle.loads(pickle.dumps(ShortReadError("a.tar", 1536, "k1", "cut")))
    assert isinstance(err, TarReadError) and (err.tar_path, err.offset, err.key) == (
        "a.tar",
        1536,
        "k1",
    )


def _read_in_child(args):
    reader, row = args
    inherited = reader.num_open  # the parent's descriptors came along with fork ...
    audio = reader.read(*row)
    return inherited, reader._pid, float(audio.sum())


def test_reopens_its_files_after_fork(tmp_path):
    synthetic_shard(tmp_path / "s.tar", "hi", 1)
    row = _rows_of(tmp_path / "s.tar")[0]
    reader = TarOffsetReader()
    expected = float(reader.read(*row).sum())
    global _FORKED_READER
    _FORKED_READER = reader
    with mp.get_context("fork").Pool(1) as pool:
        inherited, pid, total = pool.apply(_read_forked, (row,))
    assert inherited == 1 and pid != reader._pid and total == expected
    assert reader.num_open == 1  # ... and the parent's stay open and untouched


_FORKED_READER = None


def _read_forked(row):
    return _read_in_child((_FORKED_READER, row))
