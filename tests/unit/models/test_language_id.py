"""The language-ID head: trains, supplies the vector when no language is given, never overrides a
given language, and survives save/restore and the stock export."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from model_support import smoke_config


def _lid_model(tokenizer_dir, **overrides):
    from maya_asr.models import MayaHybridTDTCTCModel

    torch.manual_seed(0)
    return MayaHybridTDTCTCModel(smoke_config(tokenizer_dir, lid_loss_weight=1.0, **overrides))


def _audio(B=4, seconds=1.0, seed=0):
    """(B, N) audio whose rows differ in spectrum (so pooled encoder outputs differ by row)."""
    g = torch.Generator().manual_seed(seed)
    n = int(16000 * seconds)
    t = torch.arange(n) / 16000
    rows = [torch.sin(2 * torch.pi * (200 + 450 * i) * t) * 0.3 for i in range(B)]
    audio = torch.stack(rows) + torch.randn(B, n, generator=g) * 0.01
    return audio, torch.tensor([n - i * 1600 for i in range(B)])


def _encoder_only(model, audio, audio_lens):
    """NeMo's encoder output without any language conditioning."""
    from nemo.collections.asr.models import EncDecHybridRNNTCTCBPEModel

    return EncDecHybridRNNTCTCBPEModel.forward(
        model, input_signal=audio, input_signal_length=audio_lens
    )


def _fit(model, batch, steps):
    class _DS(torch.utils.data.Dataset):
        def __len__(self):
            return steps

        def __getitem__(self, i):
            return batch

    trainer = pl.Trainer(
        max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(_DS(), batch_size=None))
    return trainer


def test_models_without_lid_weight_have_no_head_and_bad_mode_raises(en_tokenizer_dir, smoke_model):
    from maya_asr.models import MayaHybridTDTCTCModel

    assert smoke_model.lid_head is None
    assert _lid_model(en_tokenizer_dir).lid_head is not None
    with pytest.raises(ValueError, match="lid_mode"):
        MayaHybridTDTCTCModel(smoke_config(en_tokenizer_dir, lid_loss_weight=0.1, lid_mode="x"))
    with pytest.raises(ValueError, match="lid_loss_weight"):
        MayaHybridTDTCTCModel(smoke_config(en_tokenizer_dir, lid_loss_weight=-1.0))


def test_lid_head_learns_the_languages_of_a_tiny_batch(en_tokenizer_dir):
    """Through the training step: the language-ID cross-entropy falls, the head gets them right."""
    from maya_asr.models.language import lid_loss

    model = _lid_model(en_tokenizer_dir, language_dropout=0.5)
    audio, audio_lens = _audio()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, model.tokenizer.vocab_size, (4, 5), generator=g)
    token_lens = torch.tensor([5, 4, 3, 5])
    langs = torch.tensor([0, 3, 7, 11])

    def ce():
        model.eval()
        with torch.no_grad(), model.languages_of_batch(langs):
            model(input_signal=audio, input_signal_length=audio_lens)
        return lid_loss(model._lid_logits, langs)

    before, _ = ce()
    trainer = _fit(model, (audio, audio_lens, tokens, token_lens, langs), steps=30)
    after, accuracy = ce()
    assert "lid_loss" in trainer.callback_metrics and "lid_acc" in trainer.callback_metrics
    assert after < 0.5 * before, (before, after)
    assert accuracy == 1.0


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_language_free_rows_get_the_lid_vector_and_given_languages_override(en_tokenizer_dir, mode):
    model = _lid_model(en_tokenizer_dir, lid_mode=mode).eval()
    with torch.no_grad():  # a head that is not near-uniform, so soft and hard differ from a mean
        model.lid_head.net[-1].weight.mul_(50.0)
    audio, audio_lens = _audio()
    with torch.no_grad():
        raw, raw_len = _encoder_only(model, audio, audio_lens)
        logits = model.lid_head(raw, raw_len)
        free, _ = model(input_signal=audio, input_signal_length=audio_lens)
        with model.languages_of_batch(torch.tensor([3, -1, 5, -1])):
            mixed, _ = model(input_signal=audio, input_signal_length=audio_lens)
    table = model.lang_embedding.weight
    if mode == "soft":
        expected = torch.softmax(logits, dim=-1) @ table
    else:
        expected = table[logits.argmax(dim=-1)]
    vectors = (free - raw).mean(dim=-1)  # (B, D): the vector added to every frame
    torch.testing.assert_close(vectors, expected, rtol=1e-4, atol=1e-5)
    if mode == "soft":  # the vector follows the input (hard: rows of the table, checked above)
        assert not torch.allclose(vectors[0], vectors[2], atol=1e-4)
    # a given language is added exactly, whatever the head thinks
    torch.testing.assert_close(mixed[0], raw[0] + table[3][:, None])
    torch.testing.assert_close(mixed[2], raw[2] + table[5][:, None])
    torch.testing.assert_close(mixed[1], free[1])


def test_transcribe_without_language_uses_lid_with_language_does_not(en_tokenizer_dir):
    model = _lid_model(en_tokenizer_dir).eval()
    seen = []
    real = model.lang_embedding.forward

    def spy(encoded, lang_ids, free=None):
        seen.append((lang_ids.tolist(), free is not None))
        return real(encoded, lang_ids, free)

    model.lang_embedding.forward = spy
    audio = [a.numpy() for a in _audio(B=2)[0]]
    model.transcribe(audio, batch_size=2, verbose=False)
    model.transcribe(audio, language="hi", batch_size=2, verbose=False)
    assert seen == [([-1, -1], True), ([0, 0], False)]


def test_restore_from_keeps_the_lid_head(en_tokenizer_dir, tmp_path):
    from nemo.collections.asr.models import ASRModel

    import maya_asr  # noqa: F401  (registers our class for restore_from)

    model = _lid_model(en_tokenizer_dir, lid_mode="hard").eval()
    model.save_to(str(tmp_path / "m.nemo"))
    restored = ASRModel.restore_from(str(tmp_path / "m.nemo"), map_location="cpu").eval()
    assert restored.lid_head is not None and restored.lid_mode == "hard"
    audio, audio_lens = _audio(B=2)
    with torch.no_grad():
        ours, _ = model(input_signal=audio, input_signal_length=audio_lens)
        theirs, _ = restored(input_signal=audio, input_signal_length=audio_lens)
        probs = restored.identify_language(audio, audio_lens)
    torch.testing.assert_close(theirs, ours)
    assert probs.shape == (2, 12)
    torch.testing.assert_close(probs.sum(dim=-1), torch.ones(2))


def test_stock_export_of_a_lid_model_loads_in_stock_nemo(en_tokenizer_dir, tmp_path):
    from nemo.collections.asr.models import EncDecHybridRNNTCTCBPEModel

    from maya_asr.models import export_stock_nemo

    model = _lid_model(en_tokenizer_dir).eval()
    out = export_stock_nemo(model, "hi", tmp_path / "stock.nemo")
    stock = EncDecHybridRNNTCTCBPEModel.restore_from(str(out), map_location="cpu").eval()
    audio, audio_lens = _audio(B=1)
    with torch.no_grad(), model.languages_of_batch(model.language_ids("hi", 1)):
        ours, _ = model(input_signal=audio, input_signal_length=audio_lens)
        ctc = model.ctc_decoder(encoder_output=ours)
        stock_enc, _ = stock(input_signal=audio, input_signal_length=audio_lens)
        stock_ctc = stock.ctc_decoder(encoder_output=stock_enc)
    torch.testing.assert_close(stock_ctc, ctc, rtol=1e-5, atol=1e-5)


def test_evaluation_reports_the_lid_heads_accuracy(en_tokenizer_dir, smoke_model, tmp_path):
    import soundfile as sf

    from maya_asr.inference.evaluation import language_id_accuracy
    from maya_asr.inference.inputs import files_to_inputs
    from maya_asr.inference.report import language_id_report

    model = _lid_model(en_tokenizer_dir).eval()
    audio, lens = _audio(B=5)
    paths = []
    for i, (row, n) in enumerate(zip(audio, lens.tolist(), strict=True)):
        paths.append(tmp_path / f"clip{i}.wav")
        sf.write(paths[-1], row[:n].numpy(), 16000)
    inputs = files_to_inputs(paths)
    # longest first, so rows are visited en, ta, hi, hi; the last has no language: not counted
    truth = ["en", "ta", "hi", "hi", None]
    for item, lang in zip(inputs, truth, strict=True):
        if lang:
            item.row["lang"] = lang
    seen = []

    def always_hindi(batch, batch_lens):  # the head says "hi" for everything
        seen.append(batch.shape[0])
        probs = torch.zeros(batch.shape[0], len(model.cfg.languages))
        probs[:, model.cfg.languages.index("hi")] = 1.0
        return probs

    model.identify_language = always_hindi
    acc = language_id_accuracy(model, inputs, batch_size=2)
    assert sum(seen) == 4 and max(seen) <= 2
    assert acc["all"] == {"utterances": 4, "correct": 2, "accuracy": 0.5}
    assert list(acc) == ["all", "hi", "ta", "en", "confusions", "skipped"]  # model order
    assert acc["hi"]["accuracy"] == 1.0 and acc["ta"]["accuracy"] == acc["en"]["accuracy"] == 0.0
    assert acc["confusions"] == {"hi": {"hi": 2}, "ta": {"hi": 1}, "en": {"hi": 1}}
    assert acc["skipped"] == 0
    assert "| tiny | 1.000 | 0.000 | 0.000 | 0.500 |" in language_id_report({"tiny": acc})
    del model.identify_language  # the real head runs end to end too
    real = language_id_accuracy(model, inputs, batch_size=2)
    assert real["all"]["utterances"] == 4 and 0.0 <= real["all"]["accuracy"] <= 1.0
    assert language_id_accuracy(smoke_model, inputs) is None  # no head, nothing to report
