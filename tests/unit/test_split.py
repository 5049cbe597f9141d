"""Split invariants: deterministic, speaker-disjoint, sized by config, append-stable."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from maya_asr.data.config import SplitConfig
from maya_asr.data.split import (
    STATE_NAME,
    TRAIN_NAME,
    VAL_NAME,
    choose_threshold,
    split_manifest,
    unit_position,
)

CFG = SplitConfig(val_fraction=0.1, min_val_utterances=5, max_val_fraction=0.4)


def _records(
    lang: str, n: int, start: int = 0, speakers: int = 20, rng_seed: int = 0
) -> list[dict]:
    rng = np.random.default_rng([rng_seed, start])
    return [
        {
            "key": f"{lang}_{i:06d}",
            "lang": lang,
            "speaker": f"{lang}-s{int(rng.integers(speakers))}" if speakers else "",
            "duration": float(rng.uniform(1, 10)),
            "text": "x",
        }
        for i in range(start, start + n)
    ]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _sides(out: Path) -> dict[tuple[str, str], str]:
    sides = {}
    for name, side in ((TRAIN_NAME, "train"), (VAL_NAME, "val")):
        for line in (out / name).read_text().splitlines():
            r = json.loads(line)
            sides[(r["lang"], r["key"])] = side
    return sides


def test_split_is_speaker_disjoint_complete_and_deterministic(tmp_path):
    recs = _records("hi", 400) + _records("ta", 300, speakers=0)
    m = _write(tmp_path / "m.jsonl", recs)
    report = split_manifest(m, tmp_path / "a", CFG)
    split_manifest(m, tmp_path / "b", CFG, reset=True)
    assert (tmp_path / "a" / VAL_NAME).read_bytes() == (tmp_path / "b" / VAL_NAME).read_bytes()
    sides = _sides(tmp_path / "a")
    assert len(sides) == 700  # nothing lost, nothing twice
    by_speaker: dict[str, set] = {}
    for r in recs:
        if r["speaker"]:
            by_speaker.setdefault(r["speaker"], set()).add(sides[(r["lang"], r["key"])])
    assert all(len(s) == 1 for s in by_speaker.values())
    for lang, row in report["languages"].items():
        assert row["shared_speakers"] == 0
        total = row["train_hours"] + row["val_hours"]
        assert 0.1 * total <= row["val_hours"] <= 0.4 * total, lang
        assert row["val"] >= 5


def test_append_does_not_move_any_utterance(tmp_path):
    first = _records("hi", 300) + _records("en", 100, speakers=0)
    out = tmp_path / "split"
    split_manifest(_write(tmp_path / "m1.jsonl", first), out, CFG)
    before = _sides(out)
    more = first + _records("hi", 500, start=300, speakers=40) + _records("ml", 50)
    report = split_manifest(_write(tmp_path / "m2.jsonl", more), out, CFG)
    after = _sides(out)
    assert {k: after[k] for k in before} == before
    assert report["new_thresholds"] == ["ml"]
    assert any(after[("hi", f"hi_{i:06d}")] == "val" for i in range(300, 800))
    # the state that makes this possible is kept beside the outputs
    assert json.loads((out / STATE_NAME).read_text())["salt"] == CFG.salt


def test_salt_change_is_refused_unless_reset(tmp_path):
    m = _write(tmp_path / "m.jsonl", _records("hi", 50))
    split_manifest(m, tmp_path / "o", CFG)
    with pytest.raises(ValueError, match="--reset"):
        split_manifest(m, tmp_path / "o", replace(CFG, salt="other"))
    split_manifest(m, tmp_path / "o", replace(CFG, salt="other"), reset=True)


def test_threshold_targets_hours_and_takes_units_whole():
    pos = np.array([0.1, 0.1, 0.2, 0.3, 0.3, 0.3, 0.9])
    sec = np.array([3600.0, 3600, 1800, 600, 600, 600, 7200])
    cfg = SplitConfig(val_hours=2.0, min_val_utterances=0, max_val_fraction=0.9)
    t = choose_threshold(pos, sec, cfg)
    assert 0.1 < t < 0.2  # unit at 0.1 (2 h) suffices
    t = choose_threshold(pos, sec, replace(cfg, min_val_utterances=4))
    assert 0.3 < t < 0.9  # needs the 0.3 unit for four utterances
    cfg = replace(cfg, val_hours=100.0, max_val_fraction=0.5)
    t = choose_threshold(pos, sec, cfg)
    assert 0.2 < t < 0.3  # stops at the 50 % cap (2 h + 0.5 h <= 4.5 h)
    single = choose_threshold(np.array([0.5, 0.5]), np.array([1.0, 1.0]), cfg)
    assert single == 0.0  # one speaker: no val rather than no train


def test_unit_position_is_stable():
    assert unit_position("s", "hi", "spk:a") == unit_position("s", "hi", "spk:a")
    assert unit_position("s", "hi", "spk:a") != unit_position("s", "ta", "spk:a")
    assert 0.0 <= unit_position("maya-split-v1", "hi", "key:hi_000001") < 1.0


def test_empty_val_of_a_single_speaker_language_reopens_when_speakers_arrive(tmp_path):
    out = tmp_path / "split"
    first = [dict(r, speaker="hi-only") for r in _records("hi", 200)]
    report = split_manifest(_write(tmp_path / "m1.jsonl", first), out, CFG)
    assert report["languages"]["hi"]["val"] == 0  # one speaker: no val rather than no train
    assert json.loads((out / STATE_NAME).read_text())["thresholds"]["hi"] == 0.0

    grown = first + _records("hi", 5000, start=200, speakers=300)
    report = split_manifest(_write(tmp_path / "m2.jsonl", grown), out, CFG)
    row = report["languages"]["hi"]
    assert report["reopened_thresholds"] == ["hi"] and row["threshold_reopened"]
    assert row["val"] >= CFG.min_val_utterances and row["shared_speakers"] == 0
    sides = _sides(out)
    moved = sum(sides[("hi", r["key"])] == "val" for r in first)
    assert row["moved_train_to_val"] == moved
    assert any("val was empty" in w for w in report["warnings"])
    # once open, the threshold is kept: a third run moves nothing
    split_manifest(_write(tmp_path / "m3.jsonl", grown + _records("hi", 100, 5200)), out, CFG)
    assert {k: v for k, v in _sides(out).items() if k in sides} == sides


def test_rows_without_speaker_are_split_by_shard_with_a_counting_warning(tmp_path):
    recs = _records("ta", 600, speakers=0)
    for i, r in enumerate(recs):
        r["tar_path"] = f"/data/raw/ta/shard-{i % 30:06d}.tar"
    report = split_manifest(_write(tmp_path / "m.jsonl", recs), tmp_path / "o", CFG)
    sides = _sides(tmp_path / "o")
    by_shard: dict[str, set] = {}
    for r in recs:
        by_shard.setdefault(r["tar_path"], set()).add(sides[("ta", r["key"])])
    assert all(len(s) == 1 for s in by_shard.values())  # a shard is never split
    assert {"train", "val"} <= set().union(*by_shard.values())
    row = report["languages"]["ta"]
    assert (row["unknown_speaker"], row["unknown_speaker_groups"]) == (600, 30)
    assert any(w.startswith("ta: 600 utterances have no speaker") for w in report["warnings"])
    # a moved shard root does not move rows: the shard is named by its file name
    for r in recs:
        r["tar_path"] = r["tar_path"].replace("/data/raw", "/mnt/elsewhere")
    split_manifest(_write(tmp_path / "m2.jsonl", recs), tmp_path / "o2", CFG)
    assert _sides(tmp_path / "o2") == sides


def test_split_state_from_before_grouping_keeps_its_per_key_split(tmp_path):
    recs = _records("ta", 300, speakers=0)
    for r in recs:
        r["tar_path"] = "/data/raw/ta/shard-000000.tar"  # one shard: grouped, it would be one unit
    out = tmp_path / "o"
    split_manifest(_write(tmp_path / "m.jsonl", recs), out, CFG)
    state = json.loads((out / STATE_NAME).read_text())
    assert state["unknown_speaker_unit"] == "session_or_shard"
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / STATE_NAME).write_text(json.dumps({"salt": CFG.salt, "thresholds": {"ta": 0.1}}))
    report = split_manifest(tmp_path / "m.jsonl", legacy, CFG)
    assert report["unknown_speaker_unit"] == "key"
    assert 0 < report["languages"]["ta"]["val"] < 300  # still split one by one, nothing regrouped
