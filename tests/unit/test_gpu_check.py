"""`make gpu-check`: the CPU tiny variant runs every section end to end through the production
code, a failing section is reported (the others still run, the exit status is 1), and the MFU
peak comes from the GPU's name."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from maya_asr.training import gpu_check

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check_script", REPO / "scripts/gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        ("NVIDIA H200", 989),
        ("NVIDIA H200 NVL", 835),  # the longer, more specific name wins
        ("NVIDIA H100 80GB HBM3", 989),
        ("NVIDIA H100 PCIe", 756),
        ("NVIDIA A100-SXM4-80GB", 312),
        ("NVIDIA GeForce RTX 4090", None),
        ("cpu", None),
    ],
)
def test_peak_flops_follow_the_gpu_name(name, tflops):
    peak = gpu_check.peak_bf16_flops(name)
    assert (peak / 1e12 if peak else None) == tflops


def test_a_failing_section_is_reported_and_the_others_still_run():
    ran = []

    def ok(ctx):
        ran.append("ok")
        return {"summary": "fine"}

    def boom(ctx):
        raise RuntimeError("CUDA error: device-side assert")

    def skip(ctx):
        raise gpu_check.Skip("no Parakeet file")

    results = gpu_check.run_sections({"a": boom, "b": ok, "c": skip, "d": ok}, ctx=None,
                                     selected={"a", "b", "c"})  # fmt: skip
    assert [r["status"] for r in results.values()] == ["failed", "ran", "skipped", "skipped"]
    assert results["a"]["error"] == "RuntimeError: CUDA error: device-side assert"
    assert results["c"]["reason"] == "no Parakeet file"
    assert "--sections" in results["d"]["reason"]
    assert ran == ["ok"]


def test_the_script_exits_1_when_a_section_fails(tmp_path, monkeypatch, capsys):
    def boom(ctx):
        raise RuntimeError("worst batch of bucket 16-20 s: out of memory")

    monkeypatch.setitem(gpu_check.SECTION_FUNCS, "smoke", boom)
    out = tmp_path / "gpu_check.json"
    code = _script().main(["--tiny", "--sections", "smoke", "--output", str(out)])
    assert code == 1
    report = json.loads(out.read_text())
    assert report["ok"] is False
    assert report["sections"]["smoke"]["status"] == "failed"
    assert "out of memory" in report["sections"]["smoke"]["error"]
    table = capsys.readouterr().out
    assert "failed" in table and "NOT H200 figures" in table


def test_the_script_refuses_unknown_sections(tmp_path):
    with pytest.raises(SystemExit) as exc:
        _script().main(["--sections", "smoke,nonsense", "--output", str(tmp_path / "x.json")])
    assert exc.value.code == 2


def test_data_free_caps_never_shrink_a_preflight_batch():
    # gpu-check has no index, so "auto" caps resolve without data: its worst batches must be
    # at least those pre-flight runs with the caps an index gives, and within every cap.
    from maya_asr.training.run import preflight_batches

    cfg = OmegaConf.load(REPO / "configs/train/stage1_prod_8xh200.yaml")
    assert cfg.data.bucket_batch_sizes == "auto"
    data_free = preflight_batches(cfg, 32000)
    measured_caps = [102, 26, 13, 9, 7, 5]  # auto caps of the 2M-row rehearsal index
    small_caps = [4, 3, 2, 2, 1, 1]  # caps below the seconds cap: the index's caps bind
    assert [w.batch_size for w in preflight_batches(cfg, 32000, caps=small_caps)] == small_caps
    with_data = preflight_batches(cfg, 32000, caps=measured_caps)
    assert len(data_free) == len(with_data) == len(cfg.data.bucket_edges) - 1
    for free, real in zip(data_free, with_data, strict=True):
        assert free.batch_size >= real.batch_size and free.seconds == real.seconds
        assert free.batch_size * free.seconds <= cfg.data.max_batch_dur
        assert free.batch_size * free.tokens <= cfg.data.max_tokens_in_batch
    with open_dict(cfg):
        cfg.data.bucket_batch_sizes = None
    assert max(w.batch_size for w in preflight_batches(cfg, 32000)) <= cfg.data.max_batch_size


@pytest.mark.slow
def test_cpu_tiny_variant_runs_every_section(tmp_path):
    out = tmp_path / "gpu_check.json"
    code = _script().main(["--tiny", "--output", str(out), "--work-dir", str(tmp_path)])
    report = json.loads(out.read_text())
    assert code == 0, report
    assert report["variant"] == "cpu-tiny" and "NOT H200" in report["warning"]
    sections = report["sections"]
    assert {k: v["status"] for k, v in sections.items()} == dict.fromkeys(gpu_check.SECTIONS, "ran")
    smoke, pre, train, rtfx = (sections[k] for k in gpu_check.SECTIONS)
    assert smoke["tdt_loss_calls"]["torch"] >= smoke["steps"] == gpu_check.CPU_TINY.smoke_steps
    assert pre["state_changed_by_preflight"] == []  # pre-flight leaves the model bit-identical
    assert len(pre["buckets"]) == 2  # the tiny plan's buckets 0-2 s and 2-4 s
    assert train["steps"] == gpu_check.CPU_TINY.train_steps
    assert train["audio_s_per_s"] > 0 and train["train_flops_per_step_mean"] > 0
    assert train["mfu"] is None  # no peak FLOP/s for a CPU
    assert rtfx["decoders"]["tdt"]["rtfx"] > 0 and rtfx["decoders"]["ctc"]["rtfx"] > 0
