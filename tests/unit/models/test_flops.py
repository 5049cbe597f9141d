"""The analytic FLOP count (maya_asr.models.flops) agrees with torch's FlopCounterMode, component
by component, on a model built from the smoke config: the MFU `make gpu-check` reports rests on it.
"""

from __future__ import annotations

import pytest
import torch
from model_support import smoke_config
from torch.utils.flop_counter import FlopCounterMode

from maya_asr.models.flops import ModelDims, forward_flops

BATCH, SECONDS, TOKENS = 2, 1.3, 7


def _counted(fn) -> tuple[int, object]:
    counter = FlopCounterMode(display=False)
    with counter:
        out = fn()
    return counter.get_total_flops(), out


def _lstm_unrolled(lstm: torch.nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """The LSTM as explicit matmuls (FlopCounterMode counts the fused LSTM kernel as 0 FLOPs):
    the same weights, the same shapes, so counting this counts the LSTM's matmuls."""
    b, steps, _ = x.shape
    for layer in range(lstm.num_layers):
        w_ih, w_hh = getattr(lstm, f"weight_ih_l{layer}"), getattr(lstm, f"weight_hh_l{layer}")
        h = x.new_zeros(b, lstm.hidden_size)
        c = x.new_zeros(b, lstm.hidden_size)
        outs = []
        for t in range(steps):
            gates = x[:, t] @ w_ih.T + h @ w_hh.T
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        x = torch.stack(outs, dim=1)
    return x


@pytest.fixture(scope="module")
def model_and_counts(tmp_path_factory):
    from model_support import ENGLISH_TEXTS, train_tokenizer

    from maya_asr.models import MayaHybridTDTCTCModel

    tok = train_tokenizer(ENGLISH_TEXTS, tmp_path_factory.mktemp("tok_flops"), vocab_size=40)
    torch.manual_seed(0)
    model = MayaHybridTDTCTCModel(smoke_config(tok)).eval()
    samples = int(SECONDS * model.cfg.preprocessor.sample_rate)
    audio = torch.randn(BATCH, samples) * 0.1
    lengths = torch.full((BATCH,), samples)
    tokens = torch.randint(1, model.tokenizer.vocab_size, (BATCH, TOKENS))
    counts = {}
    with torch.no_grad():
        counts["preprocessor"], (mel, mel_len) = _counted(
            lambda: model.preprocessor(input_signal=audio, length=lengths)
        )
        counts["subsampling"], _ = _counted(
            lambda: model.encoder.pre_encode(x=mel.transpose(1, 2), lengths=mel_len)
        )
        counts["encoder"], (enc, _) = _counted(
            lambda: model.encoder(audio_signal=mel, length=mel_len)
        )
        embedded = model.decoder.prediction["embed"](
            torch.nn.functional.pad(tokens, (1, 0), value=model.decoder.blank_idx)
        )
        counts["predictor"], pred = _counted(
            lambda: _lstm_unrolled(model.decoder.prediction["dec_rnn"].lstm, embedded)
        )
        counts["joint"], _ = _counted(lambda: model.joint.joint(enc.transpose(1, 2), pred))
        counts["ctc"], _ = _counted(lambda: model.ctc_decoder(encoder_output=enc))
    dims = ModelDims.from_config(model.cfg, model.tokenizer.vocab_size)
    return model, dims, samples, counts, int(enc.shape[-1])


def test_encoder_frames_match_the_model(model_and_counts):
    _, dims, samples, _, frames = model_and_counts
    assert dims.encoder_frames(samples) == frames


@pytest.mark.parametrize("component", ["preprocessor", "subsampling", "predictor", "joint", "ctc"])
def test_component_flops_match_flop_counter(model_and_counts, component):
    _, dims, samples, counts, _ = model_and_counts
    ours = forward_flops(dims, BATCH, samples, TOKENS)[component]
    print(f"{component}: analytic {ours:,} vs FlopCounterMode {counts[component]:,}")
    assert ours == pytest.approx(counts[component], rel=0.01), (component, ours, counts[component])


def test_encoder_flops_match_flop_counter(model_and_counts):
    # The encoder forward holds the subsampling and the Conformer layers.
    _, dims, samples, counts, _ = model_and_counts
    ours = forward_flops(dims, BATCH, samples, TOKENS)
    print(f"encoder: analytic {ours['subsampling'] + ours['encoder_layers']:,} vs "
          f"FlopCounterMode {counts['encoder']:,}")  # fmt: skip
    assert ours["subsampling"] + ours["encoder_layers"] == pytest.approx(
        counts["encoder"], rel=0.01
    )


def test_unmodelled_encoders_are_refused(model_and_counts):
    from omegaconf import open_dict

    model = model_and_counts[0]
    cfg = model.cfg.copy()
    with open_dict(cfg):
        cfg.encoder.subsampling = "striding"
    with pytest.raises(ValueError, match="FlopCounterMode"):
        ModelDims.from_config(cfg, 40)
