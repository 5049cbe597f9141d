"""The loader's index view: exact rows across build batches, O(batch) allocation, shard table,
casts."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lf_asr.data.index_view import (
    ROW_DTYPE,
    IndexLookupError,
    open_index_view,
    remap_root,
    view_paths,
)
from lf_asr.data.schema import PRODUCTION_INDEX_SCHEMA

N_ROWS, ROW_GROUP, SHARDS = 3000, 7, 37


def _index(path, n=N_ROWS, row_group=ROW_GROUP, dictionary_language=False):
    rng = np.random.default_rng(0)
    langs = np.array(["hi", "ta", "en", "as"])
    table = pa.table(
        {
            "tar_path": [f"/data/raw/{i * SHARDS // n:04d}/shard.tar" for i in range(n)],
            "tar_offset_data": np.arange(n, dtype=np.int64) * 1024 + 512,
            "tar_nbytes": rng.integers(1000, 9000, n),
            # ~6 MB column, multi-byte UTF-8 (Devanagari, Tamil) of varying length
            "transcript": [f"वाक्य {i} " + "த" * (i % 7) + "x" * 2000 for i in range(n)],
            "duration_s": rng.uniform(0.5, 20, n).astype(np.float32),
            "language": langs[rng.integers(0, 4, n)],
            "speaker": [""] * n,
            "key": [f"k{i:06d}" for i in range(n)],
            "sample_rate": np.full(n, 16000, np.int32),
            "num_tokens": rng.integers(1, 90, n).astype(np.int32),
        },
        schema=PRODUCTION_INDEX_SCHEMA,
    )
    if dictionary_language:  # what a pandas categorical, or a per-row-group dictionary, writes
        i = table.schema.get_field_index("language")
        table = table.set_column(i, "language", table["language"].dictionary_encode())
    pq.write_table(table, path, row_group_size=row_group)
    return table.to_pylist()


def _expected(row: dict) -> tuple:
    return (row["tar_path"], row["tar_offset_data"], row["tar_nbytes"], row["transcript"],
            row["language"], row["key"])  # fmt: skip


def _got(r) -> tuple:
    return (r.tar_path, r.tar_offset_data, r.tar_nbytes, r.transcript, r.language, r.key)


def test_rows_built_in_many_batches_come_back_exact_and_in_order(tmp_path):
    rows = _index(tmp_path / "index.parquet")
    view = open_index_view(tmp_path / "index.parquet", batch_rows=64)  # 47 build batches
    assert len(view) == N_ROWS
    pick = [2999, 0, 64, 63, 1500, 1500, 7, 2048]  # chunk edges, repeats, any order
    got = view.rows(pick)
    assert [r.row for r in got] == pick
    assert [_got(r) for r in got] == [_expected(rows[i]) for i in pick]
    assert [_got(r) for r in view.rows(range(N_ROWS))] == [_expected(r) for r in rows]


def test_a_lookup_allocates_no_arrow_memory_at_any_index_size(tmp_path):
    _index(tmp_path / "index.parquet")
    view = open_index_view(tmp_path / "index.parquet", batch_rows=512)
    rng = np.random.default_rng(1)
    before = pa.total_allocated_bytes()
    default = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(default)  # every Arrow allocation during the lookups lands here
    pa.set_memory_pool(pool)
    try:
        for _ in range(200):
            view.rows(rng.integers(0, N_ROWS, 16))
    finally:
        pa.set_memory_pool(default)
    # not the 6 MB transcript column concatenated (the old Table.take), not even the 16 rows
    assert pool.max_memory() == 0
    assert pa.total_allocated_bytes() == before


def test_tar_path_becomes_a_shard_id_into_a_shard_table(tmp_path):
    rows = _index(tmp_path / "index.parquet")
    open_index_view(tmp_path / "index.parquet", batch_rows=256)
    files = view_paths(tmp_path / "index.parquet")
    records = np.load(files.rows, mmap_mode="r")  # a plain .npy: numpy reads it
    assert records.dtype == ROW_DTYPE and len(records) == N_ROWS
    assert ROW_DTYPE.itemsize == 40 and "tar_path" not in ROW_DTYPE.names
    tables = json.loads(files.tables.read_text())
    assert len(tables["shards"]) == SHARDS
    assert [tables["shards"][s] for s in records["shard_id"]] == [r["tar_path"] for r in rows]
    # the blob is the rows' transcripts and keys, back to back, nothing else
    text = sum(len((r["transcript"] + r["key"]).encode()) for r in rows)
    assert files.text.stat().st_size == text


def test_dictionary_typed_language_is_cast_not_a_crash(tmp_path):
    rows = _index(tmp_path / "index.parquet", dictionary_language=True)
    view = open_index_view(tmp_path / "index.parquet", batch_rows=100)
    assert [r.language for r in view.rows([0, 1, 2999])] == [
        rows[i]["language"] for i in (0, 1, 2999)
    ]


def test_an_index_with_no_rows_opens_empty(tmp_path):
    _index(tmp_path / "index.parquet", n=0)
    view = open_index_view(tmp_path / "index.parquet")
    assert len(view) == 0 and view.rows([]) == []
    with pytest.raises(IndexLookupError, match="row 0 is outside"):
        view.rows([0])


@pytest.mark.parametrize("damage", ["text cut short", "records cut short", "tables missing"])
def test_a_damaged_view_is_refused_naming_the_fix(tmp_path, damage):
    _index(tmp_path / "index.parquet", n=50)
    files = view_paths(tmp_path / "index.parquet")
    open_index_view(tmp_path / "index.parquet")
    if damage == "tables missing":
        files.tables.unlink()
    else:  # a copy cut short (disk full, interrupted rsync)
        path = files.text if damage == "text cut short" else files.rows
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size - 10)
    with pytest.raises(IndexLookupError, match=r"cannot be opened.*delete index\.loader-"):
        open_index_view(tmp_path / "index.parquet")


def test_a_failed_build_leaves_no_partial_files(tmp_path):
    table = pa.Table.from_pylist(_index(tmp_path / "ok.parquet", n=300), PRODUCTION_INDEX_SCHEMA)
    rows = table.to_pylist()
    rows[250]["transcript"] = None  # found in the 4th batch, after 3 were written
    i = PRODUCTION_INDEX_SCHEMA.get_field_index("transcript")
    schema = PRODUCTION_INDEX_SCHEMA.set(i, PRODUCTION_INDEX_SCHEMA.field(i).with_nullable(True))
    pq.write_table(pa.Table.from_pylist(rows, schema), tmp_path / "bad.parquet", row_group_size=64)
    with pytest.raises(ValueError, match="'transcript' has 1 null"):
        open_index_view(tmp_path / "bad.parquet", batch_rows=64)
    assert sorted(p.name for p in tmp_path.glob("bad.loader-*")) == [
        view_paths(tmp_path / "bad.parquet").rows.name + ".lock"
    ]


def test_views_of_an_older_index_version_are_named_not_deleted(tmp_path, caplog):
    _index(tmp_path / "index.parquet", n=40)
    old = view_paths(tmp_path / "index.parquet")
    open_index_view(tmp_path / "index.parquet")
    _index(tmp_path / "index.parquet", n=41)  # rewritten: a new view is built
    with caplog.at_level("WARNING", logger="lf_asr.data.index_view"):
        assert len(open_index_view(tmp_path / "index.parquet")) == 41
    assert "3 file(s) of older views of index.parquet" in caplog.text
    assert all(p.exists() for p in old)


def test_a_lookup_allocates_what_it_returns_not_the_index(tmp_path):
    _index(tmp_path / "index.parquet")  # 3,000 rows of ~2 KB transcripts: a 6 MB blob
    view = open_index_view(tmp_path / "index.parquet")
    rng = np.random.default_rng(2)
    view.rows(rng.integers(0, N_ROWS, 16))
    tracemalloc.start()
    try:
        peaks = []
        for _ in range(20):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            got = view.rows(rng.integers(0, N_ROWS, 16))
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
            del got
    finally:
        tracemalloc.stop()
    returned = 16 * 3 * 2100  # 16 rows: their text as bytes and as str (Tamil: 3 bytes/char)
    assert max(peaks) < returned + 64 * 1024


def test_out_of_range_rows_raise_a_lookup_error_naming_the_row(tmp_path):
    _index(tmp_path / "index.parquet", n=50)
    view = open_index_view(tmp_path / "index.parquet")
    with pytest.raises(IndexLookupError, match="row 50 is outside"):
        view.rows([3, 50])
    with pytest.raises(IndexLookupError, match="row -1"):
        view.rows([-1])


def test_wrong_column_type_is_refused_when_the_view_is_built(tmp_path):
    table = pa.Table.from_pylist(_index(tmp_path / "ok.parquet", n=5), PRODUCTION_INDEX_SCHEMA)
    i = table.schema.get_field_index("tar_offset_data")
    table = table.set_column(i, "tar_offset_data", table["tar_offset_data"].cast(pa.float64()))
    pq.write_table(table, tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="'tar_offset_data' is double, expected int64"):
        open_index_view(tmp_path / "bad.parquet")


def test_remap_root_replaces_the_longest_whole_root():
    remap = [("/data/raw", "/mnt/a"), ("/data/raw/hi/", "/mnt/hi")]
    assert remap_root("/data/raw/ta/shard-1.tar", remap) == "/mnt/a/ta/shard-1.tar"
    assert remap_root("/data/raw/hi/shard-1.tar", remap) == "/mnt/hi/shard-1.tar"
    assert remap_root("/data/raw2/ta/shard-1.tar", remap) == "/data/raw2/ta/shard-1.tar"
