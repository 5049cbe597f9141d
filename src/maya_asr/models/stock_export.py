"""Export our model as a plain NeMo ``EncDecHybridRNNTCTCBPEModel`` ``.nemo`` for one language.

The language vector ``e`` is added to every encoder frame, and everything that reads the encoder
output starts with an affine map: the joint's encoder projection ``joint.enc`` (Linear D -> H)
and the CTC head (Conv1d D -> V+1, kernel 1). So ``W (x + e) + b = W x + (b + W e)``: adding
``W e`` to those two biases gives a stock model whose outputs equal ours for that language. The
language-free path (``language=None``) has ``e = 0`` and only drops the table.

We rewrite the ``.nemo`` archive directly (config + weights; tokenizer files copied as they are)
rather than instantiating a second model, so the export needs no extra memory or NeMo setup.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path

import torch
from omegaconf import OmegaConf, open_dict

from maya_asr.models.nemo_config import with_nemo_sections

STOCK_TARGET = "nemo.collections.asr.models.hybrid_rnnt_ctc_bpe_models.EncDecHybridRNNTCTCBPEModel"
# Config keys only our model reads; removed so the stock config has no trace of maya_asr.
MAYA_KEYS = (
    "languages",
    "language_dropout",
    "encoder_freeze_steps",
    "ctc_warmup_steps",
    "tdt_loss_impl",
    "lid_loss_weight",
    "lid_mode",
    "joint_bf16_on_cpu",
)
CONFIG_NAME = "model_config.yaml"
WEIGHTS_NAME = "model_weights.ckpt"


def fold_language_bias(state: dict[str, torch.Tensor], lang_id: int | None) -> dict:
    """Stock state dict: our ``state`` with language ``lang_id``'s vector folded into the biases."""
    # The language-ID head has no stock counterpart: a stock model has one fixed language (or none).
    state = {k: v for k, v in state.items() if not k.startswith("lid_head.")}
    table = state.pop("lang_embedding.weight")
    if lang_id is None:
        return state
    e = table[lang_id].to(torch.float64)  # (D,)
    enc_w, enc_b = state["joint.enc.weight"], state["joint.enc.bias"]  # (H, D), (H,)
    state["joint.enc.bias"] = (enc_b.double() + enc_w.double() @ e).to(enc_b.dtype)
    ctc_w = state["ctc_decoder.decoder_layers.0.weight"]  # (V+1, D, 1)
    ctc_b = state["ctc_decoder.decoder_layers.0.bias"]
    state["ctc_decoder.decoder_layers.0.bias"] = (ctc_b.double() + ctc_w[:, :, 0].double() @ e).to(
        ctc_b.dtype
    )
    return state


def stock_config(cfg):
    """A copy of our config that names NeMo's class and none of our keys, with the sections
    NeMo's clients read (kept from ``cfg``; added for a ``.nemo`` written without them)."""
    cfg = with_nemo_sections(cfg, target=STOCK_TARGET)
    with open_dict(cfg):
        for key in MAYA_KEYS:
            cfg.pop(key, None)
    return cfg


def export_stock_nemo(model, language: str | None, out_path: str | os.PathLike) -> Path:
    """Write a stock NeMo ``.nemo`` equal to ``model`` with ``language`` (None: language-free)."""
    lang_id = None
    if language is not None:
        ids = model.language_ids(language, 1)
        lang_id = int(ids[0])
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ours = Path(tmp) / "ours.nemo"
        model.save_to(str(ours))
        tmp_out = out.with_suffix(out.suffix + ".tmp")
        with tarfile.open(ours, "r:*") as src, tarfile.open(tmp_out, "w:") as dst:
            for member in src.getmembers():
                name = Path(member.name).name
                if name == CONFIG_NAME:
                    cfg = OmegaConf.create(src.extractfile(member).read().decode("utf-8"))
                    data = OmegaConf.to_yaml(stock_config(cfg)).encode("utf-8")
                elif name == WEIGHTS_NAME:
                    state = torch.load(
                        src.extractfile(member), map_location="cpu", weights_only=True
                    )
                    buf = io.BytesIO()
                    torch.save(fold_language_bias(state, lang_id), buf)
                    data = buf.getvalue()
                elif member.isfile():
                    data = src.extractfile(member).read()
                else:
                    dst.addfile(member)
                    continue
                info = tarfile.TarInfo(member.name)
                info.size = len(data)
                info.mtime = member.mtime
                dst.addfile(info, io.BytesIO(data))
        os.replace(tmp_out, out)
    return out
