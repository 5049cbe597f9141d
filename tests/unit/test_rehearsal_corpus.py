"""The rehearsal index: production schema and mix, bounded row groups, rows that decode."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from loader_factories import synthetic_shard, train_spm

from lf_asr.data.dataset import ProductionDataset
from lf_asr.data.schema import PRODUCTION_INDEX_SCHEMA, index_max_duration
from maya_asr.data.rehearsal_corpus import (
    PRODUCTION_MIX,
    rows_per_language,
    scan_pool,
    write_rehearsal_index,
)
from maya_asr.languages import LANGUAGES

ROWS, ROW_GROUP = 24_000, 2_500


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    shards = [root / "hi" / "shard-000000.tar", root / "ta" / "shard-000000.tar"]
    synthetic_shard(shards[0], "hi", 6, seed=1)
    synthetic_shard(shards[1], "ta", 4, seed=2, sample_rate=8000)
    pool = scan_pool(shards)
    out = root / "index.parquet"
    info = write_rehearsal_index(
        out, pool, rows=ROWS, seed=3, row_group_rows=ROW_GROUP, max_duration_s=30.0,
        progress=False,
    )  # fmt: skip
    return pool, out, info


def test_pool_lists_every_audio_member_of_the_shards(rehearsal):
    pool, _, _ = rehearsal
    assert len(pool.tar_path) == 10
    assert sorted(set(pool.language)) == ["hi", "ta"]
    assert set(pool.sample_rate[pool.language == "ta"]) == {8000}


def test_rows_follow_the_stated_hour_mix():
    rows = rows_per_language(50_000_000, PRODUCTION_MIX)
    assert sum(rows.values()) == 50_000_000
    hours = {k: rows[k] * p.mean_duration_s / 3600 for k, p in PRODUCTION_MIX.items()}
    for lang, p in PRODUCTION_MIX.items():
        assert hours[lang] == pytest.approx(p.hours, rel=0.02), lang
    assert hours["hi"] > 20 * hours["as"]  # skewed: Hindi tens of thousands, Assamese ~1.5K


def test_index_has_the_contract_schema_bounded_row_groups_and_the_mix(rehearsal):
    _, out, info = rehearsal
    pf = pq.ParquetFile(out)
    assert pf.schema_arrow == PRODUCTION_INDEX_SCHEMA and pf.metadata.num_rows == ROWS
    groups = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
    assert max(groups) <= ROW_GROUP
    assert index_max_duration(out) == 30.0
    t = pf.read(columns=["language", "duration_s", "num_tokens"])
    lang = np.array(t["language"].to_pylist())
    change = np.flatnonzero(lang[1:] != lang[:-1]) + 1
    order = [lang[0], *lang[change].tolist()]
    assert order == [c for c in LANGUAGES if c in PRODUCTION_MIX]  # one block per language
    dur, tok = t["duration_s"].to_numpy(), t["num_tokens"].to_numpy()
    assert dur.min() >= 0.3 and dur.max() <= 30.0 and tok.min() >= 1
    for code in ("hi", "ml", "as"):
        d, k = dur[lang == code], tok[lang == code]
        assert len(d) == info["languages"][code]["rows"]
        assert d.mean() == pytest.approx(PRODUCTION_MIX[code].mean_duration_s, rel=0.1)
        assert k.sum() / d.sum() == pytest.approx(PRODUCTION_MIX[code].tokens_per_s, rel=0.05)
    assert info["hours"] == pytest.approx(dur.astype(np.float64).sum() / 3600, abs=0.5)


def test_rows_point_at_real_members_of_their_language(rehearsal):
    pool, out, _ = rehearsal
    t = pq.read_table(out, columns=["tar_path", "tar_offset_data", "tar_nbytes", "language", "key"])
    members = {
        (p, o, n): lang
        for p, o, n, lang in zip(
            pool.tar_path, pool.offset_data, pool.nbytes, pool.language, strict=True
        )
    }
    rows = zip(*(t[c].to_pylist() for c in t.column_names), strict=True)
    for path, offset, nbytes, lang, _key in rows:
        owner = members[(path, offset, nbytes)]  # KeyError: not a real member
        assert owner == lang or lang not in ("hi", "ta")  # own language when the pool has it


def test_the_loader_decodes_rehearsal_rows(rehearsal, tmp_path):
    _, out, _ = rehearsal
    texts = pq.read_table(out, columns=["transcript"]).slice(0, 200)["transcript"].to_pylist()
    model = train_spm(texts, tmp_path / "spm", vocab_size=200)
    ds = ProductionDataset(out, LANGUAGES, model)
    rows = np.random.default_rng(0).integers(0, ROWS, 16).tolist()
    audio, audio_lens, _, token_lens, _ = ds[rows]
    assert ds.bad_samples == 0 and audio.shape[0] == 16 and int(audio_lens.min()) > 0
    assert int(token_lens.min()) > 0
