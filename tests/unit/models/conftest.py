"""Fixtures for the model tests (tokenizers are session-scoped: SentencePiece is not free)."""

from __future__ import annotations

import pytest
import torch
from model_support import ENGLISH_TEXTS, smoke_config, train_tokenizer


@pytest.fixture(scope="session")
def en_tokenizer_dir(tmp_path_factory):
    return train_tokenizer(ENGLISH_TEXTS, tmp_path_factory.mktemp("tok_en"), vocab_size=40)


@pytest.fixture
def smoke_model(en_tokenizer_dir):
    from maya_asr.models import MayaHybridTDTCTCModel

    torch.manual_seed(0)
    return MayaHybridTDTCTCModel(smoke_config(en_tokenizer_dir))
