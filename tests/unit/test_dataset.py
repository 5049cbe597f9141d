"""ProductionDataset and collate: the batch contract, bad samples, pickling, DataLoader workers."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import sentencepiece as spm
import torch
from loader_factories import corpus_shards, index_rows, synthetic_shard, train_spm, write_index

from lf_asr.data.dataset import DatasetConfig, ProductionDataset, TooManyBadSamplesError, collate
from lf_asr.data.production_sampler import ProductionBatchSampler
from lf_asr.data.schema import NO_LANGUAGE
from lf_asr.data.tar_offset_reader import TarOffsetReader

LANGS = ("hi", "bn", "ta", "te", "mr", "gu", "kn", "ml", "pa", "or", "as", "en")


@pytest.fixture(scope="module")
def demo_index(tiny_corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo_index")
    rows = index_rows(corpus_shards(tiny_corpus))
    return (
        rows,
        write_index(rows, folder / "index.parquet"),
        train_spm([r["transcript"] for r in rows], folder / "spm"),
    )


def test_collate_pads_to_the_batch_contract():
    audio, audio_lens, tokens, token_lens, langs = collate(
        [np.ones(3, np.float32), np.full(5, 2.0, np.float32)], [[4, 5], [6]], [0, NO_LANGUAGE]
    )
    assert audio.dtype == torch.float32 and audio.shape == (2, 5)
    assert audio[0].tolist() == [1, 1, 1, 0, 0] and audio[1].tolist() == [2] * 5
    assert audio_lens.tolist() == [3, 5] and audio_lens.dtype == torch.int64
    assert tokens.tolist() == [[4, 5], [6, 0]] and tokens.dtype == torch.int64
    assert token_lens.tolist() == [2, 1] and langs.tolist() == [0, -1]


def test_batches_hold_16k_audio_tokens_and_language_ids(demo_index):
    rows, index, model = demo_index
    ds = ProductionDataset(index, LANGS, model)
    sp = spm.SentencePieceProcessor(model_file=str(model))
    pick = [0, 5, 17, 35]
    audio, audio_lens, tokens, token_lens, langs = ds[pick]
    reader = TarOffsetReader()
    for j, i in enumerate(pick):
        r = rows[i]
        ref = reader.read(r["tar_path"], r["tar_offset_data"], r["tar_nbytes"], r["key"])
        assert audio_lens[j] == len(ref)
        assert torch.equal(audio[j, : len(ref)], torch.from_numpy(ref))
        ids = sp.encode(r["transcript"], out_type=int)
        assert tokens[j, : len(ids)].tolist() == ids and token_lens[j] == len(ids)
        assert langs[j] == LANGS.index(r["language"])
    assert audio.shape == (4, int(audio_lens.max())) and len(ds) == len(rows)


def test_languages_missing_from_the_model_list_get_no_language(demo_index):
    rows, index, model = demo_index
    ds = ProductionDataset(index, ("en",), model)
    langs = ds[list(range(len(rows)))][4]
    expected = [0 if r["language"] == "en" else NO_LANGUAGE for r in rows]
    assert langs.tolist() == expected


def _index_with_bad_rows(tmp_path, n_good=20, n_bad=2):
    synthetic_shard(tmp_path / "hi" / "shard-000000.tar", "hi", n_good)
    synthetic_shard(tmp_path / "en" / "shard-000000.tar", "en", n_bad, seed=1)
    rows = index_rows([tmp_path / "hi" / "shard-000000.tar", tmp_path / "en" / "shard-000000.tar"])
    bad = tmp_path / "en" / "shard-000000.tar"
    bad.write_bytes(bad.read_bytes()[:600])  # truncated: every en clip is now unreadable
    index = write_index(rows, tmp_path / "index.parquet")
    return rows, index, train_spm([r["transcript"] for r in rows], tmp_path / "spm")


def test_bad_samples_are_skipped_counted_and_logged(tmp_path):
    rows, index, model = _index_with_bad_rows(tmp_path)
    log = tmp_path / "bad.jsonl"
    ds = ProductionDataset(index, LANGS, model, DatasetConfig(bad_sample_log=str(log)))
    batch = ds[[0, 20, 1, 21]]
    assert batch[0].shape[0] == 2 and batch[4].tolist() == [0, 0]
    assert (ds.samples_seen, ds.bad_samples) == (4, 2)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["row"] for r in records] == [20, 21]
    assert records[0]["key"] == rows[20]["key"] and records[0]["error"] == "ShortReadError"
    assert records[0]["offset"] == rows[20]["tar_offset_data"]


def test_an_all_bad_batch_is_replaced_by_the_last_good_sample(tmp_path):
    _, index, model = _index_with_bad_rows(tmp_path)
    ds = ProductionDataset(index, LANGS, model)
    with pytest.raises(TooManyBadSamplesError, match="no good sample yet"):
        ds[[20]]
    good = ds[[3]]
    stand_in = ds[[21]]
    assert torch.equal(stand_in[0], good[0]) and ds.bad_samples == 2


def test_too_many_bad_samples_stop_with_a_clear_error(tmp_path):
    _, index, model = _index_with_bad_rows(tmp_path)
    cfg = DatasetConfig(max_bad_fraction=0.05, bad_sample_allowance=1)
    ds = ProductionDataset(index, LANGS, model, cfg)
    ds[[*range(10), 20]]  # 1 bad of 11: within 1 + 0.05 x 11
    with pytest.raises(TooManyBadSamplesError, match="2 of 12 samples"):
        ds[[21]]


def test_dataset_pickles_as_paths_and_reopens(demo_index):
    _, index, model = demo_index
    ds = ProductionDataset(index, LANGS, model)
    before = ds[[1, 2]]
    blob = pickle.dumps(ds)
    assert len(blob) < 2000, "no table, tokenizer or file handle travels to the workers"
    after = pickle.loads(blob)[[1, 2]]
    for a, b in zip(before, after, strict=True):
        assert torch.equal(a, b)


def test_dataloader_workers_give_the_same_batches_as_the_main_process(demo_index):
    _, index, model = demo_index
    ds = ProductionDataset(index, LANGS, model)

    def batches(workers):
        sampler = ProductionBatchSampler.from_parquet(
            index, languages=LANGS, max_batch_size=3, temperature=1.0, seed=11
        )
        loader = torch.utils.data.DataLoader(
            ds,
            batch_size=None,
            sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
        )
        return [b for _ in range(2) for b in loader]  # two passes: persistent workers reused

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel) > 0
    for a, b in zip(serial, parallel, strict=True):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)


def test_a_rewritten_index_gets_a_fresh_view(tmp_path):
    synthetic_shard(tmp_path / "hi" / "shard-000000.tar", "hi", 3)
    rows = index_rows([tmp_path / "hi" / "shard-000000.tar"])
    model = train_spm([r["transcript"] for r in rows], tmp_path / "spm")
    index = write_index(rows, tmp_path / "index.parquet")
    first = ProductionDataset(index, LANGS, model)[[0]][1]
    write_index(rows[::-1], index)
    again = ProductionDataset(index, LANGS, model)[[0]][1]
    assert first.tolist() != again.tolist()
    assert len(list(tmp_path.glob("index.loader-*.rows.npy"))) == 2


def test_rows_are_index_rows_with_real_shard_paths(demo_index):
    rows, index, model = demo_index
    got = ProductionDataset(index, LANGS, model).rows([3, 0])
    assert [(r.row, r.key, r.tar_path) for r in got] == [
        (i, rows[i]["key"], rows[i]["tar_path"]) for i in (3, 0)
    ]


def test_moved_shards_are_found_through_the_root_remap(tmp_path):
    synthetic_shard(tmp_path / "old" / "hi" / "shard-000000.tar", "hi", 4)
    rows = index_rows([tmp_path / "old" / "hi" / "shard-000000.tar"])
    model = train_spm([r["transcript"] for r in rows], tmp_path / "spm")
    index = write_index(rows, tmp_path / "index.parquet")
    (tmp_path / "old").rename(tmp_path / "new")
    lost = ProductionDataset(index, LANGS, model, DatasetConfig(bad_sample_allowance=10))
    with pytest.raises(TooManyBadSamplesError, match="no good sample"):
        lost[[0, 1]]
    assert lost.bad_samples == 2  # ShardMissingError, counted
    remap = {str((tmp_path / "old").resolve()): str((tmp_path / "new").resolve())}
    ds = ProductionDataset(index, LANGS, model, DatasetConfig(tar_root_remap=remap))
    assert ds[[0, 1, 2, 3]][0].shape[0] == 4 and ds.bad_samples == 0
    assert ds.rows([0])[0].tar_path.startswith(str((tmp_path / "new").resolve()))


def test_any_failing_lookup_or_read_is_a_counted_bad_sample_not_a_dead_worker(
    demo_index, tmp_path, monkeypatch
):
    rows, index, model = demo_index
    log = tmp_path / "bad.jsonl"
    ds = ProductionDataset(index, LANGS, model, DatasetConfig(bad_sample_log=str(log)))
    batch = ds[[0, len(rows) + 5, 1]]  # a row the index does not have
    assert batch[0].shape[0] == 2 and (ds.samples_seen, ds.bad_samples) == (3, 1)
    real_read = ds._reader.read

    def read(tar_path, offset, nbytes, key):
        if key == rows[2]["key"]:
            raise ValueError("resampler blew up")  # not a TarReadError
        return real_read(tar_path, offset, nbytes, key)

    monkeypatch.setattr(ds._reader, "read", read)
    assert ds[[2, 3]][0].shape[0] == 1 and ds.bad_samples == 2
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["row"], r["error"]) for r in records] == [
        (len(rows) + 5, "IndexLookupError"),
        (2, "ValueError"),
    ]
    assert records[1]["key"] == rows[2]["key"] and records[1]["reason"] == "resampler blew up"
