"""`make demo-ablate`: each variant removes exactly its part of the recipe; the table reads it."""

from __future__ import annotations

import os

import pytest
from omegaconf import OmegaConf

from maya_asr.training.ablation import (
    expected_config,
    markdown_table,
    scores,
    stale_reason,
    variants,
)

DEMO = "configs/train/demo_cpu.yaml"
HEADS_LR = float(OmegaConf.load(DEMO).model.optim.lr)  # what scripts/demo_ablate.py passes
STEPS = 2000


def _config(variant=None):
    """The merged config scripts/train_prod.py builds for the demo variant."""
    return OmegaConf.create(expected_config(DEMO, STEPS, variant or variants(HEADS_LR)[0]))


# what each variant must change (key -> value) and nothing else of the recipe
REMOVED = {
    "full": {},
    "no_pretrained": {"run.pretrained_encoder": None},
    "no_freeze": {"model.encoder_freeze_steps": 0, "model.optim.sched.encoder_rewarmup_steps": 0},
    "one_lr": {"model.optim_param_groups.encoder.lr": HEADS_LR},
    "no_ctc_warmup": {"model.ctc_warmup_steps": 0},
    "no_lang_embed": {"model.language_dropout": 1.0, "model.lid_loss_weight": 0.0},
}
RECIPE_KEYS = sorted({key for changes in REMOVED.values() for key in changes})


@pytest.mark.parametrize("variant", variants(heads_lr=HEADS_LR), ids=lambda v: v.slug)
def test_each_variant_removes_exactly_its_part_of_the_recipe(variant):
    full = _config()
    assert full.run.pretrained_encoder and full.model.encoder_freeze_steps > 0
    assert full.model.ctc_warmup_steps > 0 and 0 < full.model.language_dropout < 1
    assert full.model.optim_param_groups.encoder.lr < full.model.optim.lr
    cfg = _config(variant)
    changed = REMOVED[variant.slug]
    for key in RECIPE_KEYS:
        want = changed.get(key, OmegaConf.select(full, key))
        assert OmegaConf.select(cfg, key) == want, key
    if variant.slug != "full":  # a variant that changes nothing would measure nothing
        assert any(OmegaConf.select(cfg, k) != OmegaConf.select(full, k) for k in changed)
    assert cfg.trainer.max_steps == full.trainer.max_steps == STEPS


def _system(model, decoder, given, cer, wer):
    overall, one_language = {"cer": cer, "wer": wer}, {"cer": 1.0, "wer": 1.0}
    return {"model": model, "decoder": decoder, "language_given": given,
            "scores": {"all": overall, "hi": one_language}}  # fmt: skip


def test_table_scores_the_first_model_and_gives_the_delta_of_the_better_head():
    report = {"systems": [
        _system("model", "tdt", True, 0.20, 0.60), _system("model", "ctc", True, 0.18, 0.55),
        _system("model", "tdt", False, 0.22, 0.66), _system("model", "ctc", False, 0.19, 0.58),
        _system("model_init", "tdt", True, 0.99, 1.0),  # --compare: ignored
    ]}  # fmt: skip
    full = scores(report)
    assert full == {"tdt/cer": 0.20, "tdt/wer": 0.60, "ctc/cer": 0.18, "ctc/wer": 0.55,
                    "tdt/free/cer": 0.22, "tdt/free/wer": 0.66,
                    "ctc/free/cer": 0.19, "ctc/free/wer": 0.58}  # fmt: skip
    worse = {**full, "tdt/cer": 0.30, "ctc/cer": 0.25}
    table = markdown_table({"full recipe": full, "no freeze": worse})
    lines = table.splitlines()
    assert lines[2].startswith("| full recipe | 20.0% | 60.0% | 18.0% | 55.0%")
    assert lines[2].endswith("(reference) |") and lines[3].endswith("| +7.0 pp |")


def test_a_finished_run_is_reused_only_while_its_config_encoder_and_data_are_unchanged(tmp_path):
    full, no_freeze = variants(HEADS_LR)[0], variants(HEADS_LR)[2]
    encoder = tmp_path / "encoder.pt"
    encoder.write_bytes(b"weights")
    index, val = tmp_path / "train.parquet", tmp_path / "val.jsonl"
    for path in (index, val):
        path.write_bytes(b"data")
        os.utime(path, (1, 1))
    expected = expected_config(DEMO, STEPS, full)
    expected["run"]["pretrained_encoder"] = str(encoder)
    expected["data"].update(train_parquet=str(index), val_manifest=str(val))
    run = tmp_path / "run"
    run.mkdir()
    assert "unfinished" in stale_reason(run, expected)
    saved = OmegaConf.create({**expected, "run": {**expected["run"], "dir": "elsewhere"}})
    OmegaConf.save(saved, run / "config.yaml")
    (run / "model.nemo").write_bytes(b"nemo")
    os.utime(encoder, (1, 1))  # the encoder predates the model
    assert stale_reason(run, expected) is None  # run.dir may differ
    other = "trained with another config"
    assert stale_reason(run, expected_config(DEMO, STEPS, no_freeze)) == other
    assert stale_reason(run, expected_config(DEMO, 700, full)) == other
    os.utime(encoder, None)  # a new encoder.pt since
    os.utime(run / "model.nemo", (2, 2))
    assert "encoder.pt is newer than its model.nemo" in stale_reason(run, expected)
    os.utime(encoder, (1, 1))
    for path in (index, val):  # a rebuilt corpus: same paths, newer files
        os.utime(path, None)
        assert f"{path} is newer than its model.nemo" == stale_reason(run, expected)
        os.utime(path, (1, 1))
    assert stale_reason(run, expected) is None
