"""The pretrained demo encoder is a drop-in for the hybrid model's encoder, and its run resumes."""

from __future__ import annotations

import csv
import io
import json
import tarfile

import numpy as np
import soundfile as sf
import torch
from model_support import smoke_config
from omegaconf import OmegaConf

from maya_asr.data import raw_format
from maya_asr.models.pretrain_ctc import EncoderDims
from maya_asr.training.pretrain import PretrainConfig, run_pretraining

TINY = EncoderDims(
    n_layers=1, d_model=32, n_heads=2, ff_expansion_factor=2, subsampling_conv_channels=8,
    dropout=0.0,
)  # fmt: skip
TEXTS = ("ab ba", "abc", "ba ab", "ca", "bc ab", "cab")


def _tiny_corpus(root):
    """Two languages x three one-second tones in the raw shard format."""
    t = np.arange(16000) / 16000
    for li, lang in enumerate(("de", "fr")):
        shard = root / lang / raw_format.shard_name(0)
        shard.parent.mkdir(parents=True)
        with tarfile.open(shard, "w") as tar:
            for i in range(3):
                buf = io.BytesIO()
                sf.write(buf, 0.3 * np.sin(2 * np.pi * (220 + 90 * i) * t), 16000, format="WAV")
                raw_format.add_member(tar, f"{lang}_{i}.wav", buf.getvalue())
                meta = raw_format.metadata_bytes(TEXTS[3 * li + i], lang, f"{lang}-m1")
                raw_format.add_member(tar, f"{lang}_{i}.json", meta)
    return root


def _config(tmp_path, **kw):
    return PretrainConfig(
        corpus_root=tmp_path / "corpus", out_dir=tmp_path / "out", work_dir=tmp_path / "work",
        dims=TINY, vocab_size=12, max_steps=3, warmup_steps=1, batch_seconds=4.0,
        checkpoint_every=2, log_every=1, val_utterances=2, **kw,
    )  # fmt: skip


def test_saved_encoder_loads_strictly_and_a_second_run_resumes(tmp_path, en_tokenizer_dir):
    from maya_asr.models import MayaHybridTDTCTCModel, load_pretrained_encoder

    _tiny_corpus(tmp_path / "corpus")
    first = run_pretraining(_config(tmp_path), stop_after=2, log=lambda m: None)
    assert first["step"] == 2
    second = run_pretraining(_config(tmp_path), log=lambda m: None)  # resumes at 2, ends at 3
    assert second["step"] == 3
    with open(tmp_path / "out" / "curve.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["step"] == 3 and summary["settings"]["dims"]["d_model"] == 32

    block = OmegaConf.load(tmp_path / "out" / "encoder.yaml").encoder
    torch.manual_seed(0)
    model = MayaHybridTDTCTCModel(smoke_config(en_tokenizer_dir, encoder=block))
    saved = torch.load(tmp_path / "out" / "encoder.pt", weights_only=True)
    report = load_pretrained_encoder(model, tmp_path / "out" / "encoder.pt", strict=True)
    assert report.ok and len(report.loaded) == len(saved) == len(model.encoder.state_dict())
    for key, tensor in model.encoder.state_dict().items():
        assert torch.equal(tensor, saved[key]), key


def test_encoder_pt_keeps_the_checkpoint_with_the_lowest_heldout_cer(tmp_path, monkeypatch):
    import maya_asr.training.pretrain as pretrain

    _tiny_corpus(tmp_path / "corpus")
    cfg = _config(tmp_path, freq_masks=0, time_masks=0)
    cers = iter([0.5, 0.7])  # step 2 is the best; step 3 (the end) is worse
    monkeypatch.setattr(pretrain, "evaluate", lambda *a, **k: (1.0, next(cers)))
    run_pretraining(cfg, stop_after=2, log=lambda m: None)
    at_step_2 = torch.load(tmp_path / "out" / "encoder.pt", weights_only=True)
    summary = run_pretraining(cfg, log=lambda m: None)
    assert summary["step"] == 3 and summary["val_cer"] == 0.7
    assert summary["encoder_pt"] == {"step": 2, "val_loss": 1.0, "val_cer": 0.5}
    kept = torch.load(tmp_path / "out" / "encoder.pt", weights_only=True)
    last = torch.load(tmp_path / "work" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(kept[k], at_step_2[k]) for k in at_step_2)
    assert any(not torch.equal(kept[k], last[f"encoder.{k}"]) for k in kept)


def test_a_run_refuses_to_resume_another_runs_checkpoint(tmp_path):
    import pytest

    _tiny_corpus(tmp_path / "corpus")
    run_pretraining(_config(tmp_path), stop_after=2, log=lambda m: None)
    other = _config(tmp_path, time_masks=2)  # same corpus, other augmentation
    with pytest.raises(ValueError, match=r"differs in: spec_augment.*delete"):
        run_pretraining(other, log=lambda m: None)
