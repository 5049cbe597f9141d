"""The demo encoder's pretraining model: the production FastConformer, scaled down, with CTC.

Production fine-tunes Parakeet's encoder; the demo fine-tunes this one. It is built from the same
config keys as ``configs/train/stage1_prod_8xh200.yaml``'s ``model.encoder`` (dw_striding 8x
subsampling, rel_pos attention, batch-norm convolutions) with smaller dims, behind the demo's
preprocessor read from ``configs/train/demo_cpu.yaml`` (80 mel, 25 ms / 10 ms, n_fft 512,
per_feature), so the saved ``encoder`` state dict loads with
``load_pretrained_encoder(strict=True)`` into any model whose ``model.encoder`` block is
:func:`encoder_block` of the same dims.

The CTC head (a linear layer over a small pretraining vocabulary, blank last as in NeMo) is
thrown away after pretraining, as Parakeet's heads are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[3]
DEMO_TRAIN_CONFIG = REPO / "configs" / "train" / "demo_cpu.yaml"
ENCODER_TARGET = "nemo.collections.asr.modules.ConformerEncoder"


@dataclass(frozen=True)
class EncoderDims:
    """The dims of the pretrained FastConformer (everything else is the production block)."""

    n_layers: int = 4  # conformer blocks
    d_model: int = 144  # model width; also the encoder output size the demo heads see
    n_heads: int = 4  # attention heads; must divide d_model
    ff_expansion_factor: int = 4  # feed-forward width = d_model x this (production: 4)
    subsampling_factor: int = 8  # 80-ms frames: the demo BPE's CTC feasibility depends on it
    # dw_striding channels (production: 256 at d_model 1024). Its convolutions run at 10-ms
    # resolution and took half the step at 144 channels; 64 keeps them cheap on 2 cores.
    subsampling_conv_channels: int = 64
    conv_kernel_size: int = 9  # depthwise convolution kernel (production: 9)
    dropout: float = 0.05  # blocks, pre-encoder and attention dropout during pretraining

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}")
        if self.subsampling_factor not in (4, 8):
            raise ValueError(
                f"subsampling_factor={self.subsampling_factor}: use 8 (the demo's 80-ms frames) "
                "or 4 (40-ms frames, then the demo config must use 4 too)"
            )
        for name in ("n_layers", "d_model", "ff_expansion_factor", "subsampling_conv_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")


def encoder_block(dims: EncoderDims, feat_in: int = 80) -> dict:
    """The ``model.encoder`` config of the production file with ``dims`` (plain, resolved dict)."""
    return {
        "_target_": ENCODER_TARGET,
        "feat_in": feat_in,
        "feat_out": -1,
        "n_layers": dims.n_layers,
        "d_model": dims.d_model,
        "subsampling": "dw_striding",
        "subsampling_factor": dims.subsampling_factor,
        "subsampling_conv_channels": dims.subsampling_conv_channels,
        "causal_downsampling": False,
        "ff_expansion_factor": dims.ff_expansion_factor,
        "self_attention_model": "rel_pos",
        "n_heads": dims.n_heads,
        "att_context_size": [-1, -1],
        "xscaling": True,
        "untie_biases": True,
        "pos_emb_max_len": 5000,
        "conv_kernel_size": dims.conv_kernel_size,
        "conv_norm_type": "batch_norm",
        "dropout": dims.dropout,
        "dropout_pre_encoder": dims.dropout,
        "dropout_emb": 0.0,
        "dropout_att": dims.dropout,
    }


def spec_augment_block(freq_masks: int = 2, time_masks: int = 5) -> dict:
    """NeMo's ``SpectrogramAugmentation`` config for pretraining (0 masks: no block).

    Widths are those of NeMo's FastConformer configs (27 mel bins, 5% of the utterance per time
    mask); the mask counts are ours: a few hours of synthetic speech overfit without them.
    """
    if freq_masks == 0 and time_masks == 0:
        return {}
    return {
        "_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
        "freq_masks": freq_masks,
        "time_masks": time_masks,
        "freq_width": 27,
        "time_width": 0.05,
    }


def demo_preprocessor_block(config_path: str | Path = DEMO_TRAIN_CONFIG) -> dict:
    """``model.preprocessor`` of the demo training config, resolved (the fine-tune's features)."""
    cfg = OmegaConf.load(config_path)
    return OmegaConf.to_container(cfg.model.preprocessor, resolve=True)


class CTCPretrainModel(torch.nn.Module):
    """Preprocessor -> FastConformer encoder -> linear CTC head over ``vocab_size`` + blank."""

    def __init__(
        self,
        dims: EncoderDims,
        vocab_size: int,
        preprocessor: dict | None = None,
        spec_augment: dict | None = None,
    ):
        super().__init__()
        from nemo.core.classes.common import Serialization

        preprocessor = preprocessor or demo_preprocessor_block()
        self.dims = dims
        self.vocab_size = vocab_size
        self.blank = vocab_size  # NeMo's convention: blank is the last class
        self.preprocessor = Serialization.from_config_dict(OmegaConf.create(preprocessor))
        # NeMo's SpectrogramAugmentation (as in its FastConformer configs), training mode only
        self.spec_augment = (
            Serialization.from_config_dict(OmegaConf.create(spec_augment)) if spec_augment else None
        )
        block = encoder_block(dims, feat_in=int(preprocessor["features"]))
        self.encoder = Serialization.from_config_dict(OmegaConf.create(block))
        self.head = torch.nn.Linear(dims.d_model, vocab_size + 1)

    def forward(
        self, audio: torch.Tensor, audio_len: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (B, S) at the preprocessor's rate, lengths (B,) -> log-probs (B, T, V+1), (B,)."""
        feats, feat_len = self.preprocessor(input_signal=audio, length=audio_len)  # (B, 80, F)
        if self.spec_augment is not None and self.training:
            feats = self.spec_augment(input_spec=feats, length=feat_len)
        encoded, enc_len = self.encoder(audio_signal=feats, length=feat_len)  # (B, D, T)
        logits = self.head(encoded.transpose(1, 2))  # (B, T, V+1)
        return logits.log_softmax(dim=-1), enc_len


def ctc_loss_per_token(
    log_probs: torch.Tensor,
    enc_len: torch.Tensor,
    targets: torch.Tensor,
    target_len: torch.Tensor,
    blank: int,
) -> torch.Tensor:
    """Summed CTC negative log-likelihood / number of target tokens (nats per token).

    log_probs (B, T, V+1), enc_len (B,), targets (B, U) padded, target_len (B,).
    """
    nll = torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1),  # (T, B, V+1), as torch wants it
        targets,
        enc_len,
        target_len,
        blank=blank,
        reduction="sum",
        zero_infinity=True,
    )
    return nll / target_len.sum().clamp(min=1)


def greedy_decode(log_probs: torch.Tensor, enc_len: torch.Tensor, blank: int) -> list[list[int]]:
    """Best-path CTC decoding: argmax per frame, merge repeats, drop blanks; one id list per row."""
    best = log_probs.argmax(dim=-1)  # (B, T)
    out = []
    for row, n in zip(best.tolist(), enc_len.tolist(), strict=True):
        ids, prev = [], None
        for t in row[:n]:
            if t != prev and t != blank:
                ids.append(t)
            prev = t
        out.append(ids)
    return out
