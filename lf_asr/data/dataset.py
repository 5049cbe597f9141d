"""ProductionDataset: a list of index rows -> one batch of tensors for the hybrid TDT+CTC model.

``dataset[[r0, r1, ...]]`` returns ``(audio, audio_lens, tokens, token_lens, lang_ids)``:
audio (B, T) float32 at 16 kHz zero-padded, audio_lens (B,) int64 samples, tokens (B, U) int64
padded with 0, token_lens (B,) int64, lang_ids (B,) int64 (position of the row's language in
``languages``, ``NO_LANGUAGE`` = -1 when it is not there). Language dropout is the model's job.

Designed for ``DataLoader(dataset, batch_size=None, sampler=ProductionBatchSampler(...),
num_workers=N, persistent_workers=True)``. Each worker process opens its own view of the index:
the needed columns are converted once to an Arrow IPC file next to the parquet (or in
``cache_dir``) and memory-mapped, so N workers share one copy in the page cache instead of
holding N decoded copies of 50M transcripts. The dataset pickles as its paths and config only.

Bad samples (missing or truncated shard, wrong offset, undecodable audio) are skipped, logged
and counted per process; past ``bad_sample_allowance + max_bad_fraction x samples seen`` the
dataset raises ``TooManyBadSamplesError``. A batch whose every sample is bad is replaced by the
last good sample of this worker so that no DDP rank ever receives an empty batch.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lf_asr.data.schema import NO_LANGUAGE, check_index_schema
from lf_asr.data.tar_offset_reader import ReaderConfig, TarOffsetReader, TarReadError

log = logging.getLogger(__name__)

DATASET_COLUMNS = ("tar_path", "tar_offset_data", "tar_nbytes", "transcript", "language", "key")

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class TooManyBadSamplesError(RuntimeError):
    """More bad samples than the configured rate allows: the shards or the index are broken."""


@dataclass(frozen=True)
class DatasetConfig:
    max_bad_fraction: float = 0.001  # bad samples allowed per sample read (in each process)
    bad_sample_allowance: int = 20  # ... plus this many, so a few early failures are tolerated
    bad_sample_log: str | None = None  # append one JSON line per bad sample here (all processes)
    cache_dir: str | None = None  # where the memory-mapped Arrow view goes (default: beside index)
    reader: ReaderConfig = field(default_factory=ReaderConfig)  # decoding and fd settings

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {self.max_bad_fraction}")
        if self.bad_sample_allowance < 0:
            raise ValueError("bad_sample_allowance must be >= 0")


def collate(
    audios: Sequence[np.ndarray], token_ids: Sequence[Sequence[int]], lang_ids: Sequence[int]
) -> Batch:
    """Pad B clips ((T_i,) float32) and B token lists into the batch tuple (shapes above)."""
    b = len(audios)
    audio_lens = torch.tensor([len(a) for a in audios], dtype=torch.int64)
    token_lens = torch.tensor([len(t) for t in token_ids], dtype=torch.int64)
    audio = torch.zeros(b, int(audio_lens.max()) if b else 0, dtype=torch.float32)
    tokens = torch.zeros(b, int(token_lens.max()) if b else 0, dtype=torch.int64)
    for i, (a, t) in enumerate(zip(audios, token_ids, strict=True)):
        audio[i, : len(a)] = torch.from_numpy(np.asarray(a, np.float32))
        if len(t):
            tokens[i, : len(t)] = torch.as_tensor(t, dtype=torch.int64)
    return audio, audio_lens, tokens, token_lens, torch.tensor(lang_ids, dtype=torch.int64)


def arrow_view_path(index_path: Path, cache_dir: str | None) -> Path:
    """Where the memory-mapped view of ``index_path`` lives; the name changes with the index."""
    st = index_path.stat()
    tag = hashlib.sha1(f"{index_path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    folder = Path(cache_dir) if cache_dir else index_path.parent
    return folder / f"{index_path.stem}.loader-{tag[:12]}.arrow"


def open_index_view(index_path: Path, cache_dir: str | None = None):
    """The dataset's columns of the index as a memory-mapped ``pyarrow.Table`` (zero-copy).

    Built once per index version with an atomic rename, so concurrent ranks/workers that race
    to build it all end up reading one complete file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    view = arrow_view_path(index_path, cache_dir)
    if not view.exists():
        view.parent.mkdir(parents=True, exist_ok=True)
        # One builder per machine: the ranks of a node wait on a lock instead of all writing.
        with open(view.with_name(view.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not view.exists():
                check_index_schema(pq.read_schema(index_path), str(index_path))
                table = pq.read_table(index_path, columns=list(DATASET_COLUMNS))
                tmp = view.with_name(f"{view.name}.{os.getpid()}.partial")
                with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
                    w.write_table(table, max_chunksize=1 << 16)
                os.replace(tmp, view)
    return pa.ipc.open_file(pa.memory_map(str(view), "r")).read_all()


class ProductionDataset(torch.utils.data.Dataset):
    """Map-style dataset over a production index: ``dataset[list_of_rows] -> Batch``.

    index_path: the production parquet (``lf_asr.data.schema.PRODUCTION_INDEX_SCHEMA``).
    languages: the model's language order; a row's lang id is its position here (-1 if absent).
    tokenizer_model: a SentencePiece ``.model``; transcripts are tokenised here, per batch.
    """

    def __init__(
        self,
        index_path: str | Path,
        languages: Sequence[str],
        tokenizer_model: str | Path,
        config: DatasetConfig | None = None,
    ) -> None:
        self.index_path = Path(index_path)
        if not self.index_path.exists():
            raise FileNotFoundError(f"production index {self.index_path} does not exist")
        if not Path(tokenizer_model).exists():
            raise FileNotFoundError(f"tokenizer model {tokenizer_model} does not exist")
        self.languages = tuple(languages)
        self.tokenizer_model = str(tokenizer_model)
        self.config = config or DatasetConfig()
        self._lang_id = {name: i for i, name in enumerate(self.languages)}
        self._reset_process_state()
        self._view()  # build the Arrow view now, in the parent, not in N racing workers

    def _reset_process_state(self) -> None:
        self._table = None
        self._sp = None
        self._reader = TarOffsetReader(self.config.reader)
        self.samples_seen = 0  # in this process
        self.bad_samples = 0  # in this process
        self._last_good: tuple[np.ndarray, list[int], int] | None = None

    def __getstate__(self) -> dict:
        return {
            "index_path": self.index_path,
            "languages": self.languages,
            "tokenizer_model": self.tokenizer_model,
            "config": self.config,
        }

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lang_id = {name: i for i, name in enumerate(self.languages)}
        self._reset_process_state()

    def _view(self):
        if self._table is None:
            self._table = open_index_view(self.index_path, self.config.cache_dir)
        return self._table

    def _tokenizer(self):
        if self._sp is None:
            import sentencepiece as spm

            self._sp = spm.SentencePieceProcessor(model_file=self.tokenizer_model)
        return self._sp

    def __len__(self) -> int:
        return self._view().num_rows

    def rows(self, indices: Sequence[int]) -> dict[str, list]:
        """The dataset columns of ``indices`` as Python lists."""
        import pyarrow as pa

        sub = self._view().take(pa.array(indices, pa.int64()))
        return {name: sub.column(name).to_pylist() for name in DATASET_COLUMNS}

    def __getitem__(self, indices: Sequence[int]) -> Batch:
        if isinstance(indices, (int, np.integer)):
            indices = [int(indices)]
        meta = self.rows(indices)
        token_ids = self._tokenizer().encode(meta["transcript"], out_type=int)
        audios, tokens, langs = [], [], []
        for i in range(len(indices)):
            self.samples_seen += 1
            try:
                audio = self._reader.read(
                    meta["tar_path"][i],
                    meta["tar_offset_data"][i],
                    meta["tar_nbytes"][i],
                    meta["key"][i],
                )
            except TarReadError as e:
                self._record_bad(int(indices[i]), e)
                continue
            audios.append(audio)
            tokens.append(token_ids[i])
            langs.append(self._lang_id.get(meta["language"][i], NO_LANGUAGE))
        self._check_bad_rate()
        if not audios:
            if self._last_good is None:
                raise TooManyBadSamplesError(
                    f"every sample of batch rows {list(indices)[:8]}... is bad and this worker "
                    "has no good sample yet to stand in: check the shards named in the log"
                )
            a, t, lang = self._last_good
            audios, tokens, langs = [a], [t], [lang]
        else:
            self._last_good = (audios[-1], tokens[-1], langs[-1])
        return collate(audios, tokens, langs)

    def _record_bad(self, row: int, err: TarReadError) -> None:
        self.bad_samples += 1
        if self.bad_samples <= 10 or self.bad_samples % 100 == 0:
            log.warning(
                "skipping bad sample (row %d, %d bad so far in pid %d): %s",
                row,
                self.bad_samples,
                os.getpid(),
                err,
            )
        if self.config.bad_sample_log:
            record = {
                "row": row,
                "tar_path": err.tar_path,
                "offset": err.offset,
                "key": err.key,
                "error": type(err).__name__,
                "reason": err.reason,
            }
            # One short O_APPEND write per line: lines from several workers never interleave.
            with open(self.config.bad_sample_log, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _check_bad_rate(self) -> None:
        cfg = self.config
        allowed = cfg.bad_sample_allowance + cfg.max_bad_fraction * self.samples_seen
        if self.bad_samples > allowed:
            where = f" (listed in {cfg.bad_sample_log})" if cfg.bad_sample_log else ""
            raise TooManyBadSamplesError(
                f"{self.bad_samples} of {self.samples_seen} samples read in pid {os.getpid()} "
                f"were bad{where}, above the allowed {cfg.bad_sample_allowance} + "
                f"{cfg.max_bad_fraction:g} x samples: fix or drop the broken shards and rebuild "
                "the index, or raise DatasetConfig.max_bad_fraction if this is expected"
            )
