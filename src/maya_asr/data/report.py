"""Data report: hours per language, duration histogram, tokens per second, rejects per reason.

Reads what the stages wrote (the index parquet, streamed by row group over the three sampler
columns; the val manifest; the manifest's ``summary.json``; the split and tokenizer reports) and
writes ``report.json``, ``report.md`` and four PNG plots into one folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from maya_asr.languages import LANGUAGES

# Histogram bin edges in seconds: the sampler's buckets are 4 s wide up to 20 s.
DURATION_EDGES = (0, 1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 18, 20, 25, 30, 40, 60)


def _empty() -> dict:
    return {"utterances": 0, "seconds": 0.0, "tokens": 0}


def _accumulate(rows: dict, hist: np.ndarray, lang, dur, tok) -> None:
    hist += np.histogram(dur, bins=DURATION_EDGES)[0]
    for code in np.unique(lang):
        mask = lang == code
        row = rows.setdefault(str(code), _empty())
        row["utterances"] += int(mask.sum())
        row["seconds"] += float(dur[mask].sum())
        row["tokens"] += int(tok[mask].sum())


def scan_index(index_path: str | Path) -> tuple[dict, np.ndarray]:
    """Per-language totals and the duration histogram of the train index, one batch at a time."""
    import pyarrow.parquet as pq

    rows: dict[str, dict] = {}
    hist = np.zeros(len(DURATION_EDGES) - 1, dtype=np.int64)
    pf = pq.ParquetFile(index_path)
    for batch in pf.iter_batches(columns=["duration_s", "language", "num_tokens"]):
        _accumulate(
            rows,
            hist,
            batch.column("language").to_numpy(zero_copy_only=False),
            batch.column("duration_s").to_numpy(zero_copy_only=False).astype(np.float64),
            batch.column("num_tokens").to_numpy(zero_copy_only=False),
        )
    return rows, hist


def scan_manifest(path: str | Path) -> tuple[dict, np.ndarray]:
    lang, dur, tok = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            lang.append(r["lang"])
            dur.append(r["duration"])
            tok.append(r.get("num_tokens", 0))
    rows: dict[str, dict] = {}
    hist = np.zeros(len(DURATION_EDGES) - 1, dtype=np.int64)
    if lang:
        _accumulate(rows, hist, np.array(lang), np.array(dur, float), np.array(tok, np.int64))
    return rows, hist


def _read_json(path: str | Path | None) -> dict | None:
    if path is None or not Path(path).exists():
        return None
    return json.loads(Path(path).read_text())


def build_report(
    index_path: str | Path,
    val_manifest: str | Path,
    manifest_summary: str | Path,
    split_report: str | Path | None = None,
    tokenizer_report: str | Path | None = None,
) -> dict:
    train, train_hist = scan_index(index_path)
    val, val_hist = scan_manifest(val_manifest)
    summary = _read_json(manifest_summary) or {}
    languages = {}
    for lang in [c for c in LANGUAGES if c in train or c in val] + sorted(
        set(train) | set(val) - set(LANGUAGES)
    ):
        t, v = train.get(lang, _empty()), val.get(lang, _empty())
        rejects = summary.get("languages", {}).get(lang, {}).get("rejects", {})
        languages[lang] = {
            "train_hours": round(t["seconds"] / 3600, 4),
            "val_hours": round(v["seconds"] / 3600, 4),
            "train_utterances": t["utterances"],
            "val_utterances": v["utterances"],
            "train_tokens": t["tokens"],
            "tokens_per_second": round(t["tokens"] / max(t["seconds"], 1e-9), 3),
            "mean_duration_s": round(t["seconds"] / max(1, t["utterances"]), 3),
            "rejected": sum(rejects.values()),
        }
    return {
        "languages": languages,
        "totals": {
            "train_hours": round(sum(r["train_hours"] for r in languages.values()), 4),
            "val_hours": round(sum(r["val_hours"] for r in languages.values()), 4),
            "train_utterances": sum(r["train_utterances"] for r in languages.values()),
            "val_utterances": sum(r["val_utterances"] for r in languages.values()),
            "accepted": summary.get("accepted"),
            "rejected": summary.get("rejected"),
            "reject_rate": summary.get("reject_rate"),
        },
        "duration_histogram": {
            "edges_s": list(DURATION_EDGES),
            "train": train_hist.tolist(),
            "val": val_hist.tolist(),
        },
        "rejects_by_reason": summary.get("rejects_by_reason", {}),
        "rejects_by_language": {
            lang: row.get("rejects", {}) for lang, row in summary.get("languages", {}).items()
        },
        "split": (_read_json(split_report) or {}).get("languages"),
        "tokenizer": _read_json(tokenizer_report),
    }


def to_markdown(report: dict) -> str:
    t = report["totals"]
    out = [
        "# Data report",
        "",
        f"Train {t['train_hours']:.3f} h ({t['train_utterances']} utterances), "
        f"val {t['val_hours']:.3f} h ({t['val_utterances']}); "
        f"rejected {t['rejected']} of {(t['accepted'] or 0) + (t['rejected'] or 0)} "
        f"({(t['reject_rate'] or 0):.2%}).",
        "",
        "| lang | train h | val h | train utts | val utts | mean s | tokens/s | rejected |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lang, r in report["languages"].items():
        out.append(
            f"| {lang} | {r['train_hours']:.3f} | {r['val_hours']:.3f} | {r['train_utterances']} "
            f"| {r['val_utterances']} | {r['mean_duration_s']:.2f} | {r['tokens_per_second']:.2f} "
            f"| {r['rejected']} |"
        )
    out += ["", "## Rejects by reason", ""]
    if report["rejects_by_reason"]:
        out += ["| reason | count |", "|---|---:|"]
        out += [f"| {k} | {v} |" for k, v in report["rejects_by_reason"].items()]
    else:
        out.append("No rejects.")
    h = report["duration_histogram"]
    out += ["", "## Duration histogram (train)", "", "| seconds | utterances |", "|---|---:|"]
    edges = h["edges_s"]
    out += [f"| {edges[i]}–{edges[i + 1]} | {n} |" for i, n in enumerate(h["train"])]
    tok = report.get("tokenizer")
    if tok and "val" in tok:
        out += ["", "## Tokenizer on val", "", "| lang | tokens/char | tokens/s | unk rate |"]
        out.append("|---|---:|---:|---:|")
        for lang, r in tok["val"].items():
            out.append(
                f"| {lang} | {r['tokens_per_char']:.3f} | {r['tokens_per_second']:.2f} "
                f"| {r['unk_rate']:.4f} |"
            )
    out += ["", "Plots: hours_per_language.png, duration_histogram.png, tokens_per_second.png, "
            "rejects_by_reason.png."]  # fmt: skip
    return "\n".join(out) + "\n"


def plot_report(report: dict, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = list(report["languages"])
    rows = report["languages"]
    written = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=100)
        plt.close(fig)
        written.append(name)

    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(langs))
    ax.bar(x - 0.2, [rows[lang]["train_hours"] for lang in langs], 0.4, label="train")
    ax.bar(x + 0.2, [rows[lang]["val_hours"] for lang in langs], 0.4, label="val")
    ax.set(xticks=x, xticklabels=langs, ylabel="hours", title="Hours per language")
    ax.legend()
    save(fig, "hours_per_language.png")

    h = report["duration_histogram"]
    fig, ax = plt.subplots(figsize=(8, 4))
    edges = np.array(h["edges_s"], dtype=float)
    ax.bar(edges[:-1], h["train"], width=np.diff(edges), align="edge", edgecolor="black")
    ax.set(xlabel="duration (s)", ylabel="utterances", title="Train duration histogram")
    save(fig, "duration_histogram.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(langs, [rows[lang]["tokens_per_second"] for lang in langs])
    ax.set(ylabel="BPE tokens per second", title="Tokens per second of audio (train)")
    save(fig, "tokens_per_second.png")

    reasons = report["rejects_by_reason"]
    fig, ax = plt.subplots(figsize=(8, 4))
    if reasons:
        ax.barh(list(reasons), list(reasons.values()))
    else:
        ax.text(0.5, 0.5, "no rejects", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="utterances", title="Rejects by reason")
    save(fig, "rejects_by_reason.png")
    return written


def write_report(report: dict, out_dir: str | Path) -> list[str]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (out_dir / "report.md").write_text(to_markdown(report), encoding="utf-8")
    return ["report.json", "report.md", *plot_report(report, out_dir)]
