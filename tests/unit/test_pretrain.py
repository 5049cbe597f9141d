"""CTC pretraining of the demo encoder: batches, CTC feasibility, frame counts, a learning step."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from maya_asr.models.pretrain_ctc import EncoderDims
from maya_asr.training.pretrain import (
    PretrainConfig,
    Utterance,
    collate,
    ctc_feasible,
    encoder_frames,
    plan_batches,
    split_heldout,
    train_step,
)

TINY = EncoderDims(
    n_layers=1, d_model=32, n_heads=2, ff_expansion_factor=2, subsampling_conv_channels=8,
    dropout=0.0,
)  # fmt: skip


def test_every_utterance_is_batched_once_and_no_batch_exceeds_the_cap():
    rng = random.Random(0)
    seconds = [rng.uniform(0.3, 12.0) for _ in range(500)] + [50.0]
    batches = plan_batches(seconds, batch_seconds=40.0, max_batch_size=8, rng=random.Random(1))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(seconds)))
    for b in batches:
        assert len(b) <= 8
        assert max(seconds[i] for i in b) * len(b) <= 40.0 or len(b) == 1
    assert plan_batches(seconds, 40.0, 8, random.Random(1)) == batches  # seeded
    assert plan_batches(seconds, 40.0, 8, random.Random(2)) != batches


def test_ctc_feasibility_counts_a_blank_between_repeats():
    assert ctc_feasible([1, 2, 3], 3)
    assert not ctc_feasible([1, 1, 2], 3)  # 1 _ 1 2 needs four frames
    assert ctc_feasible([1, 1, 2], 4)
    assert not ctc_feasible([], 10)  # nothing to learn from


def test_heldout_split_is_disjoint_and_covers_every_language():
    utts = [
        Utterance(f"{lang}_{i}", lang, "a b", np.zeros(160, np.int16))
        for lang in ("en", "de", "fr")
        for i in range(20)
    ]
    train, held = split_heldout(utts, 7, seed=0)
    assert len(held) == 7 and len(train) == 53
    assert not {u.key for u in train} & {u.key for u in held}
    assert {u.lang for u in held} == {"en", "de", "fr"}
    assert split_heldout(utts, 7, seed=0)[1] == held


def test_config_errors_say_what_to_change(tmp_path):
    with pytest.raises(ValueError, match="warmup_steps=50 must lie in"):
        PretrainConfig(corpus_root=tmp_path, max_steps=10, warmup_steps=50)
    with pytest.raises(ValueError, match="val_utterances must be at least 1"):
        PretrainConfig(corpus_root=tmp_path, val_utterances=0)
    with pytest.raises(ValueError, match="multiple of n_heads"):
        EncoderDims(d_model=100, n_heads=3)


def _model(vocab: int):
    from maya_asr.models.pretrain_ctc import CTCPretrainModel

    torch.manual_seed(0)
    return CTCPretrainModel(TINY, vocab_size=vocab)


@pytest.mark.parametrize("factor", [4, 8])
def test_frame_count_matches_the_encoder(factor):
    from maya_asr.models.pretrain_ctc import CTCPretrainModel

    dims = EncoderDims(**{**TINY.__dict__, "subsampling_factor": factor})
    model = CTCPretrainModel(dims, vocab_size=5).eval()
    lengths = torch.tensor([16000, 12345, 4000, 161])
    with torch.no_grad():
        _, enc_len = model(torch.zeros(4, 16000), lengths)
    assert enc_len.tolist() == [encoder_frames(int(n), factor) for n in lengths]


def test_training_steps_reduce_the_loss_on_a_tiny_batch():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    utts = []
    for k, tokens in enumerate(([1, 2, 3], [3, 1], [2, 2, 4, 1])):
        tone = 0.3 * np.sin(2 * np.pi * (200 + 150 * k) * t) + 0.01 * rng.standard_normal(16000)
        pcm = (tone * 32767).astype(np.int16)
        utts.append(Utterance(f"u{k}", "en", "x", pcm, tokens))
    model = _model(vocab=5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = collate(utts)
    losses = [train_step(model, optimizer, None, batch, grad_clip=1.0) for _ in range(30)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]


def test_readme_progress_is_rewritten_between_its_markers_only(tmp_path):
    from maya_asr.training.pretrain import README_END, README_START, update_readme

    rows = ["step,epoch,loss,lr,wall_s,audio_hours,val_loss,val_cer"]
    rows += [f"{s},0,{9 - s / 100},1e-3,{s * 10},{s / 100},{'' if s % 50 else 8 - s / 100},0.9"
             for s in range(25, 301, 25)]  # fmt: skip
    (tmp_path / "curve.csv").write_text("\n".join(rows) + "\n")
    summary = {"step": 300, "epoch": 0, "train_loss": 6.0, "val_loss": 5.0, "val_cer": 0.9,
               "wall_s": 3600.0, "audio_hours_seen": 3.0, "train_hours": 1.5}  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n{README_START}\nold\n{README_END}\ntail\n")
    update_readme(readme, tmp_path)
    text = readme.read_text()
    assert text.startswith("# title\n") and text.endswith(f"{README_END}\ntail\n")
    assert "old" not in text and "As of step **300**" in text and "2.0 epochs" in text
    steps = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    assert steps[1:] == ["50", "100", "150", "200", "250", "300"]  # the checkpoints, header first
    update_readme(readme, tmp_path)
    assert readme.read_text() == text  # idempotent


def test_spec_augment_masks_features_while_training_only():
    from maya_asr.models.pretrain_ctc import CTCPretrainModel, spec_augment_block

    assert spec_augment_block(0, 0) == {}
    model = CTCPretrainModel(TINY, vocab_size=5, spec_augment=spec_augment_block(2, 5))
    seen = []
    model.spec_augment.register_forward_hook(lambda m, args, kwargs, out: seen.append(out),
                                             with_kwargs=True)  # fmt: skip
    audio, lengths = 0.1 * torch.randn(2, 16000), torch.tensor([16000, 12000])
    model.train()(audio, lengths)
    assert len(seen) == 1 and (seen[0] == 0).any()  # NeMo masks with zeros
    with torch.no_grad():
        model.eval()(audio, lengths)
    assert len(seen) == 1
