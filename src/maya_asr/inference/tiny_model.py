"""A small, randomly initialised stock NeMo hybrid TDT+CTC model, for tests and benchmarks.

It has the production model's shape in miniature — FastConformer encoder (8x depthwise-striding
subsampling, relative-position attention), TDT transducer head with durations [0, 1, 2, 3, 4],
auxiliary CTC head, SentencePiece BPE — so everything that loads, switches heads, decodes and
scores a ``.nemo`` can be exercised in seconds on a CPU. Untrained, it transcribes audio to
arbitrary text, which is all plumbing tests need.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maya_asr.models.nemo_config import with_nemo_sections
from maya_asr.models.tiny_tokenizer import train_tiny_tokenizer

TDT_DURATIONS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class TinyModelSize:
    """Encoder and head sizes of a tiny model."""

    layers: int = 2  # FastConformer layers
    d_model: int = 32  # encoder width
    heads: int = 2  # attention heads
    pred_hidden: int = 32  # prediction network and joint width
    vocab_size: int = 512  # SentencePiece pieces (12 scripts need ~330 characters alone)


SIZES = {
    "tiny": TinyModelSize(),  # unit tests: builds and decodes in well under a second
    "small": TinyModelSize(layers=8, d_model=176, heads=4, pred_hidden=320, vocab_size=1024),
}


def tiny_model_config(tokenizer_dir: str | Path, size: TinyModelSize) -> dict:
    """The model config (NeMo's hybrid TDT+CTC layout) for ``size``."""
    durations = list(TDT_DURATIONS)
    return {
        "sample_rate": 16000,
        "model_defaults": {
            "enc_hidden": size.d_model,
            "pred_hidden": size.pred_hidden,
            "joint_hidden": size.pred_hidden,
            "tdt_durations": durations,
            "num_tdt_durations": len(durations),
        },
        "tokenizer": {"dir": str(tokenizer_dir), "type": "bpe"},
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": 16000,
            "normalize": "per_feature",
            "window_size": 0.025,
            "window_stride": 0.01,
            "features": 80,
            "n_fft": 512,
            "dither": 0.0,
            "pad_to": 0,
        },
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConformerEncoder",
            "feat_in": 80,
            "n_layers": size.layers,
            "d_model": size.d_model,
            "subsampling": "dw_striding",
            "subsampling_factor": 8,
            "subsampling_conv_channels": size.d_model,
            "ff_expansion_factor": 4,
            "self_attention_model": "rel_pos",
            "n_heads": size.heads,
            "att_context_size": [-1, -1],
            "pos_emb_max_len": 5000,
            "conv_kernel_size": 9,
            "conv_norm_type": "batch_norm",
            "dropout": 0.0,
            "dropout_pre_encoder": 0.0,
            "dropout_emb": 0.0,
            "dropout_att": 0.0,
        },
        "decoder": {
            "_target_": "nemo.collections.asr.modules.RNNTDecoder",
            "normalization_mode": None,
            "random_state_sampling": False,
            "blank_as_pad": True,
            "prednet": {"pred_hidden": size.pred_hidden, "pred_rnn_layers": 1, "dropout": 0.0},
        },
        "joint": {
            "_target_": "nemo.collections.asr.modules.RNNTJoint",
            "log_softmax": None,
            "preserve_memory": False,
            "fuse_loss_wer": False,
            "num_extra_outputs": len(durations),
            "jointnet": {"joint_hidden": size.pred_hidden, "activation": "relu", "dropout": 0.0},
        },
        "decoding": {
            "strategy": "greedy_batch",
            "model_type": "tdt",
            "durations": durations,
            "greedy": {"max_symbols": 10},
        },
        "loss": {
            "loss_name": "tdt",
            "tdt_kwargs": {"durations": durations, "sigma": 0.02, "omega": 0.1},
        },
        "aux_ctc": {
            "ctc_loss_weight": 0.3,
            "decoder": {
                "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
                "feat_in": size.d_model,
                "num_classes": -1,
                "vocabulary": [],
            },
            "decoding": {"strategy": "greedy"},
        },
        "optim": {"name": "adamw", "lr": 1e-3},
    }


def build_tiny_model(
    texts: list[str], out_path: str | Path, size: str | TinyModelSize = "tiny", seed: int = 0
) -> Path:
    """Train a tokenizer on ``texts``, build a random model of ``size`` and save it as a
    ``.nemo`` at ``out_path`` (its tokenizer is packed inside); returns ``out_path``."""
    import torch
    from nemo.collections.asr.models import EncDecHybridRNNTCTCBPEModel
    from omegaconf import OmegaConf

    size = SIZES[size] if isinstance(size, str) else size
    out_path = Path(out_path)
    tokenizer_dir = train_tiny_tokenizer(
        texts, out_path.parent / f"{out_path.stem}_tokenizer", size.vocab_size
    )
    torch.manual_seed(seed)
    model = EncDecHybridRNNTCTCBPEModel(
        cfg=OmegaConf.create(tiny_model_config(tokenizer_dir, size))
    )
    model.cfg = with_nemo_sections(model.cfg)  # what NeMo's transcribe reads (no data here)
    model.save_to(str(out_path))
    return out_path
