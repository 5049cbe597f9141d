"""GroupCosine: each group's LR across warm-up, freeze, unfreeze and decay, against a table."""

from __future__ import annotations

import pytest
from model_support import PROD_CONFIG, smoke_config
from omegaconf import OmegaConf

from maya_asr.models.lr_schedule import (
    ENCODER,
    HEADS,
    GroupCosine,
    GroupCosineSpec,
    group_lr,
    lr_table,
    peaks_of,
    spec_of,
    validate_schedule,
)
from maya_asr.training.options import FLAG_KEYS, build_config


def _prod(**flags):
    given = {name: None for name in FLAG_KEYS} | {"train_parquet": "x.parquet"} | flags
    return build_config(OmegaConf.load(PROD_CONFIG), given)


# step -> (heads, encoder) LR of the production config: warm-up 2K, freeze 5K, re-warm-up 1K,
# cosine to 1% of each peak at 200K. Computed by hand from the formula in the module doc.
PROD_TABLE = {
    0: (5.000e-07, 0.0),  # warm-up: 1/2000 of the head peak; encoder frozen
    1999: (1.000e-03, 0.0),  # end of warm-up
    4999: (9.994e-04, 0.0),  # last frozen step
    5000: (9.994e-04, 1.999e-08),  # unfreeze: encoder at 1/1000 of its share
    5499: (9.992e-04, 9.992e-06),  # half-way through the re-warm-up
    5999: (9.990e-04, 1.998e-05),  # re-warm-up done: ratio 50 again
    100000: (5.129e-04, 1.026e-05),
    199999: (1.000e-05, 2.000e-07),  # floor: 1% of each peak, ratio still 50
}


def test_production_schedule_matches_the_table_and_keeps_the_ratio():
    cfg = _prod()
    spec, peaks = spec_of(cfg), peaks_of(cfg)
    assert spec == GroupCosineSpec(200_000, 2000, 0.01, 1000, 5000)
    for step, (heads, encoder) in PROD_TABLE.items():
        got = (
            group_lr(HEADS, peaks[HEADS], step, spec),
            group_lr(ENCODER, peaks[ENCODER], step, spec),
        )
        assert got == pytest.approx((heads, encoder), rel=1e-3, abs=1e-12), step
    for step in range(6000, 200_000, 997):  # after the re-warm-up the ratio holds everywhere
        ratio = group_lr(HEADS, 1e-3, step, spec) / group_lr(ENCODER, 2e-5, step, spec)
        assert ratio == pytest.approx(50.0)
    print(lr_table(cfg, sorted(PROD_TABLE)))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"encoder_lr": 0.0}, "--encoder-lr=0.0: learning rates must be > 0"),
        ({"max_steps": 1500}, "warmup_steps=2000 exceeds trainer.max_steps=1500"),
        ({"max_steps": 5500}, "re-warm-up .* exceeds trainer.max_steps=5500"),
    ],
)
def test_bad_schedules_fail_at_start_up_with_the_fix(flags, message):
    with pytest.raises(ValueError, match=message):
        validate_schedule(_prod(**flags))


def test_absolute_min_lr_and_cosine_annealing_are_refused():
    cfg = _prod()
    cfg.model.optim.sched.min_lr = 1e-5
    with pytest.raises(ValueError, match="replace min_lr with min_lr_ratio"):
        validate_schedule(cfg)
    cfg.model.optim.sched.name = "CosineAnnealing"
    with pytest.raises(ValueError, match="loses the encoder:head LR ratio"):
        validate_schedule(cfg)


def test_nemo_builds_group_cosine_for_the_models_named_groups(en_tokenizer_dir):
    from maya_asr.models import MayaHybridTDTCTCModel

    sched = {"name": "GroupCosine", "warmup_steps": 2, "min_lr_ratio": 0.1,
             "encoder_rewarmup_steps": 2, "max_steps": 10}  # fmt: skip
    cfg = smoke_config(en_tokenizer_dir, **{"optim.sched": sched, "encoder_freeze_steps": 3})
    model = MayaHybridTDTCTCModel(cfg)
    optimizer, scheduler = model.setup_optimization()
    schedule = scheduler["scheduler"]
    assert isinstance(schedule, GroupCosine) and scheduler["interval"] == "step"
    assert schedule.group_names == [HEADS, ENCODER, "lang_embedding"]
    assert schedule.spec.encoder_freeze_steps == 3  # taken from the model, not the YAML
    spec = schedule.spec
    for step in range(10):
        want = [
            group_lr(n, p, step, spec)
            for n, p in zip(schedule.group_names, [1e-3, 2e-5, 1e-3], strict=True)
        ]
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(want), step
        optimizer.step()
        schedule.step()
    assert optimizer.param_groups[1]["lr"] == pytest.approx(2e-6)  # 10% of the encoder peak
    # A resume restores the position, and follows the resumed config's settings.
    longer = GroupCosine(
        optimizer, max_steps=20, warmup_steps=2, encoder_rewarmup_steps=2, encoder_freeze_steps=3
    )
    longer.load_state_dict(schedule.state_dict())
    assert longer.last_epoch == 10 and longer.spec.max_steps == 20
