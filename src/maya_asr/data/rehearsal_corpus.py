"""A production-shaped production index over a small pool of real shards (``make rehearsal``).

Users train on ~150K hours: ~50M utterances, skewed across the 12 languages. Whatever only shows
at that size (lookup cost, view size, plan time, coverage of big languages, the pull of small
ones) needs an index of that size, which no CPU box can make from real audio. This module writes
one with the production schema and production statistics whose rows point at *real* audio
members of a small pool of shards (the demo corpus), so the reader decodes real bytes.

What is realistic and what is not:

- **Hours per language** (:data:`PRODUCTION_MIX`; 50M rows give ~146K h): Hindi 40K h; Bengali
  18K; Tamil 15K; Telugu 14K; Marathi 13K; English 12K; Gujarati and Kannada 9K each; Malayalam
  8K; Punjabi 5.5K; Odia 2K; Assamese 1.5K — the skew of public Indic corpora, scaled to 147K h.
- **Durations**: per-language gamma (shape 4, the language's mean 9.2-12.2 s), clipped to
  [0.3 s, ``max_duration_s``]: a few percent above 20 s, as segmenters leave them.
- **Tokens per second**: per-language BPE rate (2.7 for English to 4.4 for Malayalam, whose
  agglutinative words split into more pieces), lognormal spread (sigma 0.25).
- **Transcripts**: words of the language's script at ~2.5 words/s, so the transcript column has
  production size (~300 bytes a row); they are not language, and end with a space (SentencePiece
  drops it). ``num_tokens`` comes from the tokens-per-second draw, not from these words.
- **Audio**: each row points at a random audio member of its language in the pool (any member if
  the pool lacks the language), with that member's key, so the reader's header check passes;
  keys therefore repeat (a real index's are unique; nothing in the loader relies on it). The
  index's duration is the drawn one, not the member's: the sampler sees production durations,
  the reader decodes real (shorter) clips.

Memory is bounded: rows are drawn and written one row group at a time (``row_group_rows``),
each column built with numpy (no Python object per row), so 50M rows take about a minute.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lf_asr.data.schema import INDEX_MAX_DURATION_KEY, PRODUCTION_INDEX_SCHEMA
from maya_asr.data import raw_format
from maya_asr.data.tar_headers import TarWalk
from maya_asr.languages import LANGUAGES, get_language
from maya_asr.text.scripts import SCRIPTS


@dataclass(frozen=True)
class LanguageProfile:
    hours: float  # hours of training audio at the default 147K h total
    mean_duration_s: float  # mean clip duration
    tokens_per_s: float  # mean BPE tokens per second of audio


PRODUCTION_MIX: dict[str, LanguageProfile] = {
    "hi": LanguageProfile(40_000, 10.7, 2.8),
    "bn": LanguageProfile(18_000, 10.2, 3.2),
    "ta": LanguageProfile(15_000, 11.2, 4.0),
    "te": LanguageProfile(14_000, 10.7, 3.8),
    "mr": LanguageProfile(13_000, 10.2, 3.4),
    "en": LanguageProfile(12_000, 9.2, 2.7),
    "gu": LanguageProfile(9_000, 10.2, 3.3),
    "kn": LanguageProfile(9_000, 11.2, 3.9),
    "ml": LanguageProfile(8_000, 11.7, 4.4),
    "pa": LanguageProfile(5_500, 9.7, 2.9),
    "or": LanguageProfile(2_000, 12.2, 3.6),
    "as": LanguageProfile(1_500, 12.2, 3.5),
}
DURATION_SHAPE = 4.0  # gamma shape of clip durations
MIN_DURATION_S = 0.3
WORDS_PER_S = 2.5
_VOCAB_WORDS = 4096  # distinct synthetic words per language
_SPEAKERS = 2000  # speakers per language


@dataclass
class ShardPool:
    """Audio members of a few real shards: what synthetic rows point at."""

    tar_path: np.ndarray  # (M,) object: absolute shard path of each member
    key: np.ndarray  # (M,) object: the member's key (the reader checks it against the header)
    offset_data: np.ndarray  # (M,) int64
    nbytes: np.ndarray  # (M,) int64
    sample_rate: np.ndarray  # (M,) int32
    language: np.ndarray  # (M,) object: the shard folder's language (<root>/<lang>/shard-*.tar)

    @cached_property
    def paths(self) -> pa.Array:
        """``tar_path`` as an Arrow string array (what row groups ``take`` from)."""
        return pa.array(self.tar_path.tolist(), pa.string())

    @cached_property
    def member_keys(self) -> pa.Array:
        return pa.array(self.key.tolist(), pa.string())

    def members_of(self, lang: str) -> np.ndarray:
        found = np.flatnonzero(self.language == lang)
        return found if len(found) else np.arange(len(self.language))


def _sample_rate(fd: int, member) -> int | None:
    """The member's sample rate from its header; None when it is not decodable audio."""
    from maya_asr.data.audio_header import AudioHeaderError, probe_audio

    def read_at(offset: int, n: int) -> bytes:
        return os.pread(fd, max(0, min(n, member.size - offset)), member.offset_data + offset)

    try:
        return probe_audio(read_at, member.size).sample_rate
    except AudioHeaderError:
        return None  # the reader could not decode it either: not a useful target


def scan_pool(shards: Sequence[str | Path]) -> ShardPool:
    """Every audio member of ``shards`` (headers only: a few ``pread`` per member)."""
    paths, keys, offsets, sizes, rates, langs = [], [], [], [], [], []
    for shard in shards:
        shard = Path(shard).resolve()
        fd = os.open(shard, os.O_RDONLY)
        try:
            for m in TarWalk(fd):
                parts = raw_format.split_member_name(m.name)
                if not parts or parts[1] not in raw_format.AUDIO_EXTENSIONS:
                    continue
                rate = _sample_rate(fd, m)
                if rate is None:
                    continue
                paths.append(str(shard))
                keys.append(parts[0].rsplit("/", 1)[-1])
                offsets.append(m.offset_data)
                sizes.append(m.size)
                rates.append(rate)
                langs.append(shard.parent.name)
        finally:
            os.close(fd)
    if not paths:
        raise ValueError(
            f"no audio members in the {len(shards)} shard(s) given; point --pool at "
            "<root>/<lang>/shard-*.tar files (make demo-corpus builds some)"
        )
    return ShardPool(
        np.array(paths, dtype=object),
        np.array(keys, dtype=object),
        np.array(offsets, np.int64),
        np.array(sizes, np.int64),
        np.array(rates, np.int32),
        np.array(langs, dtype=object),
    )


def rows_per_language(total_rows: int, mix: dict[str, LanguageProfile]) -> dict[str, int]:
    """Rows of each language so that hours follow ``mix`` (largest remainder, sums exactly)."""
    weight = np.array([p.hours / p.mean_duration_s for p in mix.values()])
    share = weight / weight.sum() * total_rows
    rows = np.floor(share).astype(np.int64)
    rows[np.argsort(share - rows)[::-1][: total_rows - rows.sum()]] += 1
    return dict(zip(mix, rows.tolist(), strict=True))


def _script_letters(lang: str) -> list[str]:
    """Letters (category Lo/Ll) of the language's script, for synthetic words."""
    letters = []
    for lo, hi in SCRIPTS[get_language(lang).script]:
        for cp in range(lo, hi + 1):
            if unicodedata.category(chr(cp)) in ("Lo", "Ll"):
                letters.append(chr(cp))
    return letters[:26] if lang == "en" else letters


def _word_tape(lang: str, words: int, rng: np.random.Generator) -> np.ndarray:
    """(words, U) uint8: random fixed-byte-width words of the script, each ending in a space.

    Fixed width is what lets a transcript be a word-aligned slice of this tape: a row group's
    transcripts are consecutive slices of it (offsets only, no per-row copy or gather).
    """
    letters = _script_letters(lang)
    width = len(letters[0].encode())  # 1 byte for Latin, 3 for the Indic blocks
    if any(len(c.encode()) != width for c in letters):
        raise ValueError(f"{lang}: letters of mixed UTF-8 width cannot make fixed-width words")
    per_word = 5 if width == 1 else 4
    vocab = [
        "".join(letters[i] for i in row) + " "
        for row in rng.integers(0, len(letters), (_VOCAB_WORDS, per_word))
    ]
    table = np.frombuffer("".join(vocab).encode(), np.uint8).reshape(_VOCAB_WORDS, -1)
    return table[rng.integers(0, _VOCAB_WORDS, words)]


def _string_array(data: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """A pa.string() array over the concatenated UTF-8 ``data`` cut at ``lengths`` (no copy)."""
    offsets = np.zeros(len(lengths) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets), pa.py_buffer(data))


def _row_group(
    lang: str,
    profile: LanguageProfile,
    n: int,
    pool: ShardPool,
    members: np.ndarray,
    tape: np.ndarray,
    max_duration_s: float,
    rng: np.random.Generator,
) -> pa.Table:
    scale = profile.mean_duration_s / DURATION_SHAPE
    dur = np.clip(rng.gamma(DURATION_SHAPE, scale, n), MIN_DURATION_S, max_duration_s)
    dur = dur.astype(np.float32)
    tps = profile.tokens_per_s * rng.lognormal(-0.03125, 0.25, n)  # mean-preserving spread
    tokens = np.maximum(1, np.rint(dur * tps)).astype(np.int32)
    n_words = np.maximum(1, rng.poisson(dur * WORDS_PER_S)).astype(np.int32)
    total = int(n_words.sum())
    if total > len(tape):
        raise ValueError(f"row group needs {total} words, the tape holds {len(tape)}")
    start = int(rng.integers(0, len(tape) - total + 1))
    text = tape[start : start + total].reshape(-1)  # a view: the transcripts cut it at offsets
    pick = members[rng.integers(0, len(members), n)]
    pick_arrow = pa.array(pick)
    speakers = pa.array([f"{lang}-s{i:04d}" for i in range(_SPEAKERS)])
    columns = {
        "tar_path": pool.paths.take(pick_arrow),
        "tar_offset_data": pa.array(pool.offset_data[pick]),
        "tar_nbytes": pa.array(pool.nbytes[pick]),
        "transcript": _string_array(text, n_words * tape.shape[1]),
        "duration_s": pa.array(dur),
        "language": pa.array([lang]).take(pa.array(np.zeros(n, np.int32))),
        "speaker": speakers.take(pa.array(rng.integers(0, _SPEAKERS, n))),
        "key": pool.member_keys.take(pick_arrow),
        "sample_rate": pa.array(pool.sample_rate[pick]),
        "num_tokens": pa.array(tokens),
    }
    return pa.table(columns, schema=PRODUCTION_INDEX_SCHEMA)


def write_rehearsal_index(
    out_path: str | Path,
    pool: ShardPool,
    rows: int = 50_000_000,
    seed: int = 0,
    row_group_rows: int = 500_000,
    max_duration_s: float = 40.0,
    mix: dict[str, LanguageProfile] | None = None,
    progress: bool = True,
) -> dict:
    """Write the index (atomically) and return per-language rows, hours and token rates.

    Rows are grouped by language in ``LANGUAGES`` order, as ``build_index`` writes a manifest
    of ``<root>/<lang>/`` folders. Memory: one row group.
    """
    from tqdm import tqdm

    mix = dict(mix or PRODUCTION_MIX)
    unknown = sorted(set(mix) - set(LANGUAGES))
    if unknown:
        raise ValueError(f"mix names unknown language(s) {unknown}; use codes of {LANGUAGES}")
    if rows < len(mix) or row_group_rows < 1:
        raise ValueError(f"need at least {len(mix)} rows and row_group_rows >= 1")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".partial")
    per_lang = rows_per_language(rows, mix)
    rngs = dict(zip(mix, np.random.default_rng(seed).spawn(len(mix)), strict=True))
    stats: dict[str, dict] = {}
    bar = tqdm(total=rows, unit="row", desc="rehearsal index", disable=not progress)
    with pq.ParquetWriter(
        tmp,
        PRODUCTION_INDEX_SCHEMA,
        compression="zstd",
        use_dictionary=["tar_path", "language", "speaker"],  # transcripts and keys never repeat
    ) as writer:
        for lang in (code for code in LANGUAGES if code in mix):
            rng, members = rngs[lang], pool.members_of(lang)
            # words for the largest row group: its mean plus 2% (the sum's spread is ~0.1%)
            rows_max = min(row_group_rows, per_lang[lang])
            words = rows_max * mix[lang].mean_duration_s * WORDS_PER_S
            tape = _word_tape(lang, int(1.02 * words) + 1000, rng)
            seconds = token_sum = 0.0
            for first in range(0, per_lang[lang], row_group_rows):
                n = min(row_group_rows, per_lang[lang] - first)
                table = _row_group(lang, mix[lang], n, pool, members, tape, max_duration_s, rng)
                writer.write_table(table, row_group_size=row_group_rows)
                seconds += float(np.sum(table["duration_s"].to_numpy(), dtype=np.float64))
                token_sum += float(np.sum(table["num_tokens"].to_numpy(), dtype=np.int64))
                bar.update(n)
            stats[lang] = {
                "rows": per_lang[lang],
                "hours": round(seconds / 3600, 1),
                "mean_duration_s": round(seconds / max(per_lang[lang], 1), 3),
                "tokens_per_s": round(token_sum / max(seconds, 1e-9), 3),
                "pool_members": len(members),
            }
        writer.add_key_value_metadata({INDEX_MAX_DURATION_KEY: repr(float(max_duration_s))})
    bar.close()
    os.replace(tmp, out_path)
    return {
        "path": str(out_path),
        "rows": rows,
        "hours": round(sum(s["hours"] for s in stats.values()), 1),
        "pool_members": len(pool.tar_path),
        "pool_shards": len(set(pool.tar_path.tolist())),
        "seed": seed,
        "max_duration_s": max_duration_s,
        "languages": stats,
    }
