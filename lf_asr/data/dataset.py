"""ProductionDataset: a list of index rows -> one batch of tensors for the hybrid TDT+CTC model.

``dataset[[r0, r1, ...]]`` returns ``(audio, audio_lens, tokens, token_lens, lang_ids)``:
audio (B, T) float32 at 16 kHz zero-padded, audio_lens (B,) int64 samples, tokens (B, U) int64
padded with 0, token_lens (B,) int64, lang_ids (B,) int64 (position of the row's language in
``languages``, ``NO_LANGUAGE`` = -1 when it is not there). Language dropout is the model's job.

Designed for ``DataLoader(dataset, batch_size=None, sampler=ProductionBatchSampler(...),
num_workers=N, persistent_workers=True)``. Each worker process opens its own view of the index
(``lf_asr.data.index_view``): the needed columns are streamed once into fixed-width records and
a text blob next to the parquet (or in ``cache_dir``) and memory-mapped, so N workers share one
copy in the page cache instead of holding N decoded copies of 50M transcripts, and a lookup costs
O(batch), not O(rows).
The dataset pickles as its paths and config only.

Bad samples (a row the view cannot look up, a missing or truncated shard, a wrong offset,
undecodable audio, any other failure to produce one clip) are skipped, logged and counted per
process — a worker never dies of one sample; past ``bad_sample_allowance + max_bad_fraction x
samples seen`` the dataset raises ``TooManyBadSamplesError``. A batch whose every sample is bad
is replaced by the last good sample of this worker so that no DDP rank ever receives an empty
batch.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lf_asr.data.index_view import IndexRow, IndexView, open_index_view
from lf_asr.data.schema import NO_LANGUAGE
from lf_asr.data.tar_offset_reader import ReaderConfig, TarOffsetReader, TarReadError

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class TooManyBadSamplesError(RuntimeError):
    """More bad samples than the configured rate allows: the shards or the index are broken."""


@dataclass(frozen=True)
class DatasetConfig:
    max_bad_fraction: float = 0.001  # bad samples allowed per sample read (in each process)
    bad_sample_allowance: int = 20  # ... plus this many, so a few early failures are tolerated
    bad_sample_log: str | None = None  # append one JSON line per bad sample here (all processes)
    cache_dir: str | None = None  # where the memory-mapped index view goes (default: beside index)
    reader: ReaderConfig = field(default_factory=ReaderConfig)  # decoding and fd settings
    # (old root, new root) pairs applied to shard paths, longest root first: the shards moved
    # since the index was built (another machine, another mount). A mapping is accepted too.
    tar_root_remap: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        remap = self.tar_root_remap
        pairs = remap.items() if isinstance(remap, Mapping) else remap
        object.__setattr__(self, "tar_root_remap", tuple((str(a), str(b)) for a, b in pairs))
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
        self._view()  # build the index view now, in the parent, not in N racing workers

    def _reset_process_state(self) -> None:
        self._index: IndexView | None = None
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

    def _view(self) -> IndexView:
        if self._index is None:
            cfg = self.config
            self._index = open_index_view(self.index_path, cfg.cache_dir, cfg.tar_root_remap)
        return self._index

    def _tokenizer(self):
        if self._sp is None:
            import sentencepiece as spm

            self._sp = spm.SentencePieceProcessor(model_file=self.tokenizer_model)
        return self._sp

    def __len__(self) -> int:
        return len(self._view())

    def rows(self, indices: Sequence[int]) -> list[IndexRow]:
        """The index rows at ``indices``, in order (``IndexLookupError`` when one is invalid)."""
        return self._view().rows(indices)

    def _lookup(self, indices: Sequence[int]) -> list[IndexRow]:
        """The rows that can be looked up; each one that cannot is a counted bad sample."""
        try:
            return self.rows(indices)
        except Exception:  # one bad row (or a damaged view): find which, row by row
            found = []
            for i in indices:
                try:
                    found.extend(self.rows([i]))
                except Exception as e:
                    self.samples_seen += 1
                    self._record_bad(int(i), e)
            return found

    def __getitem__(self, indices: Sequence[int]) -> Batch:
        if isinstance(indices, (int, np.integer)):
            indices = [int(indices)]
        found = self._lookup(indices)
        token_ids = self._tokenizer().encode([r.transcript for r in found], out_type=int)
        audios, tokens, langs = [], [], []
        for row, ids in zip(found, token_ids, strict=True):
            self.samples_seen += 1
            try:
                audio = self._reader.read(
                    row.tar_path, row.tar_offset_data, row.tar_nbytes, row.key
                )
            except Exception as e:  # TarReadError, or anything else one clip can raise
                self._record_bad(row.row, e, row)
                continue
            audios.append(audio)
            tokens.append(ids)
            langs.append(self._lang_id.get(row.language, NO_LANGUAGE))
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

    def _record_bad(self, row: int, err: Exception, meta: IndexRow | None = None) -> None:
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
            if isinstance(err, TarReadError):
                where = {"tar_path": err.tar_path, "offset": err.offset, "key": err.key}
            elif meta is not None:
                where = {"tar_path": meta.tar_path, "offset": meta.tar_offset_data, "key": meta.key}
            else:
                where = {"tar_path": None, "offset": None, "key": None}
            reason = err.reason if isinstance(err, TarReadError) else str(err)
            record = {"row": row, **where, "error": type(err).__name__, "reason": reason}
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
