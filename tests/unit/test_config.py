"""Data configs load, fill defaults per language, and refuse bad values with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from maya_asr.data.config import data_config_from_dict, load_data_config
from maya_asr.languages import LANGUAGES

CONFIGS = sorted((Path(__file__).parents[2] / "configs" / "data").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_data_config(path)
    assert set(cfg.text) == set(LANGUAGES)
    assert cfg.text["en"].lowercase and cfg.text["en"].script == "Latin"
    assert cfg.text["as"].script == "Bengali" and not cfg.text["hi"].lowercase


def test_language_override_wins_over_defaults():
    cfg = data_config_from_dict(
        {
            "text": {
                "defaults": {"min_script_share": 0.8},
                "languages": {"ta": {"punctuation": "keep"}},
            }
        }
    )
    assert cfg.text["ta"].punctuation == "keep" and cfg.text["ta"].min_script_share == 0.8
    assert cfg.text["hi"].punctuation == "strip"


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"text": {"languages": {"xx": {}}}}, "unknown language 'xx'"),
        ({"text": {"defaults": {"punctuation": "drop"}}}, "text.punctuation"),
        ({"text": {"defaults": {"min_chars_per_s": 50}}}, "min_chars_per_s"),
        ({"text": {"defaults": {"colour": 1}}}, "unknown key"),
        ({"split": {"val_fraction": 1.5}}, "split.val_fraction"),
        ({"tokenizer": {"vocab_size": 3}}, "tokenizer.vocab_size"),
        ({"manifest": {"max_reject_rate": 2}}, "manifest.max_reject_rate"),
        ({"sampler": {}}, "unknown section"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(raw, match):
    with pytest.raises(ValueError, match=match):
        data_config_from_dict(raw)


def test_missing_file_says_where_to_look(tmp_path):
    with pytest.raises(ValueError, match="configs/data"):
        load_data_config(tmp_path / "nope.yaml")
