"""Production index: exact schema, streamed row groups, true token counts, readable offsets."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sentencepiece as spm
import soundfile as sf

from lf_asr.data.schema import PRODUCTION_INDEX_SCHEMA, SAMPLER_COLUMNS, index_max_duration
from maya_asr.data.config import IndexConfig, load_data_config
from maya_asr.data.index import build_index, training_bucket_edges, write_val_manifest
from maya_asr.data.manifest import build_parts, discover_shards, merge_parts
from maya_asr.data.split import split_manifest
from maya_asr.data.tokenizer import build_tokenizer

REPO = Path(__file__).parents[2]
CFG = load_data_config(REPO / "configs" / "data" / "demo.yaml")


@pytest.fixture(scope="module")
def pipeline(tiny_corpus, tmp_path_factory):
    """manifest -> split -> tokenizer on the 12-language tiny corpus."""
    out = tmp_path_factory.mktemp("pipeline")
    tasks = discover_shards(tiny_corpus)
    build_parts(tasks, out / "raw", CFG, progress=False)
    merge_parts(tasks, out / "raw")
    split_manifest(out / "raw" / "manifest.jsonl", out, CFG.split)
    build_tokenizer(out / "train.jsonl", out / "tok", CFG, vocab_size=800)
    return out


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_index_has_the_contract_schema_and_every_train_row(pipeline, tmp_path):
    out = tmp_path / "phase3" / "production_train_final.parquet"
    info = build_index(
        pipeline / "train.jsonl", pipeline / "tok", out, IndexConfig(row_group_rows=5),
        progress=False, block_bytes=4096,
    )  # fmt: skip
    train = _rows(pipeline / "train.jsonl")
    pf = pq.ParquetFile(out)
    assert pf.schema_arrow == PRODUCTION_INDEX_SCHEMA
    assert info["rows"] == pf.metadata.num_rows == len(train)
    assert pf.metadata.num_row_groups == -(-len(train) // 5)  # streamed in fixed row groups
    table = pf.read()
    sp = spm.SentencePieceProcessor(model_file=str(pipeline / "tok" / "tokenizer.model"))
    for rec, row in zip(train, table.to_pylist(), strict=True):
        assert row["key"] == rec["key"] and row["language"] == rec["lang"]
        assert row["transcript"] == rec["text"] and os.path.isabs(row["tar_path"])
        assert row["num_tokens"] == len(sp.encode(rec["text"])) > 0
        assert row["duration_s"] == pytest.approx(rec["duration"], rel=1e-6)
    assert info["tokens"] == sum(table.column("num_tokens").to_pylist())
    projected = pq.read_table(out, columns=list(SAMPLER_COLUMNS))
    assert projected.column_names == list(SAMPLER_COLUMNS)


def test_index_rows_pread_to_the_audio_they_describe(pipeline, tmp_path):
    out = tmp_path / "index.parquet"
    build_index(pipeline / "train.jsonl", pipeline / "tok", out, IndexConfig(), progress=False)
    for row in pq.read_table(out).to_pylist():
        fd = os.open(row["tar_path"], os.O_RDONLY)
        try:
            data = os.pread(fd, row["tar_nbytes"], row["tar_offset_data"])
        finally:
            os.close(fd)
        audio, sr = sf.read(io.BytesIO(data))
        assert sr == row["sample_rate"] and audio.ndim == 1
        assert len(audio) / sr == pytest.approx(row["duration_s"], abs=1e-4)


def test_val_manifest_serves_nemo_and_our_loader(pipeline, tmp_path):
    out = tmp_path / "val_manifest.jsonl"
    info = write_val_manifest(pipeline / "val.jsonl", pipeline / "tok", out)
    rows = _rows(out)
    assert info["rows"] == len(rows) == len(_rows(pipeline / "val.jsonl")) > 0
    for r in rows:
        assert {"audio_filepath", "duration", "text"} <= set(r)  # NeMo
        assert {"tar_path", "tar_offset_data", "tar_nbytes", "lang", "num_tokens"} <= set(r)
        assert r["audio_filepath"].startswith(r["tar_path"] + "#" + r["key"] + ".")


def test_index_records_its_max_duration_and_the_last_edge_is_inclusive(pipeline, tmp_path):
    out = tmp_path / "index.parquet"
    info = build_index(
        pipeline / "train.jsonl", pipeline / "tok", out, IndexConfig(), progress=False,
        max_duration_s=20.0, bucket_edges=[0.0, 4.0, 20.0],
    )  # fmt: skip
    assert index_max_duration(out) == info["max_duration_s"] == 20.0


def test_index_whose_clips_pass_the_last_bucket_edge_is_refused(pipeline, tmp_path):
    out = tmp_path / "index.parquet"
    train_yaml = _yaml(tmp_path / "train.yaml", "data:\n  bucket_edges: [0, 4, 20]\n")
    edges = training_bucket_edges(train_yaml)
    assert edges == [0.0, 4.0, 20.0]
    with pytest.raises(ValueError, match=r"add a bucket up to 40 s in data\.bucket_edges"):
        build_index(
            pipeline / "train.jsonl", pipeline / "tok", out, IndexConfig(), progress=False,
            max_duration_s=40.0, bucket_edges=edges,
        )  # fmt: skip
    # a row longer than the config admits (a manifest built with a looser config) is caught too
    rows = _rows(pipeline / "train.jsonl")
    rows[0]["duration"] = 25.0
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    with pytest.raises(ValueError, match="longest row"):
        build_index(
            train, pipeline / "tok", out, IndexConfig(), progress=False,
            max_duration_s=20.0, bucket_edges=edges,
        )  # fmt: skip
    assert list(tmp_path.glob("index.parquet*")) == []  # nothing half-written left behind


def _yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_missing_tokenizer_is_a_clear_error(pipeline, tmp_path):
    with pytest.raises(ValueError, match="build_tokenizer"):
        build_index(
            pipeline / "train.jsonl", tmp_path / "nope", tmp_path / "x.parquet", IndexConfig()
        )


@pytest.mark.slow
def test_nemo_parses_the_val_manifest(pipeline, tmp_path):
    from nemo.collections.common.parts.preprocessing import parsers
    from nemo.collections.common.parts.preprocessing.collections import ASRAudioText

    out = tmp_path / "val_manifest.jsonl"
    write_val_manifest(pipeline / "val.jsonl", pipeline / "tok", out)
    rows = _rows(out)
    entries = ASRAudioText(manifests_files=str(out), parser=parsers.make_parser(name="base"))
    assert len(entries) == len(rows)
    assert [e.text_raw for e in entries] == [r["text"] for r in rows]
    assert [e.duration for e in entries] == [r["duration"] for r in rows]
