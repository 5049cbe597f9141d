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
    lines += [
        "",
        "| system | WER % | CER % | RTFx | audio h | model s | skipped | language given |",
    ]
    lines.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        rtfx = "—" if r.stats.rtfx is None else f"{r.stats.rtfx:.1f}"
        lines.append(
            f"| {r.name} | {_pct(r.scores[ALL].wer)} | {_pct(r.scores[ALL].cer)} | {rtfx} | "
            f"{r.stats.audio_seconds / 3600:.3f} | {r.stats.model_seconds:.1f} | "
            f"{len(r.stats.bad)} | {'yes' if r.language_given else 'no'} |"
        )
    gap = language_gap_report(results)
    return "\n".join(lines) + "\n" + ("\n" + gap if gap else "")


def language_pairs(results: Sequence[SystemResult]) -> list[tuple[SystemResult, SystemResult]]:
    """(language-given, language-free) result pairs of the same model and head."""
    free = {(r.model, r.decoder): r for r in results if r.takes_language and not r.language_given}
    return [
        (r, free[(r.model, r.decoder)])
        for r in results
        if r.language_given and (r.model, r.decoder) in free
    ]


def _ratio(free: float | None, given: float | None) -> str:
    return "—" if free is None or not given else f"{free / given:.2f}"


def language_gap_report(results: Sequence[SystemResult]) -> str:
    """Per-language CER (%) with and without the language, and their ratio (free / given), for
    each model and head scored both ways; empty when none was."""
    pairs = language_pairs(results)
    if not pairs:
        return ""
    head = " | ".join(f"CER {g.name} given | CER {g.name} free | free/given" for g, _ in pairs)
    lines = [
        "CER % with the language given and language-free (no language: what stock NeMo "
        "clients do); free/given = 1.00 means no cost for not knowing the language.",
        "",
        f"| lang | {head} |",
        "|---|" + "---:|" * (3 * len(pairs)),
    ]
    for lang in language_order(results):
        cells = []
        for given, free in pairs:
            g = given.scores[lang].cer if lang in given.scores else None
            f = free.scores[lang].cer if lang in free.scores else None
            cells += [_pct(g), _pct(f), _ratio(f, g)]
        label = f"**{lang}**" if lang == ALL else lang
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
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
                "takes_language": r.takes_language,
                "rtfx": r.stats.rtfx,
                "audio_seconds": r.stats.audio_seconds,
                "model_seconds": r.stats.model_seconds,
                "skipped_inputs": r.stats.bad,
                "scores": {lang: score.to_dict() for lang, score in r.scores.items()},
            }
            for r in results
        ],
    }


def _kind(r: SystemResult) -> str:
    """The system without the model: ``tdt``, ``ctc``, ``tdt/free``..."""
    return r.name.split("/", 1)[1]


def _rate(r: SystemResult, lang: str, metric: str) -> float:
    """``metric`` in % for ``lang``; NaN (no bar) when it has no score."""
    value = getattr(r.scores[lang], metric) if lang in r.scores else None
    return float("nan") if value is None else 100 * value


def _legend_above(ax, entries: int) -> None:
    """The legend above the axes on the right (the title sits on the left): it hides no bar."""
    ax.legend(
        loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=min(4, entries), frameon=False,
        fontsize="small", borderaxespad=0.2,
    )  # fmt: skip


def _per_language_panel(ax, systems: Sequence[SystemResult], langs: list[str], metric: str):
    """Grouped bars per language; a head's language-free bar is its given bar's lighter,
    hatched twin, so each pair reads as one comparison."""
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(langs))
    width = 0.8 / len(systems)
    palette = plt.get_cmap("tab20").colors  # pairs: (dark, light) of one hue
    heads = list(dict.fromkeys(r.decoder for r in systems))
    for i, r in enumerate(systems):
        free = r.takes_language and not r.language_given
        color = palette[(2 * heads.index(r.decoder)) % 20 + int(free)]
        values = [_rate(r, lang, metric) for lang in langs]
        offset = (i - (len(systems) - 1) / 2) * width
        ax.bar(
            x + offset, values, width, label=_kind(r), color=color, hatch="//" if free else None,
            edgecolor="white", linewidth=0,
        )  # fmt: skip
    ax.set_xticks(x, langs)
    ax.set_ylabel(f"{metric.upper()} %")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    _legend_above(ax, len(systems))


def _before_after_panel(ax, results: Sequence[SystemResult], metric: str):
    """Overall ``metric`` of every model, grouped by system kind, on a log scale (an untrained
    model's 500 % and a trained one's 40 % both read), each bar labelled with its value."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FuncFormatter

    kinds = list(dict.fromkeys(_kind(r) for r in results))
    models = list(dict.fromkeys(r.model for r in results))
    by = {(r.model, _kind(r)): r for r in results}
    x = np.arange(len(kinds))
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        values = [_rate(by[(model, k)], ALL, metric) if (model, k) in by else np.nan for k in kinds]
        offset = (i - (len(models) - 1) / 2) * width
        # tab10 from green on: not the blue/orange of the heads in the panel above
        color = plt.get_cmap("tab10").colors[(2 + i) % 10]
        bars = ax.bar(x + offset, values, width, label=model, color=color)
        ax.bar_label(bars, labels=[f"{v:.0f}%" if v == v else "" for v in values], fontsize=8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(v)[0] in "235" else ""))
    ax.set_xticks(x, kinds)
    ax.set_ylabel(f"{metric.upper()} % (all languages, log)")
    ax.grid(axis="y", alpha=0.3, which="both")
    _legend_above(ax, len(models))
    ax.margins(y=0.2)


def plot_report(results: Sequence[SystemResult], path: str | os.PathLike) -> Path:
    """Two panels, saved as PNG.

    Top: CER per language of the first model (``--model``) for each of its systems (heads,
    language given / free), on its own linear scale: a compared untrained model cannot squash
    it. Bottom: with compared models, the before/after: every model's overall CER per system on
    a log scale, bars labelled; without, the first model's WER per language.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = results[0].model
    own = [r for r in results if r.model == main]
    compared = len({r.model for r in results}) > 1
    langs = language_order(own)
    fig, axes = plt.subplots(2, 1, figsize=(max(9, 0.9 * len(langs) + 2), 8))
    _per_language_panel(axes[0], own, langs, "cer")
    axes[0].set_title(f"{main}: CER per language", loc="left", fontsize="medium")
    if compared:
        _before_after_panel(axes[1], results, "cer")
        axes[1].set_title("Before / after: CER over all languages", loc="left", fontsize="medium")
    else:
        _per_language_panel(axes[1], own, langs, "wer")
        axes[1].set_title(f"{main}: WER per language", loc="left", fontsize="medium")
    fig.suptitle("Error rates (scoring-normalised); free = no language given")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def language_id_report(language_id: dict[str, dict]) -> str:
    """Markdown: accuracy of each model's language-ID head, per language."""
    langs = []  # union over models, in the first-seen (model) order
    for acc in language_id.values():
        langs += [k for k in acc if k not in (ALL, "confusions", "skipped", *langs)]
    lines = [
        "Language-ID head accuracy (the language it names for each row; the language-free path "
        "uses its vector)",
        "",
        "| model | " + " | ".join([*langs, f"**{ALL}**"]) + " |",
        "|---|" + "---:|" * (len(langs) + 1),
    ]
    for model, acc in language_id.items():
        cells = [f"{acc[k]['accuracy']:.3f}" if k in acc else "-" for k in [*langs, ALL]]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_reports(
    results: Sequence[SystemResult],
    out_dir: str | os.PathLike,
    policy: ScoringPolicy,
    manifest: str,
    language_id: dict[str, dict] | None = None,
) -> dict[str, Path]:
    """``report.md``, ``report.json`` and ``report.png`` under ``out_dir``; returns their paths.
    ``language_id``: {model label: ``evaluation.language_id_accuracy``} for models with a head."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "report.md"
    text = markdown_report(results)
    if language_id:
        text += "\n" + language_id_report(language_id)
    md.write_text(text, encoding="utf-8")
    js = out_dir / "report.json"
    doc = json_report(results, policy, manifest)
    if language_id:
        doc["language_id"] = language_id
    js.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    png = plot_report(results, out_dir / "report.png")
    return {"markdown": md, "json": js, "chart": png}
