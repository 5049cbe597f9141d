"""One shard in, records and rejects out: every reject reason, truncation, pread slices."""

from __future__ import annotations

import io
import os
from dataclasses import replace
from pathlib import Path

import pytest
import soundfile as sf

from maya_asr.data import shard_scan as ss
from maya_asr.data.config import load_data_config
from maya_asr.data.raw_format import metadata_bytes
from maya_asr.data.shard_scan import scan_shard
from maya_asr.data.synthetic import SyntheticUtterance, encode, make_utterances, tone, write_tar

CFG = load_data_config(Path(__file__).parents[2] / "configs" / "data" / "prod.yaml")
HI = "नमस्ते दुनिया आज"


def _utt(key: str, **kw) -> SyntheticUtterance:
    return SyntheticUtterance(key=key, lang=kw.pop("lang", "hi"), text=kw.pop("text", HI), **kw)


def _reasons(scan) -> dict[str, str]:
    return {r["key"]: r["reason"] for r in scan.rejects}


def test_clean_shard_is_all_accepted_and_normalised(tmp_path):
    utts = make_utterances("hi", 6)
    path = write_tar(tmp_path / "hi" / "shard-000000.tar", [m for u in utts for m in u.members()])
    scan = scan_shard(str(path), "hi", CFG)
    assert scan.rejects == []
    assert [r["key"] for r in scan.records] == [u.key for u in utts]
    for rec, u in zip(scan.records, utts, strict=True):
        assert rec["duration"] == pytest.approx(u.duration_s, abs=1e-4)
        assert rec["sample_rate"] == u.sample_rate and rec["speaker"] == u.speaker
        assert rec["audio_filepath"] == f"{path}#{u.key}.{u.fmt}"
        assert rec["tar_path"] == str(path) and os.path.isabs(rec["tar_path"])


def test_pread_slice_decodes_to_the_audio_described(tmp_path):
    utts = make_utterances("ta", 5) + make_utterances("ta", 3, start=5)
    path = write_tar(tmp_path / "ta" / "shard-000000.tar", [m for u in utts for m in u.members()])
    scan = scan_shard(str(path), "ta", CFG)
    fd = os.open(path, os.O_RDONLY)
    try:
        for rec, u in zip(scan.records, utts, strict=True):
            audio, sr = sf.read(io.BytesIO(os.pread(fd, rec["tar_nbytes"], rec["tar_offset_data"])))
            assert sr == rec["sample_rate"] == u.sample_rate
            assert len(audio) / sr == pytest.approx(rec["duration"], abs=1e-6)
            assert abs(audio - u.audio()).max() < 1e-3  # 16-bit PCM of the same tone
    finally:
        os.close(fd)


def test_text_is_normalised_with_the_language_policy(tmp_path):
    raw = "  Hello,   WORLD!  it's  fine. "
    u = _utt("en_1", lang="en", text=raw, duration_s=2.0)
    scan = scan_shard(str(write_tar(tmp_path / "en" / "s.tar", u.members())), "en", CFG)
    assert scan.records[0]["text"] == "hello world it's fine"
    d = "नमस्ते।  दुनिया॥"
    u = _utt("hi_1", text=d)
    scan = scan_shard(str(write_tar(tmp_path / "hi" / "s.tar", u.members())), "hi", CFG)
    assert scan.records[0]["text"] == "नमस्ते दुनिया"


def test_every_reject_reason_is_named_and_good_neighbours_survive(tmp_path):
    good = _utt("hi_good")
    stereo = encode(tone(1.0, 16000).repeat(2).reshape(-1, 2), 16000, "flac")
    wav = _utt("x").members()[0][1]
    members = [
        *_utt("hi_corrupt").members()[1:], ("hi_corrupt.flac", b"fLaC not really"),
        ("hi_zero.wav", encode(tone(0.0, 16000), 16000, "wav")),
        ("hi_zero.json", metadata_bytes(HI, "hi", "s")),
        ("hi_short.wav", encode(tone(0.02, 16000), 16000, "wav")),
        ("hi_short.json", metadata_bytes(HI, "hi", "s")),
        ("hi_notext.flac", wav),
        ("hi_emptytext.flac", wav), ("hi_emptytext.json", metadata_bytes(" ।, ", "hi", "s")),
        ("hi_nottext.flac", wav), ("hi_nottext.json", b'{"lang": "hi", "speaker": "s"}'),
        ("hi_latin1.flac", wav), ("hi_latin1.json", '{"text": "café"}'.encode("latin-1")),
        ("hi_badjson.flac", wav), ("hi_badjson.json", b"{not json"),
        ("hi_script.flac", wav), ("hi_script.json", metadata_bytes("hello there", "hi", "s")),
        ("hi_lang.flac", wav), ("hi_lang.json", metadata_bytes(HI, "xx", "s")),
        ("hi_mismatch.flac", wav), ("hi_mismatch.json", metadata_bytes(HI, "mr", "s")),
        ("hi_fast.flac", encode(tone(0.2, 16000), 16000, "flac")),
        ("hi_fast.json", metadata_bytes(HI * 3, "hi", "s")),
        ("hi_slow.flac", encode(tone(30.0, 8000), 8000, "flac")),
        ("hi_slow.json", metadata_bytes("क", "hi", "s")),
        ("hi_stereo.flac", stereo), ("hi_stereo.json", metadata_bytes(HI, "hi", "s")),
        ("hi_noaudio.json", metadata_bytes(HI, "hi", "s")),
        ("hi_two.flac", wav), ("hi_two.wav", wav), ("hi_two.json", metadata_bytes(HI, "hi", "s")),
        ("hi@bad.flac", wav), ("hi@bad.json", metadata_bytes(HI, "hi", "s")),
        *good.members(),
        ("hi_good.json", metadata_bytes(HI, "hi", "s")),  # the key again, not adjacent
    ]  # fmt: skip
    # hi_good's second .json is adjacent to its first group: make a truly later repeat too
    members += [*_utt("hi_other").members(), *_utt("hi_good").members()]
    path = write_tar(tmp_path / "hi" / "shard-000000.tar", members)
    cfg = replace(CFG, manifest=replace(CFG.manifest, min_duration_s=0.05))
    scan = scan_shard(str(path), "hi", cfg)
    reasons = _reasons(scan)
    assert reasons == {
        "hi_corrupt": ss.CORRUPT_AUDIO,
        "hi_zero": ss.NONPOSITIVE_DURATION,
        "hi_short": ss.TOO_SHORT,
        "hi_notext": ss.MISSING_TRANSCRIPT,
        "hi_emptytext": ss.EMPTY_TRANSCRIPT,
        "hi_nottext": ss.MISSING_TRANSCRIPT,
        "hi_latin1": ss.NON_UTF8_TRANSCRIPT,
        "hi_badjson": ss.BAD_METADATA,
        "hi_script": ss.WRONG_SCRIPT,
        "hi_lang": ss.UNKNOWN_LANGUAGE,
        "hi_mismatch": ss.LANGUAGE_MISMATCH,
        "hi_fast": ss.ABSURD_CHARS_PER_SECOND,
        "hi_slow": ss.ABSURD_CHARS_PER_SECOND,
        "hi_stereo": ss.NOT_MONO,
        "hi_noaudio": ss.MISSING_AUDIO,
        "hi_two": ss.DUPLICATE_KEY,
        "hi@bad": ss.BAD_KEY,
        "hi_good": ss.DUPLICATE_KEY,
    }
    assert [r["key"] for r in scan.records] == ["hi_other"]
    assert all(r["detail"] and r["tar"] == str(path) for r in scan.rejects)


def test_too_long_clip_is_rejected(tmp_path):
    cfg = replace(CFG, manifest=replace(CFG.manifest, max_duration_s=1.0))
    u = _utt("hi_long", duration_s=1.5)
    scan = scan_shard(str(write_tar(tmp_path / "hi" / "s.tar", u.members())), "hi", cfg)
    assert _reasons(scan) == {"hi_long": ss.TOO_LONG}


def _truncated(tmp_path, cut_in: str):
    utts = make_utterances("hi", 4)
    path = write_tar(tmp_path / "hi" / "shard-000000.tar", [m for u in utts for m in u.members()])
    data = path.read_bytes()
    import tarfile

    with tarfile.open(path) as tar:
        m = tar.getmember(f"{utts[2].key}.{utts[2].fmt}")
        last = tar.getmembers()[-1]
    end_of_members = last.offset_data + -(-last.size // 512) * 512
    cut = {"data": m.offset_data + m.size // 2, "header": m.offset + 100, "end": end_of_members}
    path.write_bytes(data[: cut[cut_in]])
    return scan_shard(str(path), "hi", CFG), utts


@pytest.mark.parametrize("cut_in", ["data", "header"])
def test_truncated_tar_keeps_members_before_the_damage(tmp_path, cut_in):
    scan, utts = _truncated(tmp_path, cut_in)
    assert [r["key"] for r in scan.records] == [utts[0].key, utts[1].key]
    assert {r["reason"] for r in scan.rejects} == {ss.TRUNCATED_TAR}
    assert scan.readable


def test_tar_without_end_marker_is_flagged_but_complete_members_kept(tmp_path):
    scan, utts = _truncated(tmp_path, "end")
    assert [r["key"] for r in scan.records] == [u.key for u in utts]
    assert [(r["key"], r["reason"]) for r in scan.rejects] == [("", ss.TRUNCATED_TAR)]


def test_unreadable_and_unknown_language_shards(tmp_path):
    junk = tmp_path / "hi" / "shard-000000.tar"
    junk.parent.mkdir()
    junk.write_bytes(b"\x01" * 2000)
    scan = scan_shard(str(junk), "hi", CFG)
    assert not scan.readable and _reasons(scan) == {"": ss.UNREADABLE_TAR}
    u = _utt("xx_1")
    scan = scan_shard(str(write_tar(tmp_path / "xx" / "s.tar", u.members())), "xx", CFG)
    assert not scan.readable and _reasons(scan) == {"": ss.UNKNOWN_LANGUAGE}


def test_demo_corpus_shards_are_clean(tiny_corpus):
    from maya_asr.data.manifest import discover_shards

    tasks = discover_shards(tiny_corpus)
    scans = [scan_shard(t.tar_path, t.lang, CFG) for t in tasks]
    assert sum(len(s.records) for s in scans) == 36
    assert [r for s in scans for r in s.rejects] == []
