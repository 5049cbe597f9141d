"""The production config builds a ~1.14B-parameter model (counted without allocating it)."""

from __future__ import annotations

from model_support import PROD_CONFIG, tokenizer_with_vocab
from omegaconf import OmegaConf, open_dict

PROD_VOCAB = 32000
# Measured directly with the 32K tokenizer (scripts/bench_model.py --param-count); building
# with 32K labels spends ~90 s in OmegaConf copies of the vocabulary, too slow for a unit test.
PROD_PARAMS = 1_142_929_543


def _count(tmp_path, vocab):
    from maya_asr.models import count_model_parameters

    cfg = OmegaConf.load(PROD_CONFIG).model
    with open_dict(cfg):
        cfg.tokenizer.dir = str(tokenizer_with_vocab(tmp_path / f"tok{vocab}", vocab))
    return count_model_parameters(cfg)


def test_production_model_has_about_1_14b_parameters(tmp_path):
    # Only the prediction-net embedding, the joint output layer and the CTC head depend on the
    # vocabulary, each linearly; two small vocabularies give the exact 32K count.
    small, large = _count(tmp_path, 64), _count(tmp_path, 128)
    per_token = (large["total"] - small["total"]) / 64
    total = small["total"] + per_token * (PROD_VOCAB - 64)
    assert total == PROD_PARAMS
    assert 1.13e9 < total < 1.15e9
    assert small["encoder"] == large["encoder"] == 1_061_489_664  # Parakeet 1.1B FastConformer
    assert small["lang_embedding"] == 12 * 1024
