"""Flags, YAML and dotlist overrides merge in one documented order."""

from __future__ import annotations

import argparse

import pytest
from omegaconf import OmegaConf

from maya_asr.training.options import FLAG_KEYS, add_flags, build_config, validate

BASE = OmegaConf.create(
    {
        "name": "t",
        "model": {"optim": {"lr": 5e-4}, "optim_param_groups": {"encoder": {"lr": 1e-5}}},
        "trainer": {"max_steps": 10},
        "data": {"max_batch_dur": 60.0},
    }
)


def _flags(**given):
    return {name: given.get(name) for name in FLAG_KEYS}


def test_yaml_wins_over_documented_defaults_and_fills_gaps():
    cfg = build_config(BASE, _flags(train_parquet="x.parquet"))
    assert cfg.model.optim.lr == 5e-4  # from the YAML, not the 1e-3 default
    assert cfg.data.max_batch_dur == 60.0
    assert cfg.trainer.max_steps == 10
    assert cfg.trainer.accumulate_grad_batches == 4  # absent from the YAML: the users' default
    assert cfg.data.temperature == 0.3


def test_given_flags_win_over_yaml_and_dotlist_wins_over_flags():
    cfg = build_config(
        BASE,
        _flags(head_lr=2e-3, encoder_lr=3e-5, max_steps=7, train_parquet="x"),
        ["trainer.max_steps=3", "model.encoder.n_layers=2"],
    )
    assert cfg.model.optim.lr == 2e-3
    assert cfg.model.optim_param_groups.encoder.lr == 3e-5
    assert cfg.trainer.max_steps == 3
    assert cfg.model.encoder.n_layers == 2


def test_switches():
    flags = _flags(train_parquet="x")
    flags.update(smoke=True, no_lang_embed=True, no_preflight=True)
    cfg = build_config(BASE, flags)
    assert cfg.run.smoke and not cfg.run.preflight
    assert cfg.model.language_dropout == 1.0  # every utterance on the language-free path
    assert cfg.model.lid_loss_weight == 0.0  # and no LID head mixes language vectors in


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({}, "--train-parquet"),
        ({"train_parquet": "x", "temperature": 1.5}, "--temperature"),
        ({"train_parquet": "x", "max_tokens_in_batch": 0}, "max_tokens_in_batch"),
        ({"train_parquet": "x", "grad_accum": 0}, "--grad-accum"),
    ],
)
def test_validate_says_what_to_fix(flags, message):
    with pytest.raises(ValueError, match=message):
        validate(build_config(BASE, _flags(**flags)))


def test_parser_accepts_the_users_command_line():
    parser = argparse.ArgumentParser()
    add_flags(parser)
    line = "--config c.yaml --max-steps 100 --devices 1 --log-every 10 --val-every 50 --smoke"
    args = parser.parse_args([*line.split(), "trainer.precision=32"])
    assert (args.max_steps, args.devices, args.smoke) == (100, "1", True)
    assert args.overrides == ["trainer.precision=32"]
    assert args.encoder_lr is None  # unset flags leave the YAML alone


def test_defaults_never_add_production_schedule_values():
    cfg = build_config(BASE, _flags(train_parquet="x.parquet"))
    assert "encoder_freeze_steps" not in cfg.model and "ctc_warmup_steps" not in cfg.model
    assert "sched" not in cfg.model.optim
    bare = OmegaConf.create({"model": {"optim": {"lr": 1e-3}}, "trainer": {}})
    cfg = build_config(bare, _flags(train_parquet="x.parquet"))
    assert "optim_param_groups" not in cfg.model  # no encoder LR of 2e-5 appears
    with pytest.raises(ValueError, match=r"trainer\.max_steps is not set"):
        validate(cfg)


def test_smoke_on_the_production_config_scales_the_schedule_and_trains_the_encoder():
    from pathlib import Path

    from maya_asr.training.run import apply_smoke

    train = Path(__file__).parents[2] / "configs" / "train"
    prod = OmegaConf.load(train / "stage1_prod_8xh200.yaml")
    flags = _flags(train_parquet="x.parquet", max_steps=100)
    cfg = apply_smoke(
        build_config(prod, flags), OmegaConf.load(train / "smoke.yaml"),
        prod_max_steps=prod.trainer.max_steps, max_steps=100,
    )  # fmt: skip
    m = cfg.model
    # 100 / 200,000 of each phase, at least one step each: the smoke run freezes, re-warms,
    # ramps CTC and decays like the 5-day run, in miniature.
    assert (m.encoder_freeze_steps, m.ctc_warmup_steps) == (2, 2)
    assert (m.optim.sched.warmup_steps, m.optim.sched.encoder_rewarmup_steps) == (1, 1)
    assert m.optim_param_groups.encoder.lr == m.optim.lr == 1e-3  # random encoder: head LR
    assert cfg.run.pretrained_encoder is None and cfg.trainer.devices == 1
    assert m.encoder.n_layers == 2 and cfg.trainer.max_steps == 100
    validate(cfg)  # the scaled schedule is consistent
