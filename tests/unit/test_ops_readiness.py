"""Readiness checks on tiny synthetic artifacts: every FAIL names the problem and a fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from ops_helpers import REPO

from lf_asr.data.schema import PRODUCTION_INDEX_SCHEMA
from maya_asr.ops.readiness import (
    FAIL,
    PASS,
    WARN,
    GpuInfo,
    ReadinessConfig,
    check_disk,
    check_gpus,
    exit_status,
    render_json,
    render_table,
    run_checks,
)
from maya_asr.ops.readiness_model import check_artifacts, check_config, encoder_shapes

CONFIG = """
model:
  tokenizer:
    dir: {tok}
    type: bpe
  model_defaults:
    tdt_durations: [0, 1, 2, 3, 4]
    num_tdt_durations: 5
  encoder:
    d_model: 8
    n_layers: 2
  joint:
    num_classes: {vocab}
    fuse_loss_wer: true
    fused_batch_size: 4
    num_extra_outputs: ${{model.model_defaults.num_tdt_durations}}
  decoding:
    durations: ${{model.model_defaults.tdt_durations}}
  loss:
    loss_name: tdt
    tdt_kwargs:
      durations: ${{model.model_defaults.tdt_durations}}
  train_ds:
    max_duration: 20.0
    min_duration: 0.5
data:
  max_joint_elements: {joint_cap}
  sampler:
    max_batch_dur: 1200.0
    max_tokens_in_batch: 40000
    bucket_edges: [0, 4, 8, 20]
"""

# One 20 s clip (8x subsampling: 251 frames) with 100 tokens, counted as 1 + min(1, 4) rows, at
# V + 1 + D = 36: the cap the last bucket edge needs at a dense 5 tokens/s.
JOINT_CAP = 2 * 251 * 101 * 36


@pytest.fixture
def artifacts(tmp_path):
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "vocab.txt").write_text("".join(f"p{i}\n" for i in range(30)))
    (tmp_path / "cfg.yaml").write_text(CONFIG.format(tok=tok, vocab=30, joint_cap=JOINT_CAP))
    pq.write_table(_index_table(), tmp_path / "index.parquet")
    (tmp_path / "val.jsonl").write_text('{"duration": 1.5, "text": "a"}\n{"duration": 2.0}\n')
    state = {f"encoder.layers.{i}.norm_feed_forward1.weight": torch.zeros(8) for i in range(2)}
    torch.save(state, tmp_path / "enc.pt")
    return ReadinessConfig(
        config_path=tmp_path / "cfg.yaml",
        train_parquet=tmp_path / "index.parquet",
        val_manifest=tmp_path / "val.jsonl",
        pretrained_encoder=tmp_path / "enc.pt",
        checkpoint_dir=tmp_path / "ck",
        expect_gpus=0,
        checkpoint_gb=0.001,
        logs_gb=0.001,
        env_file=tmp_path / "no.env",
        check_r2=False,
    )


def _index_table():
    values = {
        "tar_path": ["/x.tar"] * 2,
        "tar_offset_data": [512, 2048],
        "tar_nbytes": [100, 100],
        "transcript": ["a", "b"],
        "duration_s": [1.0, 2.0],
        "language": ["hi", "ta"],
        "speaker": ["s", "t"],
        "key": ["k1", "k2"],
        "sample_rate": [16000, 16000],
        "num_tokens": [1, 1],
    }
    return pa.Table.from_pydict(values, schema=PRODUCTION_INDEX_SCHEMA)


def rows_by_name(rows):
    return {r.name: r for r in rows}


def model_rows(cfg):
    facts = {}
    return rows_by_name(check_config(cfg.config_path, facts) + check_artifacts(cfg, facts))


def test_good_config_and_artifacts_pass(artifacts):
    rows = model_rows(artifacts)
    assert {n: r.status for n, r in rows.items()} == {
        "file": PASS,
        "schema": PASS,
        "tdt durations": PASS,
        "batch caps": PASS,
        "tokenizer": PASS,
        "joint cap": PASS,
        "train parquet": PASS,
        "val manifest": PASS,
        "pretrained encoder": PASS,
    }
    assert "2 rows" in rows["train parquet"].detail
    assert "30 pieces" in rows["tokenizer"].detail
    assert "counting B + min(B, 4) rows" in rows["joint cap"].detail
    assert "a 20 s clip may carry 100 tokens" in rows["joint cap"].detail


def test_joint_cap_unset_warns_and_too_small_fails_with_the_value_to_set(artifacts):
    text = artifacts.config_path.read_text()
    artifacts.config_path.write_text(text.replace(f"max_joint_elements: {JOINT_CAP}", ""))
    assert model_rows(artifacts)["joint cap"].status == WARN
    artifacts.config_path.write_text(text.replace(f"{JOINT_CAP}", f"{JOINT_CAP - 1}"))
    row = model_rows(artifacts)["joint cap"]
    assert row.status == FAIL and "99 tokens" in row.detail
    assert f"{JOINT_CAP:,}" in row.fix


def test_sentencepiece_model_is_the_vocab_source(artifacts, tmp_path):
    import sentencepiece as spm

    text = tmp_path / "text.txt"
    text.write_text("\n".join("abc def ghi jkl mno pqr stu vwx yz" for _ in range(50)))
    tok = tmp_path / "tok"
    spm.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(tok / "tokenizer"),
        vocab_size=40,
        model_type="bpe",
        minloglevel=2,
    )
    rows = model_rows(artifacts)
    assert rows["tokenizer"].status == FAIL  # the config says 30, the model has 40 pieces
    assert "has 40 pieces but model.joint.num_classes=30" in rows["tokenizer"].detail
    assert "set them to 40" in rows["tokenizer"].fix


@pytest.mark.parametrize(
    ("old", "new", "row", "message"),
    [
        ("num_tdt_durations: 5", "num_tdt_durations: 4", "tdt durations", "4 but there are 5"),
        (
            "tdt_durations: [0, 1, 2, 3, 4]",
            "tdt_durations: [0, 2, 1]",
            "tdt durations",
            "increasing",
        ),
        (
            "  durations: ${model.model_defaults.tdt_durations}\n  train_ds",
            "  durations: [0, 1]\n  train_ds",
            "tdt durations",
            "model.loss.tdt_kwargs.durations=[0, 1] differs",
        ),
        ("max_tokens_in_batch: 40000", "max_tokens_in_batch: 0", "batch caps", "must be > 0"),
        ("max_duration: 20.0", "max_duration: 90.0", "batch caps", "attention memory"),
        ("min_duration: 0.5", "min_duration: 30.0", "batch caps", ">= max_duration"),
        ("bucket_edges: [0, 4, 8, 20]", "bucket_edges: [0, 8, 4]", "batch caps", "increasing"),
        ("n_layers: 2", "n_layers: 3", "pretrained encoder", "config says d_model=8, n_layers=3"),
        ("d_model: 8", "d_model: -8", "schema", "not a positive integer"),
    ],
)
def test_config_problems_fail_with_the_field_named(artifacts, old, new, row, message):
    text = artifacts.config_path.read_text()
    assert text.count(old) == 1, old
    artifacts.config_path.write_text(text.replace(old, new))
    result = model_rows(artifacts)[row]
    assert result.status == FAIL and message in result.detail, result
    assert result.fix


def test_missing_everything_fails_cleanly(tmp_path):
    cfg = ReadinessConfig(
        config_path=tmp_path / "no.yaml",
        train_parquet=tmp_path / "no.pq",
        val_manifest=tmp_path / "no.jsonl",
        pretrained_encoder=tmp_path / "no.pt",
    )
    rows = model_rows(cfg)
    assert all(r.status == FAIL and r.fix for r in rows.values())
    assert "not found" in rows["file"].detail and "not set" in rows["tokenizer"].detail


def test_broken_artifacts_fail(artifacts):
    pq.write_table(_index_table().drop(["num_tokens"]), artifacts.train_parquet)
    artifacts.val_manifest.write_text('{"duration": 1}\nnot json\n')
    artifacts.pretrained_encoder.write_bytes(b"not a zip")
    rows = model_rows(artifacts)
    assert "column 'num_tokens' is missing" in rows["train parquet"].detail
    assert "val.jsonl:2 is not JSON" in rows["val manifest"].detail
    assert rows["pretrained encoder"].status == FAIL


def test_index_column_types_are_checked_not_just_names(artifacts):
    table = _index_table()
    castable = table.set_column(
        table.schema.get_field_index("language"), "language", table["language"].dictionary_encode()
    )
    pq.write_table(castable, artifacts.train_parquet)
    assert model_rows(artifacts)["train parquet"].status == PASS  # dictionary -> string casts
    i = table.schema.get_field_index("duration_s")
    wrong = table.set_column(i, "duration_s", table["duration_s"].cast(pa.string()))
    pq.write_table(wrong, artifacts.train_parquet)
    row = model_rows(artifacts)["train parquet"]
    assert row.status == FAIL and "column 'duration_s' is string, expected float" in row.detail


def test_encoder_shapes_from_nemo_style_keys():
    state = {
        "layers.0.self_attn.linear_q.weight": torch.zeros(16, 16),
        "layers.41.feed_forward1.linear1.weight": torch.zeros(64, 16),
        "pre_encode.out.weight": torch.zeros(16, 100),
    }
    assert encoder_shapes(state) == (16, 42)
    assert encoder_shapes({"x": torch.zeros(1)}) == (None, None)


def test_bad_interpolation_is_a_fail_not_a_crash(artifacts):
    artifacts.config_path.write_text(
        artifacts.config_path.read_text().replace(
            "${model.model_defaults.tdt_durations}", "${model.nope}"
        )
    )
    rows = run_checks(artifacts)
    assert any(r.status == FAIL and r.area == "config" for r in rows)


def test_disk_needs_room_for_k_plus_one_checkpoints(tmp_path):
    ok = check_disk(
        ReadinessConfig(checkpoint_dir=tmp_path / "a/b", checkpoint_gb=0.001, logs_gb=0.001)
    )
    assert [r.status for r in ok] == [PASS, PASS]
    huge = check_disk(ReadinessConfig(checkpoint_dir=tmp_path, checkpoint_gb=1e9))[0]
    assert huge.status == FAIL and "need" in huge.detail and "free" in huge.fix


def test_gpu_count_and_memory_from_probes():
    h200 = [GpuInfo(i, "NVIDIA H200", 139.8) for i in range(8)]

    def eight():
        return h200

    def none():
        raise RuntimeError("no driver")

    rows = rows_by_name(check_gpus(ReadinessConfig(expect_gpus=8), probes=(none, eight)))
    assert rows["count"].status == PASS and "8 GPU(s) via eight" in rows["count"].detail
    assert rows["memory"].status == PASS
    rows = rows_by_name(check_gpus(ReadinessConfig(expect_gpus=16), probes=(eight,)))
    assert rows["count"].status == FAIL and "CUDA_VISIBLE_DEVICES" in rows["count"].fix
    rows = rows_by_name(check_gpus(ReadinessConfig(expect_gpus=8), probes=(none,)))
    assert rows["count"].status == FAIL and "no NVIDIA GPU visible" in rows["count"].detail
    assert (
        rows_by_name(check_gpus(ReadinessConfig(expect_gpus=0), probes=(none,)))["count"].status
        == WARN
    )


def test_nvidia_smi_output_is_parsed(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    lines = "\\n".join(f"{i}, NVIDIA H200, 143771" for i in range(4))
    fake.write_text(f"#!/bin/sh\nprintf '{lines}\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    from maya_asr.ops.readiness import gpus_from_nvidia_smi

    gpus = gpus_from_nvidia_smi()
    assert [g.index for g in gpus] == [0, 1, 2, 3] and gpus[0].name == "NVIDIA H200"
    assert round(gpus[0].memory_gb) == 140
    rows = rows_by_name(check_gpus(ReadinessConfig(expect_gpus=8), probes=(gpus_from_nvidia_smi,)))
    assert rows["count"].status == FAIL and "4 GPU(s)" in rows["count"].detail


def test_table_json_and_exit_status(artifacts):
    rows = run_checks(artifacts)
    table = render_table(rows)
    assert table.splitlines()[0].split()[:3] == ["area", "check", "status"]
    doc = json.loads(render_json(rows))
    assert doc["ready"] == (exit_status(rows) == 0)
    assert {c["area"] for c in doc["checks"]} >= {"disk", "gpus", "config", "artifacts"}


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has GPUs")
def test_script_on_a_machine_without_gpus_fails_clearly(artifacts):
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/readiness.py"),
            "--json",
            "--no-r2",
            "--config",
            str(artifacts.config_path),
            "--expect-gpus",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"},
    )
    assert out.returncode == 1, out.stderr
    gpus = [c for c in json.loads(out.stdout)["checks"] if c["area"] == "gpus"]
    count = next(c for c in gpus if c["name"] == "count")
    assert count["status"] == FAIL and "no NVIDIA GPU visible (expected 8)" in count["detail"]
    assert "Traceback" not in out.stderr
