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


def test_production_config_pins_the_stage1_recipe():
    cfg = OmegaConf.load(PROD_CONFIG)
    m = cfg.model
    assert (m.encoder.n_layers, m.encoder.d_model, m.preprocessor.features) == (42, 1024, 80)
    assert (m.encoder.subsampling, m.encoder.subsampling_factor) == ("dw_striding", 8)
    assert (m.decoder.prednet.pred_rnn_layers, m.model_defaults.pred_hidden) == (2, 640)
    assert m.model_defaults.joint_hidden == 640 and m.joint.num_extra_outputs == 5
    assert list(m.loss.tdt_kwargs.durations) == [0, 1, 2, 3, 4]
    assert (m.loss.tdt_kwargs.sigma, m.loss.tdt_kwargs.omega) == (0.02, 0.1)
    assert m.joint.fuse_loss_wer and m.joint.fused_batch_size == 4
    assert m.aux_ctc.ctc_loss_weight == 0.3 and m.ctc_warmup_steps > 0
    assert m.encoder_freeze_steps > 0 and 0 < m.language_dropout < 1
    assert m.optim.lr == 1e-3 and m.optim_param_groups.encoder.lr == 2e-5
    assert m.optim_param_groups.lang_embedding.weight_decay == 0.0
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.sync_batchnorm
