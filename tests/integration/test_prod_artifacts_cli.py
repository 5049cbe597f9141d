"""The five data commands chained on the tiny corpus, as `make prod-artifacts` runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lf_asr.data.schema import PRODUCTION_INDEX_SCHEMA

REPO = Path(__file__).parents[2]
CONFIG = str(REPO / "configs" / "data" / "demo.yaml")


def _run(script: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), *args],
        capture_output=True, text=True, check=False, cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.integration
def test_chain_builds_every_artifact_and_reruns_idempotently(tiny_corpus, tmp_path):
    m, tok, idx = tmp_path / "manifests", tmp_path / "tok", tmp_path / "phase3" / "index.parquet"
    val = m / "stage1_prod_val_v2.jsonl"
    manifest_args = ["--input-root", str(tiny_corpus), "--output-dir", str(m / "raw"),
                     "--config", CONFIG, "--workers", "2", "--no-progress"]  # fmt: skip
    _run("build_manifest.py", *manifest_args)
    _run("split_manifest.py", "--manifest", str(m / "raw" / "manifest.jsonl"),
         "--output-dir", str(m), "--config", CONFIG)  # fmt: skip
    _run("build_tokenizer.py", "--train", str(m / "train.jsonl"), "--val", str(m / "val.jsonl"),
         "--output-dir", str(tok), "--config", CONFIG, "--vocab-size", "800")  # fmt: skip
    _run("build_index.py", "--train", str(m / "train.jsonl"), "--val", str(m / "val.jsonl"),
         "--tokenizer-dir", str(tok), "--output", str(idx), "--val-output", str(val),
         "--config", CONFIG, "--no-progress")  # fmt: skip
    _run("data_report.py", "--index", str(idx), "--val-manifest", str(val),
         "--manifest-summary", str(m / "raw" / "summary.json"), "--output-dir",
         str(tmp_path / "report"))  # fmt: skip
    assert pq.read_schema(idx) == PRODUCTION_INDEX_SCHEMA
    train_rows = pq.ParquetFile(idx).metadata.num_rows
    val_rows = len(val.read_text().splitlines())
    assert train_rows + val_rows == 36
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["totals"]["train_utterances"] == train_rows
    # a second manifest run reads nothing: every shard's part is current
    assert "scanned 0 shard(s)" in _run("build_manifest.py", *manifest_args)
