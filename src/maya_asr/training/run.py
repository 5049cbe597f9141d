"""Assemble and run a training job: config -> model -> loaders -> Lightning Trainer -> .nemo.

``scripts/train_prod.py`` is a thin command line over :func:`train`. Every process of a DDP job
runs this module (Lightning starts the other ranks by re-running the script), so each builds its
own sampler shard after the Trainer knows its rank.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from lf_asr.data.batch_planning import auto_bucket_caps
from maya_asr.models.lr_schedule import lr_table
from maya_asr.training.callbacks import (
    AtomicModelCheckpoint,
    AudioThroughput,
    PlainProgressLog,
    interactive,
)
from maya_asr.training.cpu_memory import keep_freed_memory
from maya_asr.training.data import (
    bucket_caps_of,
    build_train_loader,
    build_train_sampler,
    build_val_loader,
    joint_cap,
)
from maya_asr.training.ddp_comm import SkipFrozenAllReduce
from maya_asr.training.options import validate
from maya_asr.training.preflight import run_preflight, worst_batches
from maya_asr.training.resume import SamplerResume, find_resume_checkpoint
from maya_asr.training.validation import LanguageValidation

log = logging.getLogger("maya_asr.train")

# What --smoke takes from configs/train/smoke.yaml: the sizes, never the data or the schedule.
SMOKE_KEYS = ("encoder", "model_defaults", "decoder", "joint", "preprocessor")


@dataclass
class TrainResult:
    run_dir: Path
    nemo_path: Path | None  # the exported model (rank 0), None on other ranks
    global_step: int
    validation: dict | None  # last per-language scores {head: {lang: Score}}
    rank_digests: list[str]  # SHA-256 of every rank's final weights (one entry without DDP)


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of all parameters: equal digests = equal bits. Buffers are left out: DDP
    broadcasts them from rank 0 before each forward, so BatchNorm statistics legitimately differ
    between ranks after the last forward."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in model.named_parameters():
        h.update(name.encode())
        h.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_ranks_in_sync(model, trainer: pl.Trainer) -> list[str]:
    """Every rank's weights digest and step count; raises when ranks diverged (a DDP bug)."""
    mine = (weights_digest(model), trainer.global_step)
    if trainer.world_size == 1 or not torch.distributed.is_initialized():
        return [mine[0]]
    gathered: list = [None] * trainer.world_size
    torch.distributed.all_gather_object(gathered, mine)
    if len(set(gathered)) != 1:
        raise RuntimeError(f"DDP ranks diverged at the end of training: {gathered}")
    return [digest for digest, _ in gathered]


# Schedule lengths --smoke scales by max_steps / the config's max_steps (config keys).
SMOKE_SCALED = (
    "model.encoder_freeze_steps",
    "model.ctc_warmup_steps",
    "model.optim.sched.warmup_steps",
    "model.optim.sched.encoder_rewarmup_steps",
)


def apply_smoke(
    cfg: DictConfig,
    smoke_cfg: DictConfig,
    prod_max_steps: int | None = None,
    max_steps: int | None = None,
) -> DictConfig:
    """Shrink the model to the smoke sizes, on one device, and the schedule to the smoke length.

    ``prod_max_steps`` is the config's own ``trainer.max_steps``; ``max_steps`` the --max-steps
    given (None: the smoke config's). Freeze, warm-up, re-warm-up and CTC ramp are scaled by
    max_steps / prod_max_steps (a phase that exists keeps at least one step), and the encoder LR
    is raised to the head LR: without the pretrained encoder it is a random one, which a 2e-5 LR
    would never train. Every change is logged."""
    done = []
    with open_dict(cfg):
        for key in SMOKE_KEYS:
            cfg.model[key] = OmegaConf.merge(cfg.model.get(key, {}), smoke_cfg.model[key])
        cfg.trainer.devices = 1
        cfg.trainer.num_nodes = 1
        if cfg.run.get("pretrained_encoder"):
            done.append(f"pretrained encoder {cfg.run.pretrained_encoder} not loaded (full size)")
            cfg.run.pretrained_encoder = None
        steps = int(max_steps or smoke_cfg.trainer.max_steps)
        prod = int(prod_max_steps or steps)
        cfg.trainer.max_steps = steps
        factor = steps / prod
        for key in SMOKE_SCALED:
            old = OmegaConf.select(cfg, key)
            if old:
                new = max(1, round(int(old) * factor))
                OmegaConf.update(cfg, key, new)
                done.append(f"{key} {old} -> {new}")
        head_lr = OmegaConf.select(cfg, "model.optim.lr")
        enc_lr = OmegaConf.select(cfg, "model.optim_param_groups.encoder.lr")
        if head_lr is not None and enc_lr is not None and enc_lr < head_lr:
            cfg.model.optim_param_groups.encoder.lr = head_lr
            done.append(f"encoder LR {enc_lr:g} -> {head_lr:g} (the head LR: random encoder)")
    log.warning(
        "--smoke: model shrunk to the sizes of the smoke config (%s); one device; %d steps, "
        "schedule scaled by %d/%d: %s",
        ", ".join(SMOKE_KEYS), steps, steps, prod, "; ".join(done) or "nothing else changed",
    )  # fmt: skip
    return cfg


def run_dir_of(cfg: DictConfig) -> Path:
    return Path(cfg.run.dir or Path("experiments") / cfg.get("name", "run"))


def build_trainer(cfg: DictConfig, run_dir: Path, callbacks: list) -> pl.Trainer:
    """A Lightning Trainer from ``cfg.trainer`` (any Trainer argument passes through), with what
    our loop needs forced: our own rank-aware sampler, step-based validation, and a CPU
    fallback (gloo, fp32) when there is no GPU."""
    from lightning.pytorch.loggers import TensorBoardLogger
    from lightning.pytorch.strategies import DDPStrategy

    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    gpu = torch.cuda.is_available()
    kwargs["accelerator"] = "gpu" if gpu else "cpu"
    devices = kwargs.get("devices") or "auto"
    if not gpu:
        devices = 1 if devices in ("auto", -1) else devices
        kwargs["precision"] = "32-true"  # bf16 autocast on CPU is slower, not faster
        kwargs.pop("sync_batchnorm", None)  # SyncBatchNorm is CUDA-only
        log.warning("no GPU: training on the CPU")
        if keep_freed_memory():  # before the first step's big tensors; see cpu_memory
            log.info("CPU allocator: freed memory kept for reuse (no mmap per large tensor)")
    kwargs["devices"] = devices
    ddp = (isinstance(devices, int) and devices > 1) or int(kwargs.get("num_nodes", 1)) > 1
    kwargs["strategy"] = (
        DDPStrategy(process_group_backend="nccl" if gpu else "gloo") if ddp else "auto"
    )
    accum = int(kwargs.get("accumulate_grad_batches", 1))
    # A progress bar in a terminal; in a file (nohup, tmux pipe, CI) train() adds plain lines.
    bar = kwargs.pop("enable_progress_bar", None)
    kwargs.update(
        enable_progress_bar=interactive() if bar is None else bool(bar),
        max_epochs=-1,
        val_check_interval=int(cfg.run.val_every) * accum,  # counted in micro-batches
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # our sampler shards by rank itself
        logger=TensorBoardLogger(str(run_dir), name="tensorboard", version=""),
        callbacks=callbacks,
        default_root_dir=str(run_dir),
        enable_model_summary=False,
    )
    kwargs.setdefault("gradient_clip_val", 1.0)
    return pl.Trainer(**kwargs)


def build_model(cfg: DictConfig, trainer: pl.Trainer):
    from maya_asr.models import MayaHybridTDTCTCModel, load_pretrained_encoder
    from maya_asr.models.nemo_config import with_nemo_sections

    model = MayaHybridTDTCTCModel(cfg=cfg.model, trainer=trainer)
    # After construction (NeMo would build its own loaders from these sections at construction):
    # what NeMo's transcribe, scripts and fine-tuners read from every .nemo this run writes.
    model.cfg = with_nemo_sections(model.cfg, data=cfg.data)
    if cfg.run.get("pretrained_encoder"):
        report = load_pretrained_encoder(model, cfg.run.pretrained_encoder)
        log.info("pretrained encoder: %s", report)
    return model


def preflight_batches(cfg: DictConfig, vocab_size: int, caps=None) -> list:
    """The worst micro-batch of every bucket under the run's caps (``worst_batches``: clips of
    the bucket's upper edge, tokens spread evenly): the sampler's per-bucket caps when given
    (``sampler.budget.caps``, "auto" resolved on the index), else the caps the config implies
    without data ("auto" then allows what a batch of the bucket's shortest clips could reach;
    the padded-seconds, token and joint caps still bound it). The data-free caps are never
    below the index's, so the batches are never smaller than with them; batches with uneven
    transcript lengths (a larger padded U) are bounded by the joint cap, not by these."""
    d = cfg.data
    if caps is None:
        caps = bucket_caps_of(cfg)
        if caps == "auto":
            empty = np.zeros(0, np.float32)
            caps = auto_bucket_caps(
                np.asarray(d.bucket_edges, np.float64), empty, empty,
                float(d.max_batch_dur), int(d.max_tokens_in_batch), joint_cap(cfg, vocab_size),
            )  # fmt: skip
    return worst_batches(
        list(d.bucket_edges),
        d.max_batch_dur,
        d.max_batch_size,
        d.max_tokens_in_batch,
        bucket_batch_sizes=None if caps is None else [int(c) for c in caps],
        joint=joint_cap(cfg, vocab_size),
    )


def _preflight(cfg: DictConfig, model, trainer: pl.Trainer, caps=None) -> None:
    """Pre-flight of the production run (also called by ``make gpu-check``): every bucket's
    worst batch, forward + backward, on the trainer's device and precision."""
    d = cfg.data
    worst = preflight_batches(cfg, model.tokenizer.vocab_size, caps)
    device = trainer.strategy.root_device
    model.to(device)
    bf16 = str(trainer.precision).startswith("bf16")
    run_preflight(
        model,
        worst,
        max_batch_dur=float(d.max_batch_dur),
        max_tokens_in_batch=int(d.max_tokens_in_batch),
        vocab_size=model.tokenizer.vocab_size,
        autocast_dtype=torch.bfloat16 if bf16 else None,
        log=log.info,
    )


def train(
    cfg: DictConfig, resume: str | None = None, extra_callbacks: list | None = None
) -> TrainResult:
    """Run (or resume) the job ``cfg`` describes; returns where things went."""
    validate(cfg)
    run_dir = run_dir_of(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = Path(cfg.run.get("checkpoint_dir") or run_dir / "checkpoints")
    ckpt_path = find_resume_checkpoint(ckpt_dir, resume)
    pl.seed_everything(int(cfg.run.seed), workers=True, verbose=False)

    checkpoint = AtomicModelCheckpoint(
        dirpath=str(ckpt_dir),
        filename="step{step:07d}",
        auto_insert_metric_name=False,
        every_n_train_steps=int(cfg.run.checkpoint_every),
        save_top_k=-1,
        save_last=True,
    )
    # SkipFrozenAllReduce: no all-reduce of the frozen encoder's zero gradients under DDP.
    callbacks: list = [checkpoint, SkipFrozenAllReduce(), *(extra_callbacks or [])]
    trainer = build_trainer(cfg, run_dir, callbacks)
    bad_log = run_dir / f"bad_samples.rank{trainer.global_rank}.jsonl"
    trainer.callbacks.append(AudioThroughput(bad_sample_log=bad_log))
    if trainer.progress_bar_callback is None:  # after AudioThroughput: this step's figures
        trainer.callbacks.append(PlainProgressLog(trainer.log_every_n_steps))
    model = build_model(cfg, trainer)
    languages = list(model.cfg.languages)
    rank, world = trainer.global_rank, trainer.world_size
    sampler = build_train_sampler(cfg, languages, model.tokenizer.vocab_size, rank, world)
    train_loader = build_train_loader(cfg, sampler, languages, bad_log)
    trainer.callbacks.append(SamplerResume(sampler, int(cfg.run.seed)))
    val = build_val_loader(cfg, languages, rank, world)
    validation = None
    if val is not None:
        validation = LanguageValidation(val[1], val[2], out_dir=run_dir / "validation")
        trainer.callbacks.append(validation)
    if trainer.is_global_zero:
        OmegaConf.save(cfg, run_dir / "config.yaml")
        log.info("run %s: %s", run_dir, sampler.describe())
        if table := lr_table(cfg):
            log.info("learning rates (GroupCosine) at key optimizer steps:\n%s", table)
    if cfg.run.get("save_initial") and ckpt_path is None and trainer.is_global_zero:
        # Before pre-flight: the baseline is the model as built, not as pre-flight left it.
        model.save_to(str(run_dir / "model_init.nemo"))  # the "before training" baseline
    if cfg.run.preflight and ckpt_path is None:
        _preflight(
            cfg, model, trainer, sampler.budget.caps
        )  # leaves every parameter and buffer as found

    trainer.fit(
        model,
        train_dataloaders=train_loader,
        val_dataloaders=val[0] if val else None,
        ckpt_path=ckpt_path,
    )
    digests = check_ranks_in_sync(model, trainer)
    nemo_path = None
    if trainer.is_global_zero:
        nemo_path = run_dir / "model.nemo"
        model.save_to(str(nemo_path))
        log.info("weights identical on %d rank(s): %s", len(digests), digests[0][:16])
    return TrainResult(
        run_dir,
        nemo_path,
        trainer.global_step,
        validation.last_scores if validation else None,
        digests,
    )


def quiet_logs() -> None:
    """NeMo and Lightning are chatty at INFO; keep our own INFO lines."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("nemo_logger", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
