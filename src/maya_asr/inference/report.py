"""Evaluation reports: a markdown table, a JSON document and a PNG chart of the same results."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from maya_asr.inference.error_rates import ALL
from maya_asr.inference.evaluation import SystemResult
from maya_asr.languages import LANGUAGES
from maya_asr.text.scoring import ScoringPolicy


def language_order(results: Sequence[SystemResult]) -> list[str]:
    """Languages present in any result, in model-id order (others after), then "all"."""
    present = {lang for r in results for lang in r.scores if lang != ALL}
    known = [lang for lang in LANGUAGES if lang in present]
    return [*known, *sorted(present - set(known)), ALL]


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{100 * rate:.2f}"


def markdown_report(results: Sequence[SystemResult]) -> str:
    """Per-language WER and CER (%) with one column per system, then a speed table."""
    names = [r.name for r in results]
    first = results[0]
    lines = [
        "| lang | utts | "
        + " | ".join(f"WER {n}" for n in names)
        + " | "
        + " | ".join(f"CER {n}" for n in names)
        + " |",
        "|---|---:|" + "---:|" * (2 * len(names)),
    ]
    for lang in language_order(results):
        utts = first.scores[lang].utterances if lang in first.scores else 0
        wers = [_pct(r.scores[lang].wer) if lang in r.scores else "—" for r in results]
        cers = [_pct(r.scores[lang].cer) if lang in r.scores else "—" for r in results]
        label = f"**{lang}**" if lang == ALL else lang
        lines.append(f"| {label} | {utts} | " + " | ".join(wers + cers) + " |")
    lines += ["", "| system | WER % | CER % | RTFx | audio h | model s | language given |"]
    lines.append("|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        rtfx = "—" if r.stats.rtfx is None else f"{r.stats.rtfx:.1f}"
        lines.append(
            f"| {r.name} | {_pct(r.scores[ALL].wer)} | {_pct(r.scores[ALL].cer)} | {rtfx} | "
            f"{r.stats.audio_seconds / 3600:.3f} | {r.stats.model_seconds:.1f} | "
            f"{'yes' if r.language_given else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def json_report(results: Sequence[SystemResult], policy: ScoringPolicy, manifest: str) -> dict:
    """Everything in the markdown table, plus raw edit counts and the scoring policy."""
    return {
        "manifest": manifest,
        "scoring_policy": asdict(policy),
        "systems": [
            {
                "name": r.name,
                "model": r.model,
                "model_path": r.model_path,
                "decoder": r.decoder,
                "language_given": r.language_given,
                "rtfx": r.stats.rtfx,
                "audio_seconds": r.stats.audio_seconds,
                "model_seconds": r.stats.model_seconds,
                "skipped_inputs": r.stats.bad,
                "scores": {lang: score.to_dict() for lang, score in r.scores.items()},
            }
            for r in results
        ],
    }


def plot_report(results: Sequence[SystemResult], path: str | os.PathLike) -> Path:
    """Grouped bars of WER and CER (%) per language, one bar per system; saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    langs = language_order(results)
    x = np.arange(len(langs))
    width = 0.8 / len(results)
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.9 * len(langs) + 2), 7), sharex=True)
    for ax, metric in zip(axes, ("wer", "cer"), strict=True):
        for i, r in enumerate(results):
            values = [
                100 * (getattr(r.scores[lang], metric) or 0.0) if lang in r.scores else 0.0
                for lang in langs
            ]
            ax.bar(x + (i - (len(results) - 1) / 2) * width, values, width, label=r.name)
        ax.set_ylabel(f"{metric.upper()} %")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize="small", ncol=min(4, len(results)))
    axes[1].set_xticks(x, langs)
    axes[0].set_title("Error rates per language (scoring-normalised)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_reports(
    results: Sequence[SystemResult],
    out_dir: str | os.PathLike,
    policy: ScoringPolicy,
    manifest: str,
) -> dict[str, Path]:
    """``report.md``, ``report.json`` and ``report.png`` under ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "report.md"
    md.write_text(markdown_report(results), encoding="utf-8")
    js = out_dir / "report.json"
    doc = json_report(results, policy, manifest)
    js.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    png = plot_report(results, out_dir / "report.png")
    return {"markdown": md, "json": js, "chart": png}
