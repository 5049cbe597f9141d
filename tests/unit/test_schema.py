"""The index contract: castable types are cast exactly, anything else is refused by name."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lf_asr.data.schema import (
    PRODUCTION_INDEX_SCHEMA,
    cast_to_index_schema,
    check_buckets_cover,
    check_index_schema,
)


def _table(**overrides) -> pa.Table:
    values = {
        "tar_path": ["/s/hi/shard-000000.tar", "/s/ta/shard-000000.tar"],
        "tar_offset_data": [512, 4096],
        "tar_nbytes": [3200, 6400],
        "transcript": ["नमस्ते", "வணக்கம்"],
        "duration_s": [0.1, 20.0],
        "language": ["hi", "ta"],
        "speaker": ["", "s1"],
        "key": ["hi_0", "ta_0"],
        "sample_rate": [16000, 8000],
        "num_tokens": [3, 4],
    }
    table = pa.Table.from_pydict(values, schema=PRODUCTION_INDEX_SCHEMA)
    for name, column in overrides.items():
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


def test_dictionary_and_width_variants_cast_to_the_exact_contract(tmp_path):
    base = _table()
    loose = _table(
        language=base["language"].dictionary_encode(),  # what a pandas categorical writes
        transcript=base["transcript"].cast(pa.large_string()),
        num_tokens=base["num_tokens"].cast(pa.int64()),
        sample_rate=base["sample_rate"].cast(pa.uint16()),
        duration_s=base["duration_s"].cast(pa.float64()),
    )
    path = tmp_path / "loose.parquet"
    pq.write_table(loose, path)
    read = pq.read_table(path)
    assert pa.types.is_dictionary(read.schema.field("language").type)
    cast = cast_to_index_schema(read, str(path))
    assert cast.schema == PRODUCTION_INDEX_SCHEMA
    assert cast.to_pylist() == base.to_pylist()


@pytest.mark.parametrize(
    ("column", "values", "found"),
    [
        ("duration_s", pa.array(["1.0", "2.0"]), "string"),
        ("tar_offset_data", pa.array([512.0, 4096.0]), "double"),
        ("language", pa.array([1, 2], pa.int8()), "int8"),
    ],
)
def test_wrong_types_are_refused_naming_file_column_found_and_expected(column, values, found):
    expected = PRODUCTION_INDEX_SCHEMA.field(column).type
    with pytest.raises(ValueError) as err:
        cast_to_index_schema(_table(**{column: values}), "/data/idx.parquet")
    msg = str(err.value)
    assert "/data/idx.parquet" in msg
    assert f"column {column!r} is {found}, expected {expected}" in msg
    assert "make prod-artifacts" in msg  # the fix


def test_values_that_do_not_fit_or_are_null_are_refused_by_column():
    with pytest.raises(ValueError, match=r"'num_tokens'.*does not fit int32"):
        cast_to_index_schema(_table(num_tokens=pa.array([3, 2**40])), "idx.parquet")
    with pytest.raises(ValueError, match="'key' has 1 null"):
        cast_to_index_schema(_table(key=pa.array(["a", None])), "idx.parquet")


def test_missing_column_is_named():
    with pytest.raises(ValueError, match="column 'num_tokens' is missing"):
        check_index_schema(_table().drop(["num_tokens"]).schema, "idx.parquet")


def test_last_bucket_edge_is_inclusive_and_longer_clips_are_refused_with_the_fix():
    check_buckets_cover(20.0, (0.0, 4.0, 20.0), "index")  # exactly the edge: kept
    with pytest.raises(ValueError, match=r"data\.bucket_edges.*manifest\.max_duration_s"):
        check_buckets_cover(40.0, (0.0, 4.0, 20.0), "index")
