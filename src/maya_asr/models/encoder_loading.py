"""Load a pretrained FastConformer encoder (Parakeet TDT 1.1B) into our model, with a key report.

Sources:
* an encoder state dict saved with ``torch.save`` (``pretrained/parakeet_tdt_1.1b_encoder.pt``,
  written by ``scripts/extract_encoder.py``); keys may or may not carry the ``encoder.`` prefix;
* any ``.nemo`` file: its ``model_weights.ckpt`` member, keys under ``encoder.``.

Every key is accounted for: loaded, missing (in our encoder, not in the file), unexpected (in the
file, not in our encoder) or shape-mismatched. By default anything but a clean match raises a
``ValueError`` carrying the report, because a half-loaded encoder trains silently into garbage.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

ENCODER_PREFIX = "encoder."
NEMO_WEIGHTS = "model_weights.ckpt"


@dataclass
class EncoderLoadReport:
    """What happened to each encoder key."""

    source: str  # the file the weights came from
    loaded: list[str] = field(default_factory=list)  # keys copied into the model
    missing: list[str] = field(default_factory=list)  # model keys absent from the file
    unexpected: list[str] = field(default_factory=list)  # file keys the model lacks
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # key, file, model

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self, limit: int = 10) -> str:
        lines = [f"encoder weights from {self.source}: {len(self.loaded)} tensors loaded"]
        for title, items in (
            ("missing from the file", self.missing),
            ("unexpected in the file", self.unexpected),
            ("shape mismatch (file vs model)", [f"{k}: {a} vs {b}" for k, a, b in self.mismatched]),
        ):
            if items:
                shown = ", ".join(items[:limit]) + (" ..." if len(items) > limit else "")
                lines.append(f"  {len(items)} {title}: {shown}")
        return "\n".join(lines)


def read_nemo_state_dict(nemo_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The full state dict stored in a ``.nemo`` archive (extracted to a temp dir, mmap-loaded)."""
    with tarfile.open(nemo_path, "r:*") as tar:
        members = [m for m in tar.getmembers() if Path(m.name).name == NEMO_WEIGHTS]
        if not members:
            raise ValueError(f"{nemo_path} holds no {NEMO_WEIGHTS}; is it a .nemo file?")
        with tempfile.TemporaryDirectory() as tmp:
            tar.extract(members[0], tmp, filter="data")
            return torch.load(Path(tmp) / members[0].name, map_location="cpu", weights_only=True)


def encoder_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Encoder tensors (keys without the ``encoder.`` prefix) from a ``.pt`` or a ``.nemo``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no pretrained encoder at {path}; write one with scripts/extract_encoder.py"
        )
    if path.suffix == ".nemo":
        state = read_nemo_state_dict(path)
        encoder = {
            k[len(ENCODER_PREFIX) :]: v for k, v in state.items() if k.startswith(ENCODER_PREFIX)
        }
        if not encoder:
            raise ValueError(f"{path} has no '{ENCODER_PREFIX}*' weights: not an ASR encoder model")
        return encoder
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    if state and all(k.startswith(ENCODER_PREFIX) for k in state):
        state = {k[len(ENCODER_PREFIX) :]: v for k, v in state.items()}
    return state


def load_pretrained_encoder(
    model, path: str | os.PathLike, strict: bool = True
) -> EncoderLoadReport:
    """Copy encoder weights from ``path`` into ``model.encoder``; return the key report.

    With ``strict`` (default) a missing, unexpected or mis-shaped key raises ``ValueError`` with
    the report, and nothing is loaded. Without it, the matching tensors are loaded and the
    report says what was skipped.
    """
    source = encoder_state_dict(path)
    target = model.encoder.state_dict()
    report = EncoderLoadReport(source=str(path))
    usable = {}
    for key, tensor in source.items():
        if key not in target:
            report.unexpected.append(key)
        elif tuple(tensor.shape) != tuple(target[key].shape):
            report.mismatched.append((key, tuple(tensor.shape), tuple(target[key].shape)))
        else:
            usable[key] = tensor
    report.missing = [k for k in target if k not in source]
    if strict and not report.ok:
        raise ValueError(
            report.summary()
            + "\nthe pretrained encoder does not match model.encoder in the config: fix the "
            "encoder dimensions (n_layers, d_model, feat_in, subsampling) or pass strict=False"
        )
    model.encoder.load_state_dict(usable, strict=False)
    report.loaded = sorted(usable)
    return report


def save_encoder_state_dict(nemo_path: str | os.PathLike, out_path: str | os.PathLike) -> int:
    """Write the encoder of ``nemo_path`` as a state dict to ``out_path``; return #tensors."""
    state = encoder_state_dict(nemo_path)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out)  # never leave a half-written encoder under the final name
    return len(state)
