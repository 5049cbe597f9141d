"""DataLoaders of a training run: the production sampler + dataset for training, and the
validation manifest for validation, both yielding the batch tuple of ``lf_asr.data.schema``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from lf_asr.data.batch_planning import CostModel, JointCap
from lf_asr.data.dataset import DatasetConfig, ProductionDataset, collate
from lf_asr.data.production_sampler import (
    ProductionBatchSampler,
    SamplerConfig,
    load_sampler_columns,
)
from lf_asr.data.schema import NO_LANGUAGE, TARGET_SAMPLE_RATE


def tokenizer_model_path(cfg: DictConfig) -> Path:
    """The SentencePiece model the run tokenises with (data.tokenizer_dir, else the model's)."""
    folder = Path(cfg.data.get("tokenizer_dir") or cfg.model.tokenizer.dir)
    path = folder / "tokenizer.model"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: build the tokenizer with `make prod-artifacts` or point "
            "model.tokenizer.dir at a NeMo tokenizer folder"
        )
    return path


def joint_cap(cfg: DictConfig, vocab_size: int) -> JointCap | None:
    """The sampler's TDT joint-size cap from the model config (when data.max_joint_elements).
    ``fused_batch_size`` is the joint's when it fuses loss and joint, else None (unfused)."""
    if not cfg.data.get("max_joint_elements"):
        return None
    joint = cfg.model.get("joint") or {}
    fused = joint.get("fused_batch_size") if joint.get("fuse_loss_wer") else None
    return JointCap(
        max_elements=int(cfg.data.max_joint_elements),
        subsampling_factor=int(cfg.model.encoder.subsampling_factor),
        vocab_size=vocab_size,
        num_durations=len(cfg.model.model_defaults.get("tdt_durations", [])),
        frame_shift_s=float(cfg.model.preprocessor.window_stride),
        fused_batch_size=int(fused) if fused else None,
    )


def bucket_caps_of(cfg: DictConfig):
    """``data.bucket_batch_sizes``: None (max_batch_size everywhere), "auto" or a list."""
    caps = cfg.data.get("bucket_batch_sizes")
    return caps if caps is None or isinstance(caps, str) else tuple(int(c) for c in caps)


def sampler_config(cfg: DictConfig, vocab_size: int) -> SamplerConfig:
    """The sampler's caps, buckets and balancing from a run config (``data:`` and the model's
    geometry); also used by the rehearsal (scripts/rehearsal.py) on the production config."""
    d = cfg.data
    return SamplerConfig(
        max_batch_dur=float(d.max_batch_dur),
        max_batch_size=int(d.max_batch_size),
        bucket_batch_sizes=bucket_caps_of(cfg),
        max_tokens_in_batch=int(d.max_tokens_in_batch),
        temperature=float(d.temperature),
        epoch_hours=float(d.epoch_hours) if d.get("epoch_hours") else None,
        bucket_edges=tuple(d.bucket_edges),
        joint=joint_cap(cfg, vocab_size),
        # Rank balancing costs the joint with this model's geometry, not the defaults'.
        cost=CostModel(
            subsampling_factor=int(cfg.model.encoder.subsampling_factor),
            vocab_size=vocab_size,
            num_durations=len(cfg.model.model_defaults.get("tdt_durations", [])),
        ),
        accumulate_grad_batches=int(cfg.trainer.accumulate_grad_batches),
    )


def build_train_sampler(
    cfg: DictConfig, languages: Sequence[str], vocab_size: int, rank: int, world_size: int
) -> ProductionBatchSampler:
    dur, lang, tok, names = load_sampler_columns(cfg.data.train_parquet)
    return ProductionBatchSampler.from_columns(
        dur,
        lang,
        tok,
        names,
        languages=list(languages),
        config=sampler_config(cfg, vocab_size),
        rank=rank,
        world_size=world_size,
        seed=int(cfg.run.seed),
    )


def build_train_loader(
    cfg: DictConfig,
    sampler: ProductionBatchSampler,
    languages: Sequence[str],
    bad_sample_log: Path | None = None,
) -> torch.utils.data.DataLoader:
    """``bad_sample_log``: every skipped sample of every worker is appended there (JSON lines)."""
    config = DatasetConfig(
        bad_sample_log=str(bad_sample_log) if bad_sample_log else None,
        tar_root_remap=dict(cfg.data.get("tar_root_remap") or {}),
    )
    dataset = ProductionDataset(
        cfg.data.train_parquet, languages, tokenizer_model_path(cfg), config
    )
    workers = int(cfg.data.num_workers)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=None,  # the sampler yields whole micro-batches of rows
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


class ManifestDataset(torch.utils.data.Dataset):
    """Validation utterances of a JSONL manifest (tar-offset or NeMo rows):
    ``dataset[list_of_rows] -> (audio, audio_lens, tokens, token_lens, lang_ids)``."""

    def __init__(self, manifest: str | Path, languages: Sequence[str], tokenizer_model: Path):
        from maya_asr.inference.inputs import read_manifest

        self.items = read_manifest(manifest)  # every row checked now, with its line number
        self.languages = tuple(languages)
        self.tokenizer_model = str(tokenizer_model)
        self._sp = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_sp": None}

    def __len__(self) -> int:
        return len(self.items)

    def durations(self) -> np.ndarray:
        return np.array([float(it.row.get("duration", 0.0)) for it in self.items])

    def texts(self, rows: Sequence[int]) -> list[tuple[str, str]]:
        """(language, reference text) of ``rows``."""
        return [(self.items[r].language or "", self.items[r].text or "") for r in rows]

    def __getitem__(self, rows: Sequence[int]):
        from maya_asr.inference.inputs import read_audio

        if self._sp is None:
            import sentencepiece as spm

            self._sp = spm.SentencePieceProcessor(model_file=self.tokenizer_model)
        items = [self.items[r] for r in rows]
        audio = [read_audio(it, TARGET_SAMPLE_RATE) for it in items]
        tokens = self._sp.encode([it.text or "" for it in items], out_type=int)
        ids = {lang: i for i, lang in enumerate(self.languages)}
        langs = [ids.get(it.language, NO_LANGUAGE) for it in items]
        return collate(audio, tokens, langs)


def validation_batches(
    durations: np.ndarray, batch_size: int, rank: int, world_size: int, limit: int | None = None
) -> list[list[int]]:
    """This rank's validation batches: rows sorted by duration (little padding), cut into
    ``batch_size`` batches, dealt round-robin. Every rank gets the same number of batches (the
    short ones repeat a batch, which scoring de-duplicates by row), so no rank waits alone."""
    order = np.argsort(durations, kind="stable")[: limit or None].tolist()
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if not batches:
        return []
    per_rank = -(-len(batches) // world_size)
    padded = batches + batches[: per_rank * world_size - len(batches)]
    return padded[rank::world_size]


def build_val_loader(
    cfg: DictConfig, languages: Sequence[str], rank: int, world_size: int
) -> tuple[torch.utils.data.DataLoader, ManifestDataset, list[list[int]]] | None:
    if not cfg.data.get("val_manifest"):
        return None
    dataset = ManifestDataset(cfg.data.val_manifest, languages, tokenizer_model_path(cfg))
    batches = validation_batches(
        dataset.durations(),
        int(cfg.data.val_batch_size),
        rank,
        world_size,
        cfg.data.get("max_val_utterances"),
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=batches, num_workers=min(2, cfg.data.num_workers)
    )
    return loader, dataset, batches
