"""Production index ("phase 3"): train split + tokenizer -> ``production_train_final.parquet``.

The schema is ``lf_asr.data.schema.PRODUCTION_INDEX_SCHEMA`` (the loader's contract). The train
manifest is read in bounded blocks of lines parsed by pyarrow's JSON reader, each block's
transcripts are tokenised with the trained SentencePiece model (``num_tokens``: the sampler's
token cap needs it), and blocks are written as row groups of ``row_group_rows`` rows, so memory
holds one block and one row group whatever the row count. The loader projects ``duration_s,
language, num_tokens`` cheaply because parquet stores columns apart.

The val split becomes the val manifest (JSONL): NeMo's manifest fields (``audio_filepath``,
``duration``, ``text``) plus what our own loader reads (``tar_path``, ``tar_offset_data``,
``tar_nbytes``, ``lang``, ``sample_rate``) and ``num_tokens``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from lf_asr.data.schema import (
    INDEX_MAX_DURATION_KEY,
    PRODUCTION_INDEX_SCHEMA,
    check_buckets_cover,
    check_index_schema,
)
from maya_asr.data.config import IndexConfig

# manifest field -> index column
_RENAMES = {
    "tar_path": "tar_path",
    "tar_offset_data": "tar_offset_data",
    "tar_nbytes": "tar_nbytes",
    "text": "transcript",
    "duration": "duration_s",
    "lang": "language",
    "speaker": "speaker",
    "key": "key",
    "sample_rate": "sample_rate",
}
_JSON_BLOCK_BYTES = 16 << 20


def _manifest_schema() -> pa.Schema:
    types = {f.name: f.type for f in PRODUCTION_INDEX_SCHEMA}
    return pa.schema([(src, types[dst]) for src, dst in _RENAMES.items()])


def training_bucket_edges(train_config: str | Path) -> list[float]:
    """``data.bucket_edges`` of a training YAML (the training default when it sets none)."""
    from omegaconf import OmegaConf

    from lf_asr.data.production_sampler import SamplerConfig

    path = Path(train_config)
    if not path.is_file():
        raise FileNotFoundError(f"training config {path} does not exist")
    edges = OmegaConf.select(OmegaConf.load(path), "data.bucket_edges")
    return [float(e) for e in (edges if edges is not None else SamplerConfig().bucket_edges)]


def load_sentencepiece(tokenizer_dir: str | Path):
    import sentencepiece as spm

    model = Path(tokenizer_dir) / "tokenizer.model"
    if not model.exists():
        raise ValueError(f"{model} does not exist; build it with scripts/build_tokenizer.py")
    return spm.SentencePieceProcessor(model_file=str(model))


def count_tokens(sp, texts: list[str], threads: int = 1) -> list[int]:
    return [len(ids) for ids in sp.encode(texts, num_threads=threads)]


def iter_manifest_blocks(path: str | Path, block_bytes: int) -> Iterator[pa.Table]:
    """The manifest as tables of about ``block_bytes`` of JSON lines each.

    pyarrow's streaming ``open_json`` reads ahead without bound (it buffered a whole 250 MB
    manifest before yielding the first block), so we cut whole lines ourselves and let
    ``read_json`` parse one bounded chunk at a time.
    """
    parse = pj.ParseOptions(explicit_schema=_manifest_schema(), unexpected_field_behavior="ignore")
    with open(path, "rb") as f:
        while lines := f.readlines(block_bytes):
            chunk = b"".join(lines)
            read = pj.ReadOptions(use_threads=True, block_size=max(1 << 20, len(chunk) + 1))
            yield pj.read_json(pa.BufferReader(chunk), read_options=read, parse_options=parse)


def _to_index_table(table: pa.Table, sp, threads: int) -> pa.Table:
    missing = [name for name in _RENAMES if name not in table.column_names]
    if missing:
        raise ValueError(f"manifest rows lack field(s) {missing}; rebuild with build_manifest.py")
    columns = {dst: table.column(src) for src, dst in _RENAMES.items()}
    transcripts = columns["transcript"].to_pylist()
    if any(t is None for t in transcripts):
        raise ValueError("a manifest row has no text; rebuild with build_manifest.py")
    columns["speaker"] = columns["speaker"].fill_null("")
    columns["num_tokens"] = pa.array(count_tokens(sp, transcripts, threads), pa.int32())
    return pa.table(
        [columns[f.name] for f in PRODUCTION_INDEX_SCHEMA], schema=PRODUCTION_INDEX_SCHEMA
    )


def build_index(
    train_manifest: str | Path,
    tokenizer_dir: str | Path,
    out_path: str | Path,
    cfg: IndexConfig,
    threads: int = 1,
    progress: bool = True,
    block_bytes: int = _JSON_BLOCK_BYTES,
    max_duration_s: float | None = None,
    bucket_edges: Sequence[float] | None = None,
) -> dict:
    """Stream ``train_manifest`` into the production parquet; return row and token totals.

    ``max_duration_s`` (the manifest config's) is recorded in the parquet metadata as
    ``index_max_duration_s`` (raised to the longest row if one is longer), so the loader can see
    what the index may hold. With ``bucket_edges`` (the training config's ``data.bucket_edges``)
    an index whose clips could pass the last edge is refused before (and after) the work.
    Memory: one JSON block (``block_bytes``) plus one row group (``cfg.row_group_rows`` rows).
    """
    from tqdm import tqdm

    if max_duration_s is not None and bucket_edges is not None:
        check_buckets_cover(max_duration_s, bucket_edges, "manifest.max_duration_s")
    sp = load_sentencepiece(tokenizer_dir)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".partial")
    blocks = iter_manifest_blocks(train_manifest, block_bytes)
    tokens, longest = 0, 0.0
    pending: list[pa.Table] = []
    pending_rows = 0
    bar = tqdm(unit="row", desc="index", disable=not progress)

    def flush(writer: pq.ParquetWriter) -> None:
        nonlocal pending, pending_rows
        if pending:
            writer.write_table(pa.concat_tables(pending), row_group_size=cfg.row_group_rows)
            pending, pending_rows = [], 0

    with pq.ParquetWriter(tmp, PRODUCTION_INDEX_SCHEMA, compression=cfg.compression) as writer:
        for block in blocks:
            table = _to_index_table(block, sp, threads)
            tokens += pc.sum(table.column("num_tokens")).as_py() or 0
            longest = max(longest, pc.max(table.column("duration_s")).as_py() or 0.0)
            while table.num_rows:
                take = min(table.num_rows, cfg.row_group_rows - pending_rows)
                pending.append(table.slice(0, take))
                pending_rows += take
                table = table.slice(take)
                if pending_rows >= cfg.row_group_rows:
                    flush(writer)
            bar.update(block.num_rows)
        flush(writer)
        limit = max(longest, max_duration_s or 0.0)
        writer.add_key_value_metadata({INDEX_MAX_DURATION_KEY: repr(limit)})
    bar.close()
    if bucket_edges is not None:
        try:
            check_buckets_cover(limit, bucket_edges, f"{train_manifest} (longest row)")
        except ValueError:
            tmp.unlink()
            raise
    os.replace(tmp, out_path)
    meta = pq.ParquetFile(out_path).metadata
    check_index_schema(pq.read_schema(out_path), str(out_path))
    return {
        "rows": meta.num_rows,
        "row_groups": meta.num_row_groups,
        "tokens": tokens,
        "max_duration_s": limit,
        "path": str(out_path),
    }


def write_val_manifest(
    val_manifest: str | Path, tokenizer_dir: str | Path, out_path: str | Path, threads: int = 1
) -> dict:
    """The val split as a NeMo manifest that our loader reads too, with ``num_tokens`` added.

    Val is small (hours per language), so it is tokenised in one call.
    """
    sp = load_sentencepiece(tokenizer_dir)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".partial")
    rows = 0
    with open(val_manifest, encoding="utf-8") as f, open(tmp, "w", encoding="utf-8") as out:
        records = [json.loads(line) for line in f]
        counts = count_tokens(sp, [r["text"] for r in records], threads)
        for rec, n in zip(records, counts, strict=True):
            rec["num_tokens"] = n
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            rows += 1
    os.replace(tmp, out_path)
    return {"rows": rows, "path": str(out_path)}
