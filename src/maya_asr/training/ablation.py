"""`make demo-ablate`: the demo recipe with one part removed at a time, and its table.

Each variant is the demo config plus training-script arguments (flags or OmegaConf overrides);
everything else (data, steps, seed, evaluation set) is the full recipe's. The table reads the
``report.json`` that ``scripts/evaluate.py`` writes for each variant.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from maya_asr.inference.error_rates import ALL


@dataclass(frozen=True)
class Variant:
    slug: str  # run folder name
    label: str  # table row
    args: tuple[str, ...]  # extra scripts/train_prod.py arguments


def variants(heads_lr: float) -> tuple[Variant, ...]:
    """The full recipe first, then one variant per removed part. ``heads_lr``: model.optim.lr."""
    return (
        Variant("full", "full recipe", ()),
        Variant("no_pretrained", "no pretrained encoder", ("run.pretrained_encoder=null",)),
        Variant(
            "no_freeze",
            "no encoder freeze",
            ("model.encoder_freeze_steps=0", "model.optim.sched.encoder_rewarmup_steps=0"),
        ),
        Variant(
            "one_lr",
            "one LR for all",
            (f"model.optim_param_groups.encoder.lr={heads_lr}",),
        ),
        Variant("no_ctc_warmup", "no CTC warm-up", ("model.ctc_warmup_steps=0",)),
        Variant("no_lang_embed", "no language embedding", ("--no-lang-embed",)),
    )


def train_args(config: str, steps: int, variant: Variant) -> list[str]:
    """The scripts/train_prod.py arguments of ``variant`` (run folder not included)."""
    every = str(steps)
    return ["--config", config, "--max-steps", every, "--val-every", every,
            "--checkpoint-every", every, *variant.args]  # fmt: skip


def expected_config(config: str, steps: int, variant: Variant) -> dict:
    """The merged config scripts/train_prod.py writes to <run>/config.yaml for ``variant``,
    without ``run.dir`` (the one key that differs between an ablation run and make demo's)."""
    from omegaconf import OmegaConf

    from maya_asr.training.options import add_flags, build_config, flags_of

    parser = argparse.ArgumentParser()
    add_flags(parser)
    args = parser.parse_args(train_args(config, steps, variant))
    cfg = build_config(OmegaConf.load(config), flags_of(args), args.overrides)
    cfg = OmegaConf.to_container(cfg)
    cfg.get("run", {}).pop("dir", None)
    return cfg


def stale_reason(run: Path, expected: dict) -> str | None:
    """Why the finished ``run`` is not ``expected``'s result (None: it is and can be reused).

    A run is stale when its saved config differs (other steps, LRs, encoder...) or when the
    pretrained encoder it loaded, or the training index or validation manifest it used, has
    changed since its model.nemo was written (a rebuilt corpus keeps the same paths).
    """
    from omegaconf import OmegaConf

    saved, nemo = run / "config.yaml", run / "model.nemo"
    if not saved.exists() or not nemo.exists():
        return "unfinished (no config.yaml or model.nemo)"
    cfg = OmegaConf.to_container(OmegaConf.load(saved))
    cfg.get("run", {}).pop("dir", None)
    if cfg != expected:
        return "trained with another config"
    data = expected.get("data") or {}
    inputs = [
        (expected.get("run") or {}).get("pretrained_encoder"),
        data.get("train_parquet"),
        data.get("val_manifest"),
    ]
    for path in filter(None, inputs):
        if Path(path).exists() and Path(path).stat().st_mtime > nemo.stat().st_mtime:
            return f"{path} is newer than its model.nemo"
    return None


def scores(report: dict) -> dict[str, float]:
    """``{"tdt/cer": .., "tdt/wer": .., "ctc/free/cer": ..}`` over all languages of one model.

    ``report`` is evaluate.py's report.json; with ``--compare`` only the first model counts.
    """
    out = {}
    first = report["systems"][0]["model"]
    for system in (s for s in report["systems"] if s["model"] == first):
        kind = system["decoder"] + ("" if system["language_given"] else "/free")
        overall = system["scores"][ALL]
        out[f"{kind}/cer"] = overall["cer"]
        out[f"{kind}/wer"] = overall["wer"]
    return out


def best_head_cer(row: dict[str, float]) -> float:
    """CER of the better head with the language given (the demo goal's figure)."""
    return min(row.get("tdt/cer", math.inf), row.get("ctc/cer", math.inf))


def markdown_table(rows: dict[str, dict[str, float]], full: str = "full recipe") -> str:
    """One row per variant: CER/WER of both heads (language given, then free) and the change
    of the better head's CER against ``full``'s, in points."""
    kinds = [
        ("tdt", "TDT"),
        ("ctc", "CTC"),
        ("tdt/free", "TDT free"),
        ("ctc/free", "CTC free"),
    ]
    header = ["variant"]
    for _, name in kinds:
        header += [f"{name} CER", f"{name} WER"]
    header.append("Δ best CER vs full")
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    base = best_head_cer(rows[full]) if full in rows else None
    for label, row in rows.items():
        cells = [label]
        for kind, _ in kinds:
            for metric in ("cer", "wer"):
                value = row.get(f"{kind}/{metric}")
                cells.append("–" if value is None else f"{100 * value:.1f}%")
        best = best_head_cer(row)
        if base is None or not math.isfinite(best):
            cells.append("–")
        elif label == full:
            cells.append("(reference)")
        else:
            cells.append(f"{100 * (best - base):+.1f} pp")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
