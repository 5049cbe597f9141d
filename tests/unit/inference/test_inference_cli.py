"""scripts/transcribe.py and scripts/evaluate.py end to end on the tiny model and demo clips.

The scripts' ``main(argv)`` runs in this process (a subprocess would pay NeMo's ~10 s import
for every case); tests/unit/test_scripts_cli.py runs each script as a program with --help.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import soundfile as sf

ROOT = Path(__file__).parents[3]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(capsys, script: str, *args) -> SimpleNamespace:
    """Run ``scripts/<script>`` with ``args``; its exit code, stdout and stderr."""
    code = _script(script.removesuffix(".py")).main([str(a) for a in args])
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_transcribe_a_tar_offset_manifest_with_ctc_and_timestamps(
    capsys, tiny_nemo, corpus_manifest, corpus_rows, tmp_path
):
    out = tmp_path / "out.jsonl"
    args = ["--model", tiny_nemo, "--manifest", corpus_manifest, "--output", out]
    proc = run(capsys, "transcribe.py", *args, "--decoder", "ctc", "--timestamps", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(out)
    assert [r["key"] for r in rows] == [r["key"] for r in corpus_rows]
    assert all(r["decoder"] == "ctc" and isinstance(r["pred_text"], str) for r in rows)
    assert all(isinstance(r["words"], list) and r["duration"] > 0 for r in rows)
    assert "wrote 36 transcripts" in proc.stdout


def test_transcribe_a_folder_of_mixed_rate_and_channel_files(capsys, tiny_nemo, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "audio"
    folder.mkdir()
    sf.write(folder / "a.wav", 0.1 * rng.standard_normal((44100, 2)), 44100)
    sf.write(folder / "b.flac", 0.1 * rng.standard_normal(8000 * 2), 8000)
    out = tmp_path / "out.jsonl"
    proc = run(capsys, "transcribe.py", "--model", tiny_nemo, "--dir", folder, "--output", out)
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(out)
    assert [Path(r["audio_filepath"]).name for r in rows] == ["a.wav", "b.flac"]
    assert [r["duration"] for r in rows] == [1.0, 2.0]
    assert all(r["decoder"] == "tdt" for r in rows)


def test_missing_file_fails_naming_the_row_before_loading_the_model(capsys, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"audio_filepath": "missing.wav", "text": "x"}\n', encoding="utf-8")
    proc = run(
        capsys, "transcribe.py", "--model", tmp_path / "not-needed.nemo", "--manifest", manifest,
        "--output", tmp_path / "out.jsonl",
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"{manifest}:1: audio file" in proc.stderr and "missing.wav" in proc.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_evaluate_compares_two_models_on_raw_shards(capsys, tiny_nemo, tiny_corpus, tmp_path):
    out = tmp_path / "eval"
    args = ["--model", tiny_nemo, "--compare", tiny_nemo, "--shards", tiny_corpus]
    proc = run(capsys, "evaluate.py", *args, "--per-language", 1, "--out-dir", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    names = [s["name"] for s in json.loads((out / "report.json").read_text())["systems"]]
    assert names == ["tiny#1/tdt", "tiny#1/ctc", "tiny#2/tdt", "tiny#2/ctc"]
    assert (out / "report.png").stat().st_size > 0
    assert "| **all** | 12 |" in proc.stdout
    assert len(list((out / "predictions").glob("*.jsonl"))) == 4
