"""Manifest building over many shards: resume, slices + merge, cross-shard duplicates, exits."""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from maya_asr.data import manifest as mf
from maya_asr.data.config import load_data_config
from maya_asr.data.synthetic import make_utterances, write_tar, write_utterances

REPO = Path(__file__).parents[2]
PROD = REPO / "configs" / "data" / "prod.yaml"
CFG = load_data_config(PROD)


def _corpus(root: Path) -> list[mf.ShardTask]:
    for lang in ("hi", "en", "ta"):
        for s in range(2):
            write_utterances(
                root / lang / f"shard-{s:06d}.tar", make_utterances(lang, 4, start=4 * s)
            )
    return mf.discover_shards(root)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_build_and_merge_writes_every_utterance_once_in_language_order(tmp_path):
    tasks = _corpus(tmp_path / "raw")
    out = tmp_path / "out"
    mf.build_parts(tasks, out, CFG, workers=2, progress=False)
    summary = mf.merge_parts(tasks, out)
    rows = _lines(out / mf.MANIFEST_NAME)
    assert [r["lang"] for r in rows] == ["hi"] * 8 + ["ta"] * 8 + ["en"] * 8  # LANGUAGES order
    assert len({(r["lang"], r["key"]) for r in rows}) == 24
    assert summary["accepted"] == 24 and summary["rejected"] == 0
    assert summary["hours"] == pytest.approx(sum(r["duration"] for r in rows) / 3600, abs=1e-4)
    for field in ("audio_filepath", "duration", "text", "lang", "speaker", "key", "sample_rate",
                  "tar_path", "tar_offset_data", "tar_nbytes"):  # fmt: skip
        assert all(field in r for r in rows)


def test_parts_resume_and_redo_when_tar_or_config_changes(tmp_path):
    tasks = _corpus(tmp_path / "raw")
    out = tmp_path / "out"
    assert mf.build_parts(tasks, out, CFG, progress=False)["scanned"] == 6
    assert mf.build_parts(tasks, out, CFG, progress=False)["scanned"] == 0  # all current
    # a shard rewritten after its part (new data arrived) is rescanned, and only it
    write_utterances(tasks[0].tar_path, make_utterances("hi", 5, start=100))
    future = os.stat(mf.part_paths(out, tasks[0])[2]).st_mtime + 10
    os.utime(tasks[0].tar_path, (future, future))
    assert mf.build_parts(tasks, out, CFG, progress=False)["scanned"] == 1
    # another text policy makes every part stale
    text = {k: replace(v, max_chars_per_s=25.0) for k, v in CFG.text.items()}
    other = replace(CFG, text=text)
    assert mf.config_fingerprint(other) != mf.config_fingerprint(CFG)
    assert mf.build_parts(tasks, out, other, progress=False)["scanned"] == 6
    assert mf.build_parts(tasks, out, other, force=True, progress=False)["scanned"] == 6


def test_slices_then_merge_equal_one_run(tmp_path):
    tasks = _corpus(tmp_path / "raw")
    one, many = tmp_path / "one", tmp_path / "many"
    mf.build_parts(tasks, one, CFG, progress=False)
    mf.merge_parts(tasks, one)
    slices = [mf.select_slice(tasks, i, 4) for i in range(4)]
    assert sorted(t.tar_path for s in slices for t in s) == sorted(t.tar_path for t in tasks)
    with pytest.raises(ValueError, match="--merge-only"):
        mf.build_parts(slices[0], many, CFG, progress=False)
        mf.merge_parts(tasks, many)
    for s in slices[1:]:
        mf.build_parts(s, many, CFG, progress=False)
    mf.merge_parts(tasks, many)
    assert (one / mf.MANIFEST_NAME).read_text() == (many / mf.MANIFEST_NAME).read_text()
    with pytest.raises(ValueError, match="shard-index"):
        mf.select_slice(tasks, 4, 4)


def test_key_repeated_in_a_later_shard_is_rejected_there(tmp_path):
    root = tmp_path / "raw"
    write_utterances(root / "hi" / "shard-000000.tar", make_utterances("hi", 3))
    write_utterances(root / "hi" / "shard-000001.tar", make_utterances("hi", 3, start=2))
    tasks = mf.discover_shards(root)
    mf.build_parts(tasks, tmp_path / "out", CFG, progress=False)
    summary = mf.merge_parts(tasks, tmp_path / "out")
    rows = _lines(tmp_path / "out" / mf.MANIFEST_NAME)
    assert [r["key"] for r in rows] == [f"hi_{i:06d}" for i in range(5)]
    assert rows[2]["tar_path"] == tasks[0].tar_path  # the first shard keeps the key
    rejects = _lines(tmp_path / "out" / mf.REJECTS_NAME)
    assert [(r["key"], r["reason"], r["tar"]) for r in rejects] == [
        ("hi_000002", "duplicate_key", tasks[1].tar_path)
    ]
    assert summary["languages"]["hi"]["rejects"] == {"duplicate_key": 1}


def _script_main():
    spec = importlib.util.spec_from_file_location(
        "build_manifest", REPO / "scripts" / "build_manifest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_exit_codes(tmp_path, capsys):
    main = _script_main()
    root = tmp_path / "raw"
    write_utterances(root / "hi" / "shard-000000.tar", make_utterances("hi", 8))
    bad = make_utterances("hi", 2, start=50)
    write_tar(root / "hi" / "shard-000001.tar", [m for u in bad for m in u.members()[:1]])
    args = ["--input-root", str(root), "--config", str(PROD), "--workers", "1", "--no-progress"]
    # 2 rejects (missing transcripts) of 10 = 20%: above the 5% default, below a 50% flag
    assert main([*args, "--output-dir", str(tmp_path / "a")]) == mf.EXIT_REJECT_RATE
    assert main([*args, "--output-dir", str(tmp_path / "a"), "--max-reject-rate", "0.5"]) == 0
    assert "missing_transcript" in capsys.readouterr().out
    junk = tmp_path / "junk" / "hi" / "shard-000000.tar"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"\x07" * 4096)
    out = ["--output-dir", str(tmp_path / "b")]
    assert main([*out, "--input-root", str(junk.parents[1]), "--no-progress"]) == mf.EXIT_NO_SHARDS
    assert main([*out, "--input-root", str(tmp_path / "empty_nothing")]) == 2
    # slices: a slice run exits 0 without merging, --merge-only merges
    assert main([*args, "--output-dir", str(tmp_path / "c"), "--num-shards", "2"]) == 0
    assert not (tmp_path / "c" / mf.MANIFEST_NAME).exists()
    assert (
        main([*args, "--output-dir", str(tmp_path / "c"), "--merge-only"]) == 2
    )  # slice 1 missing
    assert (
        main(
            [*args, "--output-dir", str(tmp_path / "c"), "--num-shards", "2", "--shard-index", "1"]
        )
        == 0
    )
    code = main(
        [*args, "--output-dir", str(tmp_path / "c"), "--merge-only", "--max-reject-rate", "1"]
    )
    assert code == 0 and len(_lines(tmp_path / "c" / mf.MANIFEST_NAME)) == 8
