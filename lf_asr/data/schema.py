"""The production index: the contract between the data pipeline (writer) and the loader (reader).

``production_train_final.parquet`` has one row per training utterance. The audio is the byte
range ``[tar_offset_data, tar_offset_data + tar_nbytes)`` of ``tar_path``: the data of the tar
member ``<key>.<wav|flac>``, readable with one ``os.pread`` and decodable by soundfile.

Batches made from it are tuples ``(audio, audio_lens, tokens, token_lens, lang_ids)``:
audio (B, T) float32 at 16 kHz, audio_lens (B,) int64, tokens (B, U) int64 padded with 0,
token_lens (B,) int64, lang_ids (B,) int64 — the index of the language in the model's language
list, or ``NO_LANGUAGE`` (-1) when the language is unknown or deliberately dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

NO_LANGUAGE = -1
TARGET_SAMPLE_RATE = 16000

PRODUCTION_INDEX_SCHEMA = pa.schema(
    [
        pa.field("tar_path", pa.string(), nullable=False),  # absolute path of the shard
        pa.field("tar_offset_data", pa.int64(), nullable=False),  # first byte of member data
        pa.field("tar_nbytes", pa.int64(), nullable=False),  # member data size in bytes
        pa.field("transcript", pa.string(), nullable=False),  # normalised text (NFC)
        pa.field("duration_s", pa.float32(), nullable=False),  # audio duration in seconds
        pa.field("language", pa.string(), nullable=False),  # one of maya_asr.LANGUAGES
        pa.field("speaker", pa.string(), nullable=False),  # speaker id ("" when unknown)
        pa.field("key", pa.string(), nullable=False),  # WebDataset key of the utterance
        pa.field("sample_rate", pa.int32(), nullable=False),  # native rate of the stored audio
        pa.field("num_tokens", pa.int32(), nullable=False),  # transcript length in BPE tokens
    ]
)
INDEX_COLUMNS: tuple[str, ...] = tuple(PRODUCTION_INDEX_SCHEMA.names)
# What the sampler needs; readers project just these columns.
SAMPLER_COLUMNS: tuple[str, ...] = ("duration_s", "language", "num_tokens")


# Parquet key-value metadata: the longest clip the index may hold (the manifest's
# max_duration_s, or the longest row if longer). The sampler's last bucket edge must reach it.
INDEX_MAX_DURATION_KEY = "index_max_duration_s"
_REBUILD = "rebuild it with `make prod-artifacts` (scripts/build_index.py)"


def _castable(found: pa.DataType, expected: pa.DataType) -> bool:
    """Whether ``found`` converts to ``expected`` without changing meaning.

    Dictionary columns (pandas categoricals, per-row-group dictionary encoding) decode to their
    values; string widths and integer widths convert (an integer that does not fit is refused
    when cast); float widths convert (durations need no float64 precision). Nothing else does:
    a float offset or a string duration means the writer is wrong, not narrow.
    """
    if pa.types.is_dictionary(found):
        found = found.value_type
    if found == expected:
        return True
    if pa.types.is_string(expected):
        return pa.types.is_string(found) or pa.types.is_large_string(found)
    if pa.types.is_integer(expected):
        return pa.types.is_integer(found)
    if pa.types.is_floating(expected):
        return pa.types.is_floating(found)
    return False


def index_schema_problems(schema: pa.Schema, columns: Sequence[str] = INDEX_COLUMNS) -> list[str]:
    """One sentence per missing column or column of a type that cannot be cast to the contract."""
    problems = []
    for name in columns:
        expected = PRODUCTION_INDEX_SCHEMA.field(name).type
        if name not in schema.names:
            problems.append(f"column {name!r} is missing (expected {expected})")
        elif not _castable(found := schema.field(name).type, expected):
            problems.append(f"column {name!r} is {found}, expected {expected}")
    return problems


def check_index_schema(
    schema: pa.Schema, path: str, columns: Sequence[str] = INDEX_COLUMNS
) -> None:
    """Raise ``ValueError`` naming ``path``, each bad column, its type and the fix.

    Types that :func:`cast_to_index_schema` converts safely (dictionary, string and int widths)
    pass; anything else is refused here, before a worker meets it.
    """
    problems = index_schema_problems(schema, columns)
    if problems:
        raise ValueError(
            f"{path} does not match the production index contract: {'; '.join(problems)}. "
            f"Write those columns with the types of lf_asr.data.schema.PRODUCTION_INDEX_SCHEMA, "
            f"or {_REBUILD}"
        )


def cast_to_index_schema(
    table: pa.Table, path: str, columns: Sequence[str] = INDEX_COLUMNS
) -> pa.Table:
    """``columns`` of ``table`` with exactly the contract's types (dictionaries decoded).

    Raises ``ValueError`` naming ``path`` and the column for an uncastable type, a value that
    does not fit the contract's width, or a null.
    """
    check_index_schema(table.schema, path, columns)
    fields = [PRODUCTION_INDEX_SCHEMA.field(name) for name in columns]
    out = []
    for f in fields:
        col = table.column(f.name)
        if col.type != f.type:
            try:
                col = col.cast(f.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise ValueError(
                    f"{path}: column {f.name!r} ({table.schema.field(f.name).type}) does not fit "
                    f"{f.type}: {e}; {_REBUILD}"
                ) from None
        if col.null_count:
            raise ValueError(f"{path}: column {f.name!r} has {col.null_count} null(s); {_REBUILD}")
        out.append(col)
    return pa.table(out, schema=pa.schema(fields))


def index_max_duration(path: str | Path) -> float | None:
    """The ``index_max_duration_s`` ``build_index`` recorded in the parquet footer's key-value
    metadata (None for indexes written before it did, or by other writers)."""
    import pyarrow.parquet as pq

    value = (pq.read_metadata(path).metadata or {}).get(INDEX_MAX_DURATION_KEY.encode())
    return float(value) if value is not None else None


def check_buckets_cover(max_duration_s: float, bucket_edges: Sequence[float], source: str) -> None:
    """Refuse an index whose clips may be longer than the sampler's last bucket edge.

    The last edge is inclusive (a clip of exactly that length is kept), so equality passes. A
    longer clip would be dropped by the sampler and only counted; refuse instead, with the fix.
    """
    last = float(bucket_edges[-1])
    if max_duration_s > last:
        raise ValueError(
            f"{source} may hold clips up to {max_duration_s:g} s but the sampler's last bucket "
            f"edge is {last:g} s, so longer clips would be dropped: add a bucket up to "
            f"{max_duration_s:g} s in data.bucket_edges of the training config, or lower "
            f"manifest.max_duration_s to {last:g} in the data config and rebuild the manifest"
        )
