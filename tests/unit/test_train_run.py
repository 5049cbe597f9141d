"""End-to-end training on the tiny corpus: exact resume, 2-rank gloo DDP, --smoke."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import lightning.pytorch as pl
import pytest
import torch
from train_support import REPO, SMOKE, smoke_train_config

PROD = REPO / "configs" / "train" / "stage1_prod_8xh200.yaml"
pytestmark = pytest.mark.slow

_cfg = smoke_train_config


class Recorder(pl.Callback):
    """Loss and row content of every micro-batch the training step saw."""

    def __init__(self):
        self.steps: list[tuple[float, int]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        audio_sum = int(batch[1].sum())  # the batch's total samples identifies its rows
        self.steps.append((float(outputs["loss"]), audio_sum))


def test_resume_gives_the_batches_and_losses_of_the_uninterrupted_run(
    tiny_artifacts, tmp_path, monkeypatch
):
    import random

    from maya_asr.training.run import train

    # omega 0.5: the TDT loss takes the plain RNN-T branch on about half its calls, a draw from
    # Python's `random` the resume must repeat.
    draws: list[float] = []
    uniform = random.uniform

    def spy(a, b):
        draws.append(uniform(a, b))
        return draws[-1]

    monkeypatch.setattr(random, "uniform", spy)
    omega = ["model.loss.tdt_kwargs.omega=0.5"]
    straight = Recorder()
    full = train(
        _cfg(tiny_artifacts, tmp_path / "a", 4, seed=3, dotlist=omega), extra_callbacks=[straight]
    )
    assert full.global_step == 4 and full.nemo_path.exists()
    straight_draws, draws[:] = list(draws), []
    assert any(d < 0.5 for d in straight_draws)  # the RNN-T branch ran

    first, second = Recorder(), Recorder()
    train(_cfg(tiny_artifacts, tmp_path / "b", 2, seed=3, dotlist=omega), extra_callbacks=[first])
    resumed = train(
        _cfg(tiny_artifacts, tmp_path / "b", 4, seed=3, dotlist=omega), extra_callbacks=[second]
    )
    assert resumed.global_step == 4
    assert draws == straight_draws
    stitched = first.steps + second.steps
    assert [rows for _, rows in stitched] == [rows for _, rows in straight.steps]
    for (loss_a, _), (loss_b, _) in zip(stitched, straight.steps, strict=True):
        assert loss_a == pytest.approx(loss_b, rel=1e-5, abs=1e-6)
    assert resumed.rank_digests == full.rank_digests  # identical weights after 4 steps


def _train_cli(*args, cwd=REPO):
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_prod.py"), *args],
        capture_output=True, text=True, cwd=cwd, timeout=900,
    )  # fmt: skip


def test_two_rank_gloo_ddp_keeps_weights_identical(tiny_artifacts, tmp_path):
    run = _train_cli(
        "--config", str(SMOKE), "--train-parquet", str(tiny_artifacts["index"]),
        "--devices", "2", "--max-steps", "3", "--grad-accum", "2", "--freeze-encoder-steps", "1",
        "--ctc-warmup-steps", "2", "--max-batch-dur", "20", "--max-batch-size", "2",
        "--num-workers", "0", "--no-preflight", "--run-dir", str(tmp_path / "ddp"),
        f"model.tokenizer.dir={tiny_artifacts['tokenizer_dir']}", "data.val_manifest=null",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "weights identical on 2 rank(s)" in run.stderr
    assert "trained 3 steps" in run.stdout


def test_smoke_flag_on_the_production_config_trains_validates_and_exports(tiny_artifacts, tmp_path):
    run = _train_cli(
        "--config", str(PROD), "--train-parquet", str(tiny_artifacts["index"]),
        "--val-manifest", str(tiny_artifacts["val_manifest"]), "--max-steps", "4", "--devices",
        "1", "--log-every", "2", "--val-every", "2", "--smoke", "--grad-accum", "1",
        "--num-workers", "1", "--max-batch-dur", "40", "--run-dir", str(tmp_path / "smoke"),
        f"model.tokenizer.dir={tiny_artifacts['tokenizer_dir']}",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "--smoke: model shrunk" in run.stderr
    assert "model.encoder_freeze_steps 5000 -> 1" in run.stderr  # 4 / 200,000, at least 1
    assert "encoder LR 2e-05 -> 0.001" in run.stderr
    assert "learning rates (GroupCosine)" in run.stderr
    assert "pre-flight ok" in run.stderr
    # stdout/stderr are pipes here, as under nohup: plain lines every --log-every steps, no bar
    plain = [ln for ln in run.stderr.splitlines() if re.search(r"maya_asr.train: step \d+/4", ln)]
    assert [re.search(r"step (\d+)/4", ln)[1] for ln in plain] == ["2", "4"]
    assert all(" loss " in ln and " lr " in ln and " audio " in ln for ln in plain), plain
    assert "\r" not in run.stderr and "\r" not in run.stdout
    run_dir = tmp_path / "smoke"
    assert (run_dir / "model.nemo").exists() and (run_dir / "config.yaml").exists()
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    table = json.loads((run_dir / "validation" / "val-step4.json").read_text())
    assert set(table) == {"tdt", "ctc"} and "all" in table["tdt"]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4
