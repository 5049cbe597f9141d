"""Count a model config's parameters without allocating them (the production model is 1.1B).

``torch.device("meta")`` cannot build NeMo's ConformerEncoder (its constructor calls ``.item()``),
so we use the approach of ``accelerate.init_empty_weights``: every parameter is moved to the meta
device the moment a module registers it, while buffers and constructor arithmetic stay real.
"""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def empty_parameters():
    """Within the block, new modules get meta-device parameters (shapes only, no memory)."""
    register = torch.nn.Module.register_parameter

    def register_on_meta(module, name, param):
        register(module, name, param)
        if param is not None:
            meta = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
            module._parameters[name] = meta

    torch.nn.Module.register_parameter = register_on_meta
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register


def count_model_parameters(model_cfg) -> dict[str, int]:
    """Parameter counts of ``MayaHybridTDTCTCModel(model_cfg)`` per top-level module and total.

    ``model_cfg.tokenizer.dir`` must name a tokenizer with the intended vocabulary size.
    """
    from maya_asr.models.model import MayaHybridTDTCTCModel

    with empty_parameters():
        model = MayaHybridTDTCTCModel(model_cfg)
    counts = {
        name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()
    }
    counts = {name: n for name, n in counts.items() if n}
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
