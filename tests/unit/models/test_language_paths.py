"""The language vector reaches every path that runs the encoder: training (with a gradient),
prediction, export, cache-aware streaming and transcribe (positional arguments, manifests)."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import pytest
import soundfile as sf
import torch
from model_support import smoke_config
from omegaconf import open_dict


def _batch(model, B=3, n=16000):
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(B, n, generator=g) * 0.1
    tokens = torch.randint(1, model.tokenizer.vocab_size, (B, 5), generator=g)
    return audio, torch.full((B,), n), tokens, torch.full((B,), 5)


class _Seen:
    """Language ids every call of the language embedding saw."""

    def __init__(self, model):
        self.ids: list[list[int]] = []
        self._hook = model.lang_embedding.register_forward_hook(
            lambda mod, args, out: self.ids.append(args[1].tolist())
        )

    def close(self):
        self._hook.remove()


class _GradOfLanguages(pl.Callback):
    def __init__(self):
        self.grad = None

    def on_after_backward(self, trainer, pl_module):
        self.grad = pl_module.lang_embedding.weight.grad.detach().clone()


def _train_one_step(model, batch):
    rec = _GradOfLanguages()
    trainer = pl.Trainer(
        max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[rec],
    )  # fmt: skip
    loader = torch.utils.data.DataLoader([batch], batch_size=None)
    trainer.fit(model, train_dataloaders=loader)
    return rec.grad


def test_training_with_languages_gives_their_vectors_a_gradient(en_tokenizer_dir):
    from maya_asr.models import MayaHybridTDTCTCModel

    torch.manual_seed(0)
    model = MayaHybridTDTCTCModel(smoke_config(en_tokenizer_dir, language_dropout=0.0))
    grad = _train_one_step(model, (*_batch(model), torch.tensor([0, 3, 3])))
    norms = grad.norm(dim=1)
    print(f"language-vector gradient norms: {[f'{v:.2e}' for v in norms.tolist()]}")
    assert norms[0] > 0 and norms[3] > 0  # the batch's languages learn
    others = [i for i in range(len(norms)) if i not in (0, 3)]
    assert torch.all(norms[others] == 0)
    # control: the same batch on the language-free path gives the table no gradient at all
    grad = _train_one_step(model, (*_batch(model), torch.full((3,), -1)))
    assert torch.all(grad == 0)


def test_predict_step_reads_the_fifth_element_as_languages(smoke_model):
    smoke_model.eval()
    seen = _Seen(smoke_model)
    with torch.no_grad():
        out = smoke_model.predict_step((*_batch(smoke_model), torch.tensor([2, -1, 5])), 0)
    seen.close()
    assert seen.ids == [[2, -1, 5]]
    assert [int(i) for i, _ in out] == [0, 1, 2]  # rows, not the language ids


def test_export_forward_carries_one_language_and_tdt_export_refuses(smoke_model, tmp_path):
    smoke_model.eval()
    audio, lens, _, _ = _batch(smoke_model, B=2)
    with torch.no_grad():
        feats, feat_lens = smoke_model.preprocessor(input_signal=audio, length=lens)
        smoke_model.change_decoding_strategy(decoder_type="ctc", verbose=False)
        free = smoke_model.forward_for_export(feats, feat_lens)
        with smoke_model.languages_of_batch(smoke_model.language_ids("hi", 1)):
            hindi = smoke_model.forward_for_export(feats, feat_lens)
            encoded, _ = smoke_model.encoder(audio_signal=feats, length=feat_lens)
            expected = smoke_model.ctc_decoder(encoder_output=smoke_model.apply_language(
                encoded, torch.tensor([0])))  # fmt: skip
    assert not torch.allclose(free, hindi)
    torch.testing.assert_close(hindi, expected)
    smoke_model.change_decoding_strategy(decoder_type="rnnt", verbose=False)
    with (
        smoke_model.languages_of_batch(torch.tensor([0])),
        pytest.raises(ValueError, match="cannot add the language vector"),
    ):
        smoke_model.export(str(tmp_path / "m.onnx"))


def test_cache_aware_streaming_adds_the_language(en_tokenizer_dir):
    from maya_asr.models import MayaHybridTDTCTCModel

    streaming = {
        "encoder.att_context_size": [16, 0], "encoder.conv_context_size": "causal",
        "encoder.causal_downsampling": True,
    }  # fmt: skip
    smoke_model = MayaHybridTDTCTCModel(smoke_config(en_tokenizer_dir, **streaming))
    smoke_model.eval()
    smoke_model.encoder.setup_streaming_params()
    audio, lens, _, _ = _batch(smoke_model, B=2)
    seen = _Seen(smoke_model)
    with torch.no_grad():
        feats, feat_lens = smoke_model.preprocessor(input_signal=audio, length=lens)
        cache = smoke_model.encoder.get_initial_cache_state(batch_size=2)
        smoke_model.conformer_stream_step(
            processed_signal=feats, processed_signal_length=feat_lens,
            cache_last_channel=cache[0], cache_last_time=cache[1],
            cache_last_channel_len=cache[2], lang_ids=torch.tensor([4, 7]),
        )  # fmt: skip
    seen.close()
    assert seen.ids == [[4, 7]]
    assert "cache_aware_stream_step" not in vars(smoke_model.encoder)  # wrapper removed


def test_transcribe_keeps_positional_batch_size_and_counts_manifest_rows(smoke_model, tmp_path):
    rows = []
    for i in range(3):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, (torch.randn(16000 + 1600 * i) * 0.1).numpy(), 16000)
        rows.append({"audio_filepath": str(path), "duration": 1.0 + 0.1 * i, "text": "a"})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with open_dict(smoke_model.cfg):  # NeMo's file-path transcribe reads this key
        smoke_model.cfg.validation_ds = {"use_start_end_token": False}
    seen = _Seen(smoke_model)
    hyps = smoke_model.transcribe(str(manifest), 2, language="bn", verbose=False)
    assert len(hyps) == 3 and sorted(i for ids in seen.ids for i in ids) == [1, 1, 1]
    seen.ids.clear()
    hyps = smoke_model.transcribe([r["audio_filepath"] for r in rows], 3, False, verbose=False)
    assert len(hyps) == 3 and seen.ids == [[-1, -1, -1]]  # batch_size 3 taken positionally
    seen.close()
    with pytest.raises(ValueError, match="got 2 languages for 3 audio inputs"):
        smoke_model.transcribe(str(manifest), language=["bn", "hi"], verbose=False)
