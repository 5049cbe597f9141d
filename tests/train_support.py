"""The tiny training run the tests build models with: configs/train/smoke.yaml through the real
flag merging of ``scripts/train_prod.py``, pointed at the ``tiny_artifacts`` fixture's outputs.

Imported as ``from train_support import ...`` (pytest puts ``tests/`` on sys.path for its
conftest).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

REPO = Path(__file__).parents[1]
SMOKE = REPO / "configs" / "train" / "smoke.yaml"


def smoke_train_config(art: dict, run_dir: Path, max_steps: int, dotlist=(), **extra) -> DictConfig:
    """A run of ``max_steps`` optimizer steps on the tiny corpus (no validation unless
    ``val_manifest`` is passed); ``extra``: more flags of ``train_prod.py`` by name."""
    from maya_asr.training.options import FLAG_KEYS, build_config

    flags = {name: None for name in FLAG_KEYS}
    flags.update(
        train_parquet=str(art["index"]),
        max_steps=max_steps,
        grad_accum=1,
        freeze_encoder_steps=1,
        ctc_warmup_steps=2,
        max_batch_dur=20.0,
        max_batch_size=4,
        num_workers=0,
        checkpoint_every=2,
        val_every=1000,
        run_dir=str(run_dir),
        no_preflight=True,
    )
    flags.update(extra)
    overrides = [f"model.tokenizer.dir={art['tokenizer_dir']}"]
    if not flags.get("val_manifest"):
        overrides.append("data.val_manifest=null")
    overrides += list(dotlist)  # OmegaConf dotlist overrides, applied last
    return build_config(OmegaConf.load(SMOKE), flags, overrides)
