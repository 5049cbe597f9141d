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


def check_index_schema(schema: pa.Schema, path: str) -> None:
    """Raise ``ValueError`` naming ``path`` and the fix when a required column is missing."""
    missing = [name for name in INDEX_COLUMNS if name not in schema.names]
    if missing:
        raise ValueError(
            f"{path} lacks column(s) {', '.join(missing)} of the production index; rebuild it "
            "with `make prod-artifacts` (scripts/build_index.py)"
        )
