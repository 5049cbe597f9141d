"""with_nemo_sections: the keys NeMo's clients read, from a run's data settings or defaults."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from maya_asr.models.nemo_config import DATASET_KEYS, with_nemo_sections

BASE = {
    "target": "maya_asr.models.model.MayaHybridTDTCTCModel",
    "sample_rate": 16000,
    "tokenizer": {"dir": "tok", "type": "bpe"},
    "decoding": {"strategy": "greedy_batch", "model_type": "tdt"},
    "aux_ctc": {"decoding": {"strategy": "greedy_batch"}},
}
DATA = {
    "train_parquet": "idx.parquet", "val_manifest": "val.jsonl", "max_batch_size": 8,
    "max_batch_dur": 32.0, "max_tokens_in_batch": 400, "bucket_edges": [0.0, 4.0, 8.0, 20.0],
    "num_workers": 1, "val_batch_size": 16, "max_val_utterances": 48, "temperature": 0.3,
}  # fmt: skip


def test_a_training_run_records_its_loader_settings_in_nemo_terms():
    cfg = with_nemo_sections(BASE, data=DATA)
    assert cfg.train_ds.index_parquet == "idx.parquet" and cfg.train_ds.manifest_filepath is None
    assert (cfg.train_ds.batch_size, cfg.train_ds.batch_duration) == (8, 32.0)
    assert (cfg.train_ds.min_duration, cfg.train_ds.max_duration) == (0.0, 20.0)
    assert list(cfg.train_ds.bucket_duration_bins) == [4.0, 8.0]
    assert cfg.validation_ds.manifest_filepath == "val.jsonl"
    assert cfg.validation_ds.batch_size == 16 and cfg.test_ds.manifest_filepath is None
    for key in DATASET_KEYS:
        assert cfg[key].use_start_end_token is False and cfg[key].sample_rate == 16000


def test_without_data_existing_sections_are_kept_and_missing_ones_added():
    given = {**BASE, "validation_ds": {"manifest_filepath": "mine.jsonl", "batch_size": 2}}
    cfg = with_nemo_sections(given, target="nemo.X")
    assert cfg.validation_ds.manifest_filepath == "mine.jsonl" and cfg.validation_ds.batch_size == 2
    assert cfg.validation_ds.use_start_end_token is False  # NeMo's BPE default would be true
    assert cfg.train_ds.manifest_filepath is None and cfg.test_ds.batch_size == 16
    assert cfg.target == "nemo.X"
    assert "train_ds" not in OmegaConf.create(given)  # the input is not modified


@pytest.mark.parametrize("missing", ["tokenizer", "decoding"])
def test_a_config_nemo_cannot_decode_with_is_refused_with_the_key_named(missing):
    cfg = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ValueError, match=missing):
        with_nemo_sections(cfg)


def test_no_sample_rate_is_refused_with_the_fix():
    cfg = {k: v for k, v in BASE.items() if k != "sample_rate"}
    with pytest.raises(ValueError, match=r"model\.sample_rate"):
        with_nemo_sections(cfg)
