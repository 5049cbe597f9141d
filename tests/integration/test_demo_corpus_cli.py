"""The demo corpus command line, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.integration
def test_make_demo_corpus_cli(tmp_path):
    cmd = [
        sys.executable,
        str(ROOT / "scripts/make_demo_corpus.py"),
        "--output-root",
        str(tmp_path),
        "--languages",
        "ta,en",
        "--utts-per-lang",
        "5",
        "--shard-size",
        "2",
        "--no-progress",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "synthesised 10 utterances" in out.stdout
    summary = json.loads((tmp_path / "corpus.json").read_text())
    assert list(summary["languages"]) == ["ta", "en"]
    assert len(list(tmp_path.glob("*/shard-*.tar"))) == 6
    again = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "already up to date" in again.stdout
