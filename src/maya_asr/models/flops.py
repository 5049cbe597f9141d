"""Analytic FLOP count of the hybrid TDT+CTC FastConformer, from its config (no model built).

What is counted, and how: the floating-point operations of every matrix multiply and
convolution of one forward pass, at 2 FLOPs per multiply-accumulate — the convention of
``torch.utils.flop_counter.FlopCounterMode``, against which ``tests/unit/models/test_flops.py``
checks this count on a tiny model. Element-wise work (activations, norms, softmax, the
additive language vector, the mel FFT) and the TDT/CTC loss recursions are not counted: they are
memory-bound, not matmul-bound, and below 1% of the matmul FLOPs at production sizes.

A training step is taken as 3 x forward (the backward pass computes two matmuls per forward
matmul: gradients of the input and of the weight), the usual model-FLOPs convention for MFU
(PaLM appendix B); activation recomputation, if any, is not counted.

Counted per forward, for B clips of N samples and U tokens (shapes as the model pads them):

- preprocessor: the mel filterbank matmul, (n_mels x (n_fft/2+1)) on every 10-ms frame;
- subsampling (dw_striding): a 3x3 stride-2 conv, then (depthwise 3x3 stride-2 + pointwise 1x1)
  per further halving, then the linear layer from (channels x frequency bins) to d_model;
- each Conformer layer: two feed-forward modules (d -> ff*d -> d), relative-position attention
  (q, k, v, out and the position projection, which runs once on the 2T-1 positions, not per
  clip; the content and position scores and the weighted values), the convolution module
  (pointwise d -> 2d, depthwise k, pointwise d -> d);
- predictor: LSTM layers over U+1 steps (blank/SOS prepended);
- joint: encoder and predictor projections, then the output layer on every (t, u) pair:
  B x T x (U+1) x joint_hidden x (vocab + 1 + durations) — the largest single term at 32K;
- CTC head: a 1x1 conv from d_model to vocab + 1 on every encoder frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TRAIN_FACTOR = 3  # forward + backward (2 x forward), see module doc


def _conv_len(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class ModelDims:
    """The sizes the FLOP count needs, read from a model config."""

    sample_rate: int  # audio samples per second
    hop: int  # samples between mel frames (window_stride x sample_rate)
    n_fft: int  # FFT size of the mel spectrogram
    n_mels: int  # mel bins = encoder input features
    conv_channels: int  # subsampling conv channels
    subsampling_factor: int  # time reduction of the subsampling (a power of 2)
    n_layers: int  # Conformer layers
    d_model: int  # encoder width
    ff_expansion: int  # feed-forward inner width / d_model
    conv_kernel: int  # depthwise conv kernel of the convolution module
    pred_hidden: int  # predictor LSTM width
    pred_layers: int  # predictor LSTM layers
    joint_hidden: int  # joint hidden width
    vocab_size: int  # tokenizer vocabulary (without blank)
    extra_outputs: int  # TDT duration outputs of the joint

    @classmethod
    def from_config(cls, model_cfg, vocab_size: int) -> ModelDims:
        """Sizes from a model config (``configs/train/*.yaml``'s ``model:``, or ``model.cfg``)."""
        enc, pre = model_cfg.encoder, model_cfg.preprocessor
        target = str(enc.get("_target_", ""))
        if not target.endswith("ConformerEncoder") or enc.get("subsampling") != "dw_striding":
            raise ValueError(
                f"flops: only a ConformerEncoder with dw_striding subsampling is modelled, got "
                f"{target} / {enc.get('subsampling')}; count this model with FlopCounterMode"
            )
        if int(enc.get("feat_out", -1)) > 0 or enc.get("self_attention_model") != "rel_pos":
            raise ValueError("flops: feat_out > 0 or attention other than rel_pos not modelled")
        rate = int(pre.sample_rate)
        window = round(float(pre.window_size) * rate)
        n_fft = pre.get("n_fft") or 2 ** math.ceil(math.log2(window))
        joint = model_cfg.joint
        return cls(
            sample_rate=rate,
            hop=round(float(pre.window_stride) * rate),
            n_fft=int(n_fft),
            n_mels=int(pre.features),
            conv_channels=int(enc.subsampling_conv_channels),
            subsampling_factor=int(enc.subsampling_factor),
            n_layers=int(enc.n_layers),
            d_model=int(enc.d_model),
            ff_expansion=int(enc.get("ff_expansion_factor", 4)),
            conv_kernel=int(enc.get("conv_kernel_size", 31)),
            pred_hidden=int(model_cfg.decoder.prednet.pred_hidden),
            pred_layers=int(model_cfg.decoder.prednet.get("pred_rnn_layers", 1)),
            joint_hidden=int(joint.jointnet.joint_hidden),
            vocab_size=int(vocab_size),
            extra_outputs=int(joint.get("num_extra_outputs", 0) or 0),
        )

    def mel_frames(self, samples: int) -> int:
        """Mel frames of ``samples`` audio samples (centred STFT: one frame per hop, plus one)."""
        return samples // self.hop + 1

    def encoder_frames(self, samples: int) -> int:
        """Encoder output frames: the mel frames halved (3x3 kernel, padding 1) per stage."""
        t = self.mel_frames(samples)
        for _ in range(int(math.log2(self.subsampling_factor))):
            t = _conv_len(t, 3, 2, 1)
        return t


def forward_flops(dims: ModelDims, batch: int, samples: int, tokens: int) -> dict[str, int]:
    """FLOPs of one training forward of ``batch`` clips of ``samples`` samples and ``tokens``
    tokens each: a dict per component (see module doc) plus ``total``."""
    b, d, u1 = batch, dims.d_model, tokens + 1
    tf = dims.mel_frames(samples)
    out: dict[str, int] = {}
    out["preprocessor"] = 2 * b * tf * dims.n_mels * (dims.n_fft // 2 + 1)

    # subsampling: (B, 1, T, F) -> (B, C, T', F') per stage -> linear(C * F_last, d)
    c, t, f = dims.conv_channels, tf, dims.n_mels
    t, f = _conv_len(t, 3, 2, 1), _conv_len(f, 3, 2, 1)
    sub = 2 * b * c * t * f * 9  # first conv: 1 input channel, 3x3
    for _ in range(int(math.log2(dims.subsampling_factor)) - 1):
        t, f = _conv_len(t, 3, 2, 1), _conv_len(f, 3, 2, 1)
        sub += 2 * b * c * t * f * 9  # depthwise 3x3
        sub += 2 * b * c * t * f * c  # pointwise 1x1
    sub += 2 * b * t * (c * f) * d
    out["subsampling"] = sub

    # Conformer layers on (B, T, d)
    ff = 2 * (2 * b * t * d * dims.ff_expansion * d)  # one feed-forward module: two linears
    attn = (
        4 * (2 * b * t * d * d)  # q, k, v, out projections
        + 2 * (2 * t - 1) * d * d  # position projection, once per layer (batch 1)
        + 2 * b * t * (2 * t - 1) * d  # position scores (q + v_bias) p^T, all heads
        + 2 * (2 * b * t * t * d)  # content scores (q + u_bias) k^T and attention x v
    )
    conv = 2 * b * t * d * 2 * d + 2 * b * t * d * dims.conv_kernel + 2 * b * t * d * d
    out["encoder_layers"] = dims.n_layers * (2 * ff + attn + conv)

    h = dims.pred_hidden
    out["predictor"] = dims.pred_layers * 2 * b * u1 * 4 * h * (h + h)  # W_ih x + W_hh h

    j, outputs = dims.joint_hidden, dims.vocab_size + 1 + dims.extra_outputs
    out["joint"] = 2 * b * t * d * j + 2 * b * u1 * h * j + 2 * b * t * u1 * j * outputs
    out["ctc"] = 2 * b * t * d * (dims.vocab_size + 1)
    out["total"] = sum(out.values())
    return out


def training_flops(dims: ModelDims, batch: int, samples: int, tokens: int) -> int:
    """FLOPs of one training step (forward + backward) on that batch: 3 x forward."""
    return TRAIN_FACTOR * forward_flops(dims, batch, samples, tokens)["total"]
