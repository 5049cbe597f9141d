"""MayaHybridTDTCTCModel: batches, language routing, optimizer groups, loss dispatch, decoding."""

from __future__ import annotations

import random

import lightning.pytorch as pl
import pytest
import torch
from model_support import shortest_utterance, smoke_config, train_tokenizer
from omegaconf import open_dict
from torch.nn.utils.rnn import pad_sequence


def _batch(model, B=3, seconds=1.0, U=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = int(16000 * seconds)
    audio = torch.randn(B, n, generator=g) * 0.1
    audio_lens = torch.tensor([n - i * 1600 for i in range(B)])
    tokens = torch.randint(0, model.tokenizer.vocab_size, (B, U), generator=g)
    token_lens = torch.tensor([U - i for i in range(B)])
    return audio, audio_lens, tokens, token_lens


def _trainer(max_steps, **kw):
    return pl.Trainer(
        max_steps=max_steps, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, **kw,
    )  # fmt: skip


def _loader(batches):
    class _DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(batches)

        def __getitem__(self, i):
            return batches[i]

    return torch.utils.data.DataLoader(_DS(), batch_size=None)


def test_language_ids_default_order_and_validation(smoke_model):
    from maya_asr.languages import LANGUAGES

    assert tuple(smoke_model.cfg.languages) == LANGUAGES
    assert smoke_model.language_ids("en", 2).tolist() == [11, 11]
    assert smoke_model.language_ids(["hi", None, "ta"], 3).tolist() == [0, -1, 2]
    assert smoke_model.language_ids(None, 3) is None
    with pytest.raises(ValueError, match="one per input"):
        smoke_model.language_ids(["hi"], 2)
    with pytest.raises(ValueError, match="not one of"):
        smoke_model.language_ids("xx", 1)


def test_bad_options_raise(en_tokenizer_dir):
    from maya_asr.models import MayaHybridTDTCTCModel

    with pytest.raises(ValueError, match="language_dropout"):
        MayaHybridTDTCTCModel(smoke_config(en_tokenizer_dir, language_dropout=1.5))
    with pytest.raises(ValueError, match="knows"):
        MayaHybridTDTCTCModel(smoke_config(en_tokenizer_dir, languages=["hi", "xx"]))


def test_language_free_path_adds_nothing_and_languages_differ(smoke_model):
    smoke_model.eval()
    audio, audio_lens, _, _ = _batch(smoke_model, B=2)
    with torch.no_grad():
        enc_free, _ = smoke_model(input_signal=audio, input_signal_length=audio_lens)
        with smoke_model.languages_of_batch(torch.tensor([-1, 3])):
            enc_mixed, _ = smoke_model(input_signal=audio, input_signal_length=audio_lens)
    torch.testing.assert_close(enc_mixed[0], enc_free[0], rtol=0, atol=0)
    expected = enc_free[1] + smoke_model.lang_embedding.weight[3][:, None]
    torch.testing.assert_close(enc_mixed[1], expected)


def test_four_tuple_batches_train_the_language_free_path(smoke_model):
    """NeMo 4-tuples and our 5-tuples with all ids -1 give the same loss."""
    batch = _batch(smoke_model)
    no_lang = torch.full((3,), -1)
    losses = []
    for b in (batch, (*batch, no_lang)):
        torch.manual_seed(0)
        random.seed(1)  # omega sampling
        trainer = _trainer(1)
        trainer.fit(smoke_model.__class__(smoke_model.cfg), train_dataloaders=_loader([b]))
        losses.append(trainer.callback_metrics["train_loss"])
    torch.testing.assert_close(losses[0], losses[1])


def test_language_dropout_drops_at_the_configured_rate():
    from maya_asr.models.language import LanguageEmbedding

    emb = LanguageEmbedding(12, 4, dropout=0.25)
    torch.manual_seed(0)
    dropped = emb.drop(torch.zeros(20000, dtype=torch.long)) == -1
    assert 0.23 < dropped.float().mean() < 0.27
    with pytest.raises(ValueError, match="out of range"):
        emb.bias(torch.tensor([12]))


def test_differential_learning_rates(smoke_model):
    smoke_model.setup_optimization(smoke_model.cfg.optim)
    groups = smoke_model._optimizer.param_groups
    by_param = {id(p): g for g in groups for p in g["params"]}
    for p in smoke_model.encoder.parameters():
        assert by_param[id(p)]["lr"] == pytest.approx(2e-5)
    for module in (smoke_model.decoder, smoke_model.joint, smoke_model.ctc_decoder):
        for p in module.parameters():
            assert by_param[id(p)]["lr"] == pytest.approx(1e-3)
            assert by_param[id(p)]["weight_decay"] == pytest.approx(1e-3)
    emb_group = by_param[id(smoke_model.lang_embedding.weight)]
    assert emb_group["lr"] == pytest.approx(1e-3) and emb_group["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(list(smoke_model.parameters()))


def test_cpu_tdt_loss_is_used_and_unsupported_options_warn(en_tokenizer_dir):
    from maya_asr.models import MayaHybridTDTCTCModel
    from maya_asr.models.model import DeviceTDTLoss

    cfg = smoke_config(en_tokenizer_dir, **{"loss.tdt_kwargs.fastemit_lambda": 0.001})
    model = MayaHybridTDTCTCModel(cfg)
    assert isinstance(model.loss._loss, DeviceTDTLoss)
    assert model.joint._loss is model.loss  # the fused joint computes the same loss
    audio, audio_lens, tokens, token_lens = _batch(model)
    encoded, encoded_len = model(input_signal=audio, input_signal_length=audio_lens)
    decoded, _, _ = model.decoder(targets=tokens, target_length=token_lens)
    joint = model.joint.joint(encoded.transpose(1, 2), decoded.transpose(1, 2))
    with pytest.warns(UserWarning, match="fastemit_lambda"):
        loss = model.loss(
            log_probs=joint, targets=tokens, input_lengths=encoded_len, target_lengths=token_lens
        )
    assert torch.isfinite(loss)


def test_transcribe_routes_languages_in_input_order(smoke_model):
    seen = []
    hook = smoke_model.lang_embedding.register_forward_hook(
        lambda mod, args, out: seen.append(args[1].tolist())
    )
    audio = [torch.randn(16000 + 800 * i).numpy() * 0.1 for i in range(3)]
    hyps = smoke_model.transcribe(audio, language=["en", "bn", None], batch_size=2, verbose=False)
    assert len(hyps) == 3 and all(isinstance(h.text, str) for h in hyps)
    assert seen == [[11, 1], [-1]]
    seen.clear()
    smoke_model.transcribe(audio, batch_size=3, verbose=False)
    assert seen == [[-1, -1, -1]]
    hook.remove()


def test_decoding_switch_both_ways(smoke_model):
    from nemo.collections.asr.parts.submodules.rnnt_decoding import RNNTDecodingConfig
    from omegaconf import OmegaConf

    audio = [torch.randn(16000).numpy() * 0.1]
    tdt = smoke_model.transcribe(audio, verbose=False)[0].text
    smoke_model.change_decoding_strategy(decoder_type="ctc", verbose=False)
    assert smoke_model.cur_decoder == "ctc"
    smoke_model.transcribe(audio, language="hi", verbose=False)
    for strategy in ("greedy", "greedy_batch"):
        cfg = OmegaConf.structured(RNNTDecodingConfig(strategy=strategy))
        with open_dict(cfg):
            cfg.model_type = "tdt"
            cfg.durations = list(smoke_model.cfg.model_defaults.tdt_durations)
        smoke_model.change_decoding_strategy(cfg, decoder_type="rnnt", verbose=False)
        assert smoke_model.cur_decoder == "rnnt"
        assert smoke_model.transcribe(audio, verbose=False)[0].text == tdt


@pytest.mark.slow
def test_memorises_three_languages_with_both_heads(tiny_corpus, tmp_path):
    """The smoke model learns 3 demo utterances (en, bn, hi) until both heads are exact."""
    from maya_asr.models import MayaHybridTDTCTCModel

    langs = ["en", "bn", "hi"]
    utts = [shortest_utterance(tiny_corpus, lang) for lang in langs]
    texts = [text for _, text in utts]
    # A near-character vocabulary so every utterance is several tokens long.
    vocab = len(set("".join(texts))) + 4
    tok = train_tokenizer(texts, tmp_path / "tok", vocab_size=vocab)
    torch.manual_seed(0)
    random.seed(0)
    cfg = smoke_config(tok, language_dropout=0.0, **{"optim.lr": 3e-3})
    with open_dict(cfg):
        del cfg["optim_param_groups"]  # from scratch: the encoder needs the full LR
    model = MayaHybridTDTCTCModel(cfg)
    ids = [torch.tensor(model.tokenizer.text_to_ids(t)) for t in texts]
    batch = (
        pad_sequence([torch.from_numpy(a) for a, _ in utts], batch_first=True),
        torch.tensor([len(a) for a, _ in utts]),
        pad_sequence(ids, batch_first=True),
        torch.tensor([len(i) for i in ids]),
        model.language_ids(langs, 3),
    )

    def transcripts(decoder_type):
        model.change_decoding_strategy(decoder_type=decoder_type, verbose=False)
        # A DataLoader of our 5-tuples: transcribe takes the languages from the batch.
        return [h.text for h in model.transcribe(_loader([batch]), verbose=False)]

    for _ in range(8):
        _trainer(50).fit(model, train_dataloaders=_loader([batch] * 50))
        if transcripts("rnnt") == texts and transcripts("ctc") == texts:
            break
    assert transcripts("rnnt") == texts
    assert transcripts("ctc") == texts
