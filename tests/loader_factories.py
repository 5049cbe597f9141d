"""Test factories for the runtime loader: raw shards, a production index built from them with
``tarfile`` offsets, a tiny SentencePiece model, and synthetic sampler columns.

Imported by tests as ``from loader_factories import ...`` (pytest puts ``tests/`` on sys.path for
its conftest). The real index builder belongs to the data pipeline; this one is deliberately
minimal so loader tests do not depend on it.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from lf_asr.data.schema import PRODUCTION_INDEX_SCHEMA


def audio_bytes(audio: np.ndarray, sample_rate: int, fmt: str = "wav") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, sample_rate, format=fmt.upper(), subtype="PCM_16")
    return buf.getvalue()


def write_shard(path: Path, members: list[tuple[str, bytes]]) -> None:
    """A tar of (name, data) members with fixed metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def synthetic_shard(
    path: Path, lang: str, n: int, seed: int = 0, fmt: str = "wav", sample_rate: int = 16000
) -> None:
    """``n`` clips of tones in noise (0.5-3 s) with their JSON metadata, raw-shard layout."""
    rng = np.random.default_rng(seed)
    members = []
    for i in range(n):
        dur = rng.uniform(0.5, 3.0)
        t = np.arange(int(dur * sample_rate)) / sample_rate
        audio = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 800) * t) + 0.01 * rng.normal(size=len(t))
        key = f"{lang}_{seed:03d}_{i:05d}"
        members.append((f"{key}.{fmt}", audio_bytes(audio.astype(np.float32), sample_rate, fmt)))
        meta = {"text": f"tone {i} of {lang}", "lang": lang, "speaker": f"s{i % 3}"}
        members.append((f"{key}.json", json.dumps(meta).encode()))
    write_shard(path, members)


def index_rows(shards: list[Path]) -> list[dict]:
    """Production index rows of the audio members of ``shards``, offsets from ``tarfile``."""
    rows = []
    for shard in shards:
        with tarfile.open(shard) as tar:
            members = tar.getmembers()
            meta = {}
            for m in members:
                if m.name.endswith(".json"):
                    meta[m.name.split(".", 1)[0]] = json.loads(tar.extractfile(m).read())
            for m in members:
                key, ext = m.name.split(".", 1)
                if ext not in ("wav", "flac"):
                    continue
                info = sf.info(io.BytesIO(tar.extractfile(m).read()))
                md = meta[key]
                rows.append(
                    {
                        "tar_path": str(Path(shard).resolve()),
                        "tar_offset_data": m.offset_data,
                        "tar_nbytes": m.size,
                        "transcript": md["text"],
                        "duration_s": float(info.frames / info.samplerate),
                        "language": md["lang"],
                        "speaker": md.get("speaker", ""),
                        "key": key,
                        "sample_rate": info.samplerate,
                        "num_tokens": max(1, len(md["text"]) // 3),
                    }
                )
    return rows


def write_index(rows: list[dict], path: Path) -> Path:
    """Write ``rows`` as a production parquet (the shared schema)."""
    columns = {name: [r[name] for r in rows] for name in PRODUCTION_INDEX_SCHEMA.names}
    pq.write_table(pa.table(columns, schema=PRODUCTION_INDEX_SCHEMA), path)
    return path


def corpus_shards(root: Path) -> list[Path]:
    return sorted(Path(root).glob("*/shard-*.tar"))


def train_spm(texts: list[str], folder: Path, vocab_size: int = 60) -> Path:
    """A tiny SentencePiece BPE model over ``texts`` (seconds on any machine)."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(texts * 3), encoding="utf-8")
    prefix = folder / "tok"
    vocab_size = max(vocab_size, len(set("".join(texts))) + 8)  # every character is a piece
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="bpe",
        character_coverage=1.0,
        hard_vocab_limit=False,
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def sampler_columns(n: int, seed: int = 0, num_languages: int = 12, max_s: float = 24.0):
    """Synthetic (duration_s, language code, num_tokens): gamma durations (mean ~7 s) clipped to
    [0.3, max_s], Zipf-like language sizes, ~2-5 tokens per second."""
    rng = np.random.default_rng(seed)
    d = np.clip(rng.gamma(2.0, 3.5, n), 0.3, max_s).astype(np.float32)
    w = 1.0 / np.arange(1, num_languages + 1)
    lang = rng.choice(num_languages, n, p=w / w.sum()).astype(np.int16)
    tok = np.maximum(1, d * rng.uniform(2, 5, n)).astype(np.int32)
    return d, lang, tok
