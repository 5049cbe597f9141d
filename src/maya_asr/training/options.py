"""Training options: the users' command-line flags, merged into the run's OmegaConf config.

Precedence, lowest to highest: the YAML config, the documented defaults (only for keys the YAML
does not set), flags given on the command line, then ``key=value`` dotlist overrides. The merged
config is what the run uses and what it saves beside its checkpoints.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

# flag name -> (config key, documented default for a model./trainer. key the YAML lacks). The
# defaults of data./run. keys are the fields of DataSection/RunSection below, defined once there.
# Schedule keys (LRs, freeze, CTC ramp, max_steps) have no default here: the production values
# live in configs/train/stage1_prod_8xh200.yaml, and a config that omits them must not get them.
FLAG_KEYS: dict[str, tuple[str, object]] = {
    "train_parquet": ("data.train_parquet", None),
    "val_manifest": ("data.val_manifest", None),
    "pretrained_encoder": ("run.pretrained_encoder", None),
    "encoder_lr": ("model.optim_param_groups.encoder.lr", None),
    "head_lr": ("model.optim.lr", None),
    "freeze_encoder_steps": ("model.encoder_freeze_steps", None),
    "ctc_warmup_steps": ("model.ctc_warmup_steps", None),
    "max_batch_dur": ("data.max_batch_dur", None),
    "max_batch_size": ("data.max_batch_size", None),
    "max_tokens_in_batch": ("data.max_tokens_in_batch", None),
    "temperature": ("data.temperature", None),
    "grad_accum": ("trainer.accumulate_grad_batches", 4),
    "max_steps": ("trainer.max_steps", None),
    "devices": ("trainer.devices", None),
    "num_nodes": ("trainer.num_nodes", 1),
    "log_every": ("trainer.log_every_n_steps", 50),
    "val_every": ("run.val_every", None),
    "checkpoint_every": ("run.checkpoint_every", None),
    "run_dir": ("run.dir", None),
    "checkpoint_dir": ("run.checkpoint_dir", None),
    "seed": ("run.seed", None),
    "num_workers": ("data.num_workers", None),
}


@dataclass
class RunSection:
    """``run:`` keys of a training config (what is not the model, the trainer or the data)."""

    dir: str | None = None  # run directory: checkpoints, logs, merged config, .nemo
    checkpoint_dir: str | None = None  # where checkpoints go (default <dir>/checkpoints)
    pretrained_encoder: str | None = None  # .pt state dict or .nemo whose encoder we start from
    val_every: int = 5000  # optimizer steps between validations
    checkpoint_every: int = 5000  # optimizer steps between kept checkpoints (plus `last`)
    seed: int = 0  # seeds sampler, model init and dropout
    smoke: bool = False  # shrink the model to the smoke size (one device, quick)
    preflight: bool = True  # run the worst-case batch of each bucket before step 1
    no_lang_embed: bool = False  # train without the language embedding
    save_initial: bool = False  # also save the untrained model as model_init.nemo (baselines)


@dataclass
class DataSection:
    """``data:`` keys: the production index, the val manifest and the sampler caps."""

    train_parquet: str | None = None  # production_train_final.parquet
    val_manifest: str | None = None  # JSONL with tar_path/tar_offset_data/tar_nbytes rows
    tokenizer_dir: str | None = None  # defaults to model.tokenizer.dir
    max_batch_dur: float = 120.0  # padded audio seconds per micro-batch
    max_batch_size: int = 16  # samples per micro-batch
    # Per-bucket sample caps: None (max_batch_size in every bucket), "auto" (derived from the
    # other caps: short clips get more samples) or one int per bucket.
    bucket_batch_sizes: Any = None
    max_tokens_in_batch: int = 400  # transcript tokens per micro-batch
    # Optional cap on (B + min(B, fused_batch_size)) x T_enc x (U+1) x (V+1+D): see JointCap.
    max_joint_elements: int | None = None
    temperature: float = 0.3  # language rebalancing: p_l ~ hours_l ** T
    epoch_hours: float | None = None  # hours drawn per epoch (None: the usable corpus' hours)
    bucket_edges: list[float] = field(default_factory=lambda: [0.0, 4.0, 8.0, 12.0, 16.0, 20.0])
    num_workers: int = 4  # DataLoader worker processes per rank
    val_batch_size: int = 16  # utterances per validation batch
    max_val_utterances: int | None = None  # cap on validation utterances (None: all)
    # old shard root -> new root, for an index built where the shards lived elsewhere
    tar_root_remap: dict[str, str] = field(default_factory=dict)


def validate(cfg: DictConfig) -> None:
    """Raise ``ValueError`` with the fix for every inconsistent combination we can see early."""
    from maya_asr.models.lr_schedule import validate_schedule

    data, run, trainer = cfg.data, cfg.run, cfg.trainer
    if OmegaConf.select(cfg, "trainer.max_steps") is None:
        raise ValueError("trainer.max_steps is not set: set it in the YAML or pass --max-steps")
    if OmegaConf.select(cfg, "model.optim.lr") is None:
        raise ValueError("model.optim.lr (the head LR) is not set: set it or pass --head-lr")
    if not data.train_parquet:
        raise ValueError("no training index: pass --train-parquet (see `make prod-artifacts`)")
    for name in ("max_batch_dur", "max_batch_size", "max_tokens_in_batch"):
        if data[name] <= 0:
            raise ValueError(f"data.{name} must be positive, got {data[name]}")
    if not 0.0 <= data.temperature <= 1.0:
        raise ValueError(f"--temperature must be in [0, 1], got {data.temperature}")
    if trainer.accumulate_grad_batches < 1:
        raise ValueError("--grad-accum must be at least 1")
    if run.val_every < 1 or run.checkpoint_every < 1:
        raise ValueError("--val-every and --checkpoint-every must be at least 1 optimizer step")
    edges = list(data.bucket_edges)
    if sorted(edges) != edges or len(set(edges)) != len(edges):
        raise ValueError(f"data.bucket_edges must increase strictly, got {edges}")
    validate_schedule(cfg)


def flags_of(args: argparse.Namespace) -> dict:
    """The ``flags`` :func:`build_config` takes, from a parser that :func:`add_flags` set up."""
    flags = {name: getattr(args, name, None) for name in FLAG_KEYS}
    if flags["devices"] is not None and str(flags["devices"]).isdigit():
        flags["devices"] = int(flags["devices"])
    flags.update(smoke=args.smoke, no_lang_embed=args.no_lang_embed, no_preflight=args.no_preflight)
    return flags


def build_config(
    base: DictConfig, flags: dict[str, object], dotlist: list[str] | None = None
) -> DictConfig:
    """Merge ``flags`` (flag name -> value, None when not given) and ``dotlist`` into ``base``."""
    cfg = OmegaConf.merge(
        {"run": OmegaConf.structured(RunSection), "data": OmegaConf.structured(DataSection)},
        base,
    )
    with open_dict(cfg):
        for name, (key, default) in FLAG_KEYS.items():
            value = flags.get(name)
            if value is not None:
                OmegaConf.update(cfg, key, value, force_add=True)
            elif default is not None and OmegaConf.select(cfg, key) is None:
                OmegaConf.update(cfg, key, default, force_add=True)
        for name in ("smoke", "no_lang_embed"):
            if flags.get(name):
                cfg.run[name] = True
        if flags.get("no_preflight"):
            cfg.run.preflight = False
        if cfg.run.no_lang_embed:
            # Every utterance takes the language-free path and no language-ID head mixes vectors
            # in for it: the model learns no language vectors.
            cfg.model.language_dropout = 1.0
            cfg.model.lid_loss_weight = 0.0
        if dotlist:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(dotlist))
    return cfg


def documented_default(name: str) -> object:
    """The default a flag stands for: FLAG_KEYS's, else the data/run section field's."""
    key, default = FLAG_KEYS[name]
    section, _, field_name = key.partition(".")
    sections = {"data": DataSection, "run": RunSection}
    if default is None and section in sections:
        default = getattr(sections[section](), field_name, None)
    return default


# flag name -> (argparse type, help); the default is appended from documented_default.
_FLAG_HELP: dict[str, tuple[type | None, str]] = {
    "train_parquet": (None, "production index (artifacts/phase3/production_train_final.parquet)"),
    "val_manifest": (None, "validation JSONL (data/manifests/stage1_prod_val_v2.jsonl)"),
    "pretrained_encoder": (None, "encoder state dict .pt or a .nemo to take the encoder from"),
    "encoder_lr": (float, "encoder learning rate"),
    "head_lr": (float, "decoder/joint/CTC/language-embedding learning rate"),
    "freeze_encoder_steps": (int, "optimizer steps with a frozen encoder"),
    "ctc_warmup_steps": (int, "optimizer steps of the CTC weight ramp"),
    "max_batch_dur": (float, "padded audio seconds per micro-batch"),
    "max_batch_size": (int, "samples per micro-batch"),
    "max_tokens_in_batch": (int, "tokens per micro-batch"),
    "temperature": (float, "language rebalancing, 0=uniform 1=natural"),
    "grad_accum": (int, "gradient accumulation micro-batches"),
    "max_steps": (int, "optimizer steps"),
    "devices": (None, "devices per node: a count, 'auto' or a list (default: all)"),
    "num_nodes": (int, "nodes"),
    "log_every": (int, "optimizer steps between log lines"),
    "val_every": (int, "optimizer steps between validations"),
    "checkpoint_every": (int, "optimizer steps between checkpoints"),
    "num_workers": (int, "DataLoader workers per rank"),
    "seed": (int, "seed for sampler, init and dropout"),
    "run_dir": (None, "run directory (default experiments/<config name>)"),
    "checkpoint_dir": (None, "checkpoint folder the R2 watcher uploads (<run-dir>/checkpoints)"),
}


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The users' flags. argparse defaults stay None so the YAML can speak; the help shows the
    documented default."""
    parser.add_argument("--config", required=True, help="training YAML (configs/train/*.yaml)")
    for name, (kind, text) in _FLAG_HELP.items():
        default = documented_default(name)
        shown = f"{text} (default {default})" if default is not None else text
        parser.add_argument("--" + name.replace("_", "-"), type=kind, help=shown)
    a = parser.add_argument
    a("--no-lang-embed", action="store_true", help="train without the language embedding")
    a("--resume", nargs="?", const="auto", help="resume: a .ckpt path, or the run's last.ckpt")
    a(
        "--smoke",
        action="store_true",
        help="smoke model size, one device, schedule scaled to --max-steps, encoder at head LR",
    )
    a("--no-preflight", action="store_true", help="skip the worst-case batch check")
    a("overrides", nargs="*", help="OmegaConf dotlist overrides, e.g. model.encoder.n_layers=4")
