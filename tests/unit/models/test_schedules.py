"""CTC warmup and encoder freeze: pure schedules, and how the model applies them in training."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from model_support import smoke_config

from maya_asr.models.schedules import ctc_weight_at, encoder_frozen_at


def test_ctc_weight_ramps_linearly_then_holds():
    assert [ctc_weight_at(s, 4, 0.3) for s in range(6)] == pytest.approx(
        [0.0, 0.075, 0.15, 0.225, 0.3, 0.3]
    )
    assert ctc_weight_at(0, 0, 0.3) == 0.3  # no warmup
    with pytest.raises(ValueError, match="final CTC weight"):
        ctc_weight_at(0, 4, 1.5)
    with pytest.raises(ValueError, match="must be >= 0"):
        ctc_weight_at(-1, 4, 0.3)


def test_encoder_frozen_for_the_first_steps():
    assert [encoder_frozen_at(s, 2) for s in range(4)] == [True, True, False, False]
    assert not encoder_frozen_at(0, 0)
    with pytest.raises(ValueError):
        encoder_frozen_at(0, -1)


class _Recorder(pl.Callback):
    """Per micro-batch: (optimizer step it belongs to, CTC weight, frozen, encoder snapshot)."""

    def __init__(self):
        self.rows = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        bn = next(m for m in pl_module.encoder.modules() if isinstance(m, torch.nn.BatchNorm1d))
        self.rows.append(
            {
                "step": self.step,
                "ctc": pl_module.ctc_loss_weight,
                "frozen": pl_module.encoder_frozen,
                "bn_training": bn.training,
                "encoder": {k: v.clone() for k, v in pl_module.encoder.state_dict().items()},
            }
        )


def _batches(vocab, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        lang = torch.tensor([i % 12, -1])
        out.append(
            (torch.randn(2, 12000, generator=g) * 0.1, torch.tensor([12000, 10000]),
             torch.randint(0, vocab, (2, 5), generator=g), torch.tensor([5, 3]), lang)
        )  # fmt: skip
    return out


def _fit(model, batches, max_steps, accumulate, ckpt_path=None, root=None):
    rec = _Recorder()
    trainer = pl.Trainer(
        max_steps=max_steps, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accumulate_grad_batches=accumulate,
        callbacks=[rec], default_root_dir=root,
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(batches, batch_size=None)
    trainer.fit(model, train_dataloaders=loader, ckpt_path=ckpt_path)
    return trainer, rec.rows


def test_schedules_follow_optimizer_steps_with_accumulation_and_resume(en_tokenizer_dir, tmp_path):
    from maya_asr.models import MayaHybridTDTCTCModel

    cfg = smoke_config(
        en_tokenizer_dir, encoder_freeze_steps=2, ctc_warmup_steps=4, language_dropout=0.5
    )
    torch.manual_seed(0)
    model = MayaHybridTDTCTCModel(cfg)
    batches = _batches(model.tokenizer.vocab_size, 16)
    initial = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    # 3 optimizer steps of 2 micro-batches each, then a checkpoint.
    trainer, rows = _fit(model, batches, max_steps=3, accumulate=2, root=tmp_path)
    ckpt = tmp_path / "mid.ckpt"
    trainer.save_checkpoint(ckpt)
    # Resume in a fresh model up to 5 optimizer steps.
    torch.manual_seed(1)
    resumed = MayaHybridTDTCTCModel(cfg)
    _, more = _fit(resumed, batches, max_steps=5, accumulate=2, ckpt_path=ckpt, root=tmp_path)
    rows += more

    assert [r["step"] for r in rows] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    for r in rows:
        assert r["ctc"] == pytest.approx(ctc_weight_at(r["step"], 4, 0.3))
        assert r["frozen"] == encoder_frozen_at(r["step"], 2)
        assert r["bn_training"] == (not r["frozen"])
    # Frozen steps leave weights *and* BatchNorm statistics exactly as loaded.
    for r in rows[:4]:
        for key, value in initial.items():
            assert torch.equal(r["encoder"][key], value), key
    # The first unfrozen update (step 2, ends with micro-batch 6) moves the encoder.
    moved = rows[5]["encoder"]
    assert any(not torch.equal(moved[k], initial[k]) for k in initial if k.endswith("weight"))
