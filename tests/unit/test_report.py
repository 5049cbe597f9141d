"""Data report totals agree with the artifacts, and every output file is written."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lf_asr.data.schema import PRODUCTION_INDEX_SCHEMA
from maya_asr.data.report import DURATION_EDGES, build_report, write_report


def _index(path, rows):
    cols = {f.name: [] for f in PRODUCTION_INDEX_SCHEMA}
    for i, (lang, dur, tok) in enumerate(rows):
        vals = dict(tar_path="/t.tar", tar_offset_data=512 * i, tar_nbytes=100, transcript="x",
                    duration_s=dur, language=lang, speaker="", key=f"k{i}", sample_rate=16000,
                    num_tokens=tok)  # fmt: skip
        for k, v in vals.items():
            cols[k].append(v)
    pq.write_table(pa.table(cols, schema=PRODUCTION_INDEX_SCHEMA), path, row_group_size=2)


def test_report_totals_histogram_and_files(tmp_path):
    _index(tmp_path / "i.parquet", [("hi", 2.0, 10), ("hi", 5.0, 30), ("en", 0.5, 4)])
    (tmp_path / "val.jsonl").write_text(json.dumps({"lang": "en", "duration": 3600.0}) + "\n")
    summary = {
        "languages": {"hi": {"rejects": {"wrong_script": 2}}, "en": {"rejects": {}}},
        "accepted": 4, "rejected": 2, "reject_rate": 2 / 6,
        "rejects_by_reason": {"wrong_script": 2},
    }  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    report = build_report(tmp_path / "i.parquet", tmp_path / "val.jsonl", tmp_path / "summary.json")
    hi, en = report["languages"]["hi"], report["languages"]["en"]
    assert list(report["languages"]) == ["hi", "en"]
    assert hi["train_utterances"] == 2 and hi["tokens_per_second"] == pytest.approx(
        40 / 7, abs=1e-3
    )
    assert hi["rejected"] == 2 and en["val_hours"] == 1.0
    hist = report["duration_histogram"]["train"]
    assert sum(hist) == 3 and hist[DURATION_EDGES.index(4)] == 1  # 5.0 s falls in 4-6 s
    files = write_report(report, tmp_path / "out")
    for name in files:
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert "wrong_script" in (tmp_path / "out" / "report.md").read_text()
