"""Deterministic, append-stable, speaker-disjoint train/val split of a manifest.

Every utterance belongs to a *unit*: its speaker; when the speaker is unknown, its recording
session (a ``session`` field) or else its shard, so speakerless rows that likely share a voice stay
together rather than being split one by one (a warning counts them). A unit hashes (salted, per
language) to ``u`` in [0, 1), and the utterance is in val iff ``u < threshold[lang]``. Whole
speakers therefore land on one side (speaker-disjoint), and the split of an utterance depends only
on its language, unit and the language's threshold.

Thresholds are chosen once per language — the smallest that gives the configured val hours (or
fraction) and minimum count — and saved in ``split_state.json`` beside the outputs. Later runs
reuse them, so appending shards never moves an existing utterance across splits; only a
language seen for the first time gets a new threshold. One exception: a saved threshold of 0
(empty val, e.g. the language's first manifest had a single speaker) is recomputed on every run
until it opens, and the report counts the utterances that move from train to val when it does —
an empty val set has nothing to keep stable. ``reset=True`` recomputes (and moves).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from array import array
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from maya_asr.data.config import SplitConfig

TRAIN_NAME, VAL_NAME = "train.jsonl", "val.jsonl"
REPORT_NAME, STATE_NAME = "split_report.json", "split_state.json"
# How rows without a speaker are grouped. States written before grouping existed have no
# "unknown_speaker_unit" field and split such rows one by one ("key"); they keep doing so, so an
# existing split does not move, until --reset.
GROUPED, PER_KEY = "session_or_shard", "key"

log = logging.getLogger(__name__)


def split_unit(record: dict, unknown: str = GROUPED) -> str:
    """The unit kept whole on one side: the speaker; else the session, else the shard.

    The shard is named by its file name, not its full path: shards move between machines.
    """
    speaker = record.get("speaker") or ""
    if speaker:
        return f"spk:{speaker}"
    if unknown == GROUPED:
        if record.get("session"):
            return f"ses:{record['session']}"
        if record.get("tar_path"):
            return f"shard:{os.path.basename(record['tar_path'])}"
    return f"key:{record['key']}"


def unit_position(salt: str, lang: str, unit: str) -> float:
    """Uniform position in [0, 1) of ``unit`` (stable across runs, machines and Python versions)."""
    digest = hashlib.blake2b(f"{salt}\0{lang}\0{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def choose_threshold(positions: np.ndarray, seconds: np.ndarray, cfg: SplitConfig) -> float:
    """Smallest threshold whose val side reaches the target hours and minimum count.

    ``positions`` (N,) and ``seconds`` (N,) are per utterance; utterances of one unit share a
    position, so units are taken whole. Val never exceeds ``max_val_fraction`` of the hours and
    never takes every unit; 0.0 (empty val) when even one unit would break those limits.
    """
    if len(positions) == 0:
        return 0.0
    order = np.argsort(positions, kind="stable")
    pos, sec = positions[order], seconds[order]
    # one entry per unit (distinct position): its last index in the sorted arrays
    unit_end = np.flatnonzero(np.append(pos[1:] != pos[:-1], True))
    cum_sec = np.cumsum(sec)[unit_end]
    cum_cnt = unit_end + 1
    total = float(cum_sec[-1])
    target = cfg.val_hours * 3600 if cfg.val_hours is not None else cfg.val_fraction * total
    cap = cfg.max_val_fraction * total
    allowed = (cum_sec <= cap) & (np.arange(len(unit_end)) < len(unit_end) - 1)
    reached = (cum_sec >= target) & (cum_cnt >= cfg.min_val_utterances)
    ok = np.flatnonzero(allowed & reached)
    if len(ok):
        last = int(ok[0])
    else:  # target out of reach: take as much as the limits allow
        permitted = np.flatnonzero(allowed)
        if len(permitted) == 0:
            return 0.0
        last = int(permitted[-1])
    here, after = pos[unit_end[last]], pos[unit_end[last] + 1]
    return float((here + after) / 2)


def _read_state(path: Path, cfg: SplitConfig, reset: bool) -> tuple[dict[str, float], str]:
    """Saved thresholds and the unknown-speaker grouping they were made with."""
    if reset or not path.exists():
        return {}, GROUPED
    state = json.loads(path.read_text())
    if state.get("salt") != cfg.salt:
        raise ValueError(
            f"{path} was made with salt {state.get('salt')!r} but the config says {cfg.salt!r}; "
            "restore the salt, or pass --reset to re-split (this moves utterances between splits)"
        )
    thresholds = {k: float(v) for k, v in state["thresholds"].items()}
    return thresholds, state.get("unknown_speaker_unit", PER_KEY)


def _train_keys(path: Path, langs: set[str]) -> set[tuple[str, str]]:
    """(lang, key) of the previous train.jsonl's rows in ``langs`` (empty when there is none)."""
    keys: set[tuple[str, str]] = set()
    if not langs or not path.exists():
        return keys
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec["lang"] in langs:
                keys.add((rec["lang"], rec["key"]))
    return keys


def split_manifest(
    manifest: str | Path, output_dir: str | Path, cfg: SplitConfig, reset: bool = False
) -> dict:
    """Write ``train.jsonl``, ``val.jsonl``, ``split_report.json`` and ``split_state.json``."""
    manifest, output_dir = Path(manifest), Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    state_path = output_dir / STATE_NAME
    thresholds, unknown = _read_state(state_path, cfg, reset)
    # an empty val set (threshold 0) is reopened: new speakers may have arrived since
    closed = {lang for lang, t in thresholds.items() if t <= 0.0}
    previous_train = _train_keys(output_dir / TRAIN_NAME, closed)
    for lang in closed:
        del thresholds[lang]

    # pass 1: unit positions and durations of languages without a threshold yet
    positions: dict[str, array] = defaultdict(lambda: array("d"))
    seconds: dict[str, array] = defaultdict(lambda: array("d"))
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            lang = rec["lang"]
            if lang not in thresholds:
                positions[lang].append(unit_position(cfg.salt, lang, split_unit(rec, unknown)))
                seconds[lang].append(rec["duration"])
    new_langs = sorted(set(positions) - closed)
    reopened = sorted(set(positions) & closed)
    for lang in positions:
        thresholds[lang] = choose_threshold(
            np.frombuffer(positions[lang]), np.frombuffer(seconds[lang]), cfg
        )
    positions.clear()
    seconds.clear()

    # pass 2: assign and write
    stats: dict[str, dict] = {}
    speakers: dict[tuple[str, str], set] = defaultdict(set)
    speakerless_units: dict[str, set] = defaultdict(set)
    tmp = {name: output_dir / (name + ".partial") for name in (TRAIN_NAME, VAL_NAME)}
    with (
        open(manifest, encoding="utf-8") as f,
        open(tmp[TRAIN_NAME], "w", encoding="utf-8") as train,
        open(tmp[VAL_NAME], "w", encoding="utf-8") as val,
    ):
        for line in f:
            rec = json.loads(line)
            lang = rec["lang"]
            unit = split_unit(rec, unknown)
            side = "val" if unit_position(cfg.salt, lang, unit) < thresholds[lang] else "train"
            (val if side == "val" else train).write(line)
            row = stats.setdefault(
                lang,
                {"train": 0, "val": 0, "train_hours": 0.0, "val_hours": 0.0, "unknown_speaker": 0,
                 "moved_train_to_val": 0},
            )  # fmt: skip
            if side == "val" and (lang, rec["key"]) in previous_train:
                row["moved_train_to_val"] += 1
            row[side] += 1
            row[f"{side}_hours"] += rec["duration"] / 3600
            if rec.get("speaker"):
                speakers[(lang, side)].add(rec["speaker"])
            else:
                row["unknown_speaker"] += 1
                speakerless_units[lang].add(unit)
    for name, path in tmp.items():
        os.replace(path, output_dir / name)

    warnings: list[str] = []
    for lang, row in stats.items():
        if row["unknown_speaker"]:
            by = (
                "one by one (legacy split state; --reset groups them)"
                if unknown == PER_KEY
                else (f"in {len(speakerless_units[lang])} session/shard groups")
            )
            warnings.append(
                f"{lang}: {row['unknown_speaker']} utterances have no speaker and are split {by}; "
                "the split is speaker-disjoint only where metadata names the speaker"
            )
        if lang in reopened and thresholds[lang] > 0:
            warnings.append(
                f"{lang}: val was empty (saved threshold 0) and now opens with {row['val']} "
                f"utterances; {row['moved_train_to_val']} of them were in the previous "
                "train.jsonl, so a model trained on it has seen them"
            )
        train_spk, val_spk = speakers[(lang, "train")], speakers[(lang, "val")]
        row["train_hours"] = round(row["train_hours"], 6)
        row["val_hours"] = round(row["val_hours"], 6)
        row.update(
            train_speakers=len(train_spk),
            val_speakers=len(val_spk),
            shared_speakers=len(train_spk & val_spk),  # 0 by construction; reported as a check
            threshold=thresholds[lang],
            threshold_new=lang in new_langs,
            threshold_reopened=lang in reopened,
            unknown_speaker_groups=len(speakerless_units[lang]),
        )
    for message in warnings:
        log.warning(message)
    report = {
        "config": asdict(cfg),
        "languages": stats,
        "new_thresholds": new_langs,
        "reopened_thresholds": reopened,
        "unknown_speaker_unit": unknown,
        "warnings": warnings,
    }
    (output_dir / REPORT_NAME).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    state = {
        "salt": cfg.salt,
        "thresholds": dict(sorted(thresholds.items())),
        "unknown_speaker_unit": unknown,
    }
    state_tmp = state_path.with_name(STATE_NAME + ".partial")
    state_tmp.write_text(json.dumps(state, indent=2))
    os.replace(state_tmp, state_path)
    return report


def format_report(report: dict) -> str:
    lines = [f"{'lang':<6}{'train':>8}{'val':>7}{'train_h':>10}{'val_h':>9}{'val_spk':>9}"]
    for lang, r in report["languages"].items():
        lines.append(
            f"{lang:<6}{r['train']:>8}{r['val']:>7}{r['train_hours']:>10.3f}{r['val_hours']:>9.3f}"
            f"{r['val_speakers']:>9}"
        )
    if report["new_thresholds"]:
        lines.append(f"new val thresholds for: {', '.join(report['new_thresholds'])}")
    if report.get("reopened_thresholds"):
        lines.append(f"empty val sets re-examined: {', '.join(report['reopened_thresholds'])}")
    lines.extend(f"warning: {w}" for w in report.get("warnings", []))
    return "\n".join(lines)
