"""The Maya ASR model: NeMo hybrid TDT+CTC with a language embedding (imports NeMo lazily).

Public API::

    from maya_asr.models import MayaHybridTDTCTCModel, load_pretrained_encoder
    from maya_asr.models.schedules import ctc_weight_at, encoder_frozen_at   # pure, no NeMo
    from maya_asr.models.tdt_loss_cpu import TDTLossCPU, tdt_loss              # pure torch

Attribute access imports the module that needs NeMo, so ``import maya_asr.models.schedules``
stays cheap.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "MayaHybridTDTCTCModel": "maya_asr.models.model",
    "MayaOptions": "maya_asr.models.model",
    "load_pretrained_encoder": "maya_asr.models.encoder_loading",
    "EncoderLoadReport": "maya_asr.models.encoder_loading",
    "export_stock_nemo": "maya_asr.models.stock_export",
    "count_model_parameters": "maya_asr.models.param_count",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'maya_asr.models' has no attribute {name!r}")
