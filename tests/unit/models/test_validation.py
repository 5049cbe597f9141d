"""In-training validation decodes each batch once and scores the same hypotheses a separate
decode would give."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from maya_asr.training.validation import HEADS, LanguageValidation, decode_batch


class _Texts:
    """The validation dataset's reference lookup: (language, text) per row."""

    def texts(self, rows):
        return [("en", "a b") for _ in rows]


def _val_batches(model, n_batches=2, B=3):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n_batches):
        audio = torch.randn(B, 16000, generator=g) * 0.1
        tokens = torch.randint(1, model.tokenizer.vocab_size, (B, 4), generator=g)
        lens = torch.full((B,), 16000)
        out.append((audio, lens, tokens, torch.full((B,), 4), torch.tensor([0, 1, -1])))
    return out


def test_validation_decodes_each_batch_once_with_the_same_hypotheses(smoke_model, monkeypatch):
    model = smoke_model
    batches = _val_batches(model)
    calls = {"encoder": 0, "tdt": 0, "ctc": 0}
    model.encoder.register_forward_hook(
        lambda *a: calls.__setitem__("encoder", calls["encoder"] + 1)
    )
    for head, obj, name in (
        ("tdt", type(model.decoding), "rnnt_decoder_predictions_tensor"),
        ("ctc", type(model.ctc_decoding), "ctc_decoder_predictions_tensor"),
    ):
        original = getattr(obj, name)

        def counted(self, *args, _orig=original, _head=head, **kwargs):
            calls[_head] += 1
            return _orig(self, *args, **kwargs)

        monkeypatch.setattr(obj, name, counted)

    validation = LanguageValidation(_Texts(), [[0, 1, 2], [3, 4, 5]])
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[validation],
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(batches, batch_size=None)
    trainer.validate(model, dataloaders=loader, verbose=False)
    print(f"per validation of 2 batches: {calls}")
    assert calls == {"encoder": 2, "tdt": 2, "ctc": 2}  # one of each per batch (was 4/4/4)

    model.eval()
    separate = [decode_batch(model, b) for b in batches]
    for head in HEADS:
        expected = [text for d in separate for text in d[head]]
        assert [validation._hyps[r][head] for r in range(6)] == expected
    assert set(validation.last_scores) == set(HEADS)
