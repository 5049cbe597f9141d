"""Build ``manifest.jsonl`` + ``rejects.jsonl`` from raw shards: parallel, resumable, sliceable.

Work is split by shard. Each shard's scan (:mod:`maya_asr.data.shard_scan`) is written to its own
part files under ``<output>/parts/<lang>/``::

    shard-000000.jsonl           accepted records
    shard-000000.rejects.jsonl   rejects
    shard-000000.done.json       written last: counts, the tar's size and the config fingerprint

A shard whose ``.done.json`` is newer than its tar (same size, same config) is skipped, so an
interrupted run resumes and a run after new shards arrive only reads the new ones. With
``num_shards > 1`` each machine (e.g. one SLURM array task) takes every K-th shard and
:func:`merge_parts` later combines all parts; it also rejects keys repeated across shards of a
language (the first shard in path order keeps the key).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from maya_asr.data import raw_format
from maya_asr.data.config import DataConfig
from maya_asr.data.shard_scan import DUPLICATE_KEY, REASONS, scan_shard
from maya_asr.languages import LANGUAGES

MANIFEST_NAME = "manifest.jsonl"
REJECTS_NAME = "rejects.jsonl"
SUMMARY_NAME = "summary.json"
PARTS_DIR = "parts"
_KEY_PREFIX = '{"key": "'


@dataclass(frozen=True)
class ShardTask:
    tar_path: str  # absolute path of the shard
    lang: str  # name of its language folder

    @property
    def stem(self) -> str:
        return Path(self.tar_path).stem


def discover_shards(input_root: str | Path) -> list[ShardTask]:
    """Every ``<root>/<lang>/shard-*.tar``, in language-folder then file-name order."""
    root = Path(input_root)
    if not root.is_dir():
        raise ValueError(f"input root {root} is not a directory of <lang>/shard-*.tar folders")
    tasks = []
    for lang_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for tar in sorted(lang_dir.glob(raw_format.SHARD_GLOB)):
            tasks.append(ShardTask(str(tar.resolve()), lang_dir.name))
    return tasks


def select_slice(tasks: list[ShardTask], shard_index: int, num_shards: int) -> list[ShardTask]:
    """Slice ``shard_index`` of ``num_shards``: every ``num_shards``-th shard (round robin keeps
    each slice's languages mixed, so slices take similar time)."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"--shard-index must be in [0, {num_shards}), got {shard_index}")
    return tasks[shard_index::num_shards]


def config_fingerprint(cfg: DataConfig) -> str:
    """Hash of the settings a manifest depends on; parts made under another config are redone."""
    payload = {
        "text": {k: asdict(v) for k, v in sorted(cfg.text.items())},
        "manifest": asdict(cfg.manifest),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def part_paths(output_dir: str | Path, task: ShardTask) -> tuple[Path, Path, Path]:
    base = Path(output_dir) / PARTS_DIR / task.lang
    return (
        base / f"{task.stem}.jsonl",
        base / f"{task.stem}.rejects.jsonl",
        base / f"{task.stem}.done.json",
    )


def part_is_current(output_dir: str | Path, task: ShardTask, fingerprint: str) -> bool:
    """True when the shard's parts exist, are newer than the tar and match its size and config."""
    records, rejects, done = part_paths(output_dir, task)
    if not (done.exists() and records.exists() and rejects.exists()):
        return False
    try:
        st = os.stat(task.tar_path)
        info = json.loads(done.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (
        done.stat().st_mtime >= st.st_mtime
        and info.get("tar_size") == st.st_size
        and info.get("fingerprint") == fingerprint
    )


def _write_lines(path: Path, rows: Iterable[dict]) -> None:
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def process_shard(task: ShardTask, output_dir: str, cfg: DataConfig, fingerprint: str) -> dict:
    """Scan one shard and write its part files; return the ``.done.json`` content."""
    records_path, rejects_path, done_path = part_paths(output_dir, task)
    records_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tar_size = os.stat(task.tar_path).st_size
    except OSError:
        tar_size = -1
    scan = scan_shard(task.tar_path, task.lang, cfg)
    _write_lines(records_path, scan.records)
    _write_lines(rejects_path, scan.rejects)
    done = {
        "tar_path": scan.tar_path,
        "lang": task.lang,
        "tar_size": tar_size,
        "fingerprint": fingerprint,
        "readable": scan.readable,
        "accepted": len(scan.records),
        "seconds": sum(r["duration"] for r in scan.records),
        "rejects": dict(Counter(r["reason"] for r in scan.rejects)),
    }
    tmp = done_path.with_name(done_path.name + ".partial")
    tmp.write_text(json.dumps(done))
    os.replace(tmp, done_path)
    return done


def _run_one(args: tuple[ShardTask, str, DataConfig, str]) -> dict:
    return process_shard(*args)


def build_parts(
    tasks: list[ShardTask],
    output_dir: str | Path,
    cfg: DataConfig,
    workers: int = 1,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Write the parts of ``tasks`` (skipping current ones unless ``force``); return counts."""
    from tqdm import tqdm

    output_dir = str(output_dir)
    fingerprint = config_fingerprint(cfg)
    todo = [t for t in tasks if force or not part_is_current(output_dir, t, fingerprint)]
    jobs = [(t, output_dir, cfg, fingerprint) for t in todo]
    t0 = time.perf_counter()
    bar = tqdm(total=len(jobs), unit="shard", desc="manifest", disable=not progress)
    accepted = 0
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            accepted += _run_one(job)["accepted"]
            bar.update(1)
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            for done in pool.map(_run_one, jobs, chunksize=1):
                accepted += done["accepted"]
                bar.update(1)
                bar.set_postfix(utts=accepted)
    bar.close()
    return {
        "shards": len(tasks),
        "scanned": len(jobs),
        "skipped": len(tasks) - len(jobs),
        "accepted_in_scanned": accepted,
        "wall_seconds": round(time.perf_counter() - t0, 3),
    }


def _key_of(line: str) -> str:
    # Records are written with "key" first and keys are [A-Za-z0-9_-]+, so no JSON parse needed.
    if line.startswith(_KEY_PREFIX):
        return line[len(_KEY_PREFIX) : line.index('"', len(_KEY_PREFIX))]
    return json.loads(line)["key"]


def merge_parts(tasks: list[ShardTask], output_dir: str | Path) -> dict:
    """Combine every task's parts into ``manifest.jsonl``, ``rejects.jsonl`` and ``summary.json``.

    Keys repeated across shards of one language are rejected (``duplicate_key``) after their first
    appearance. Memory: one set of keys for the language being merged.
    """
    output_dir = Path(output_dir)
    missing = [t.tar_path for t in tasks if not part_paths(output_dir, t)[2].exists()]
    if missing:
        raise ValueError(
            f"{len(missing)} shard(s) have no finished part under {output_dir / PARTS_DIR}, e.g. "
            f"{missing[0]}; run build_manifest.py for every --shard-index before --merge-only"
        )
    by_lang: dict[str, list[ShardTask]] = defaultdict(list)
    for t in tasks:
        by_lang[t.lang].append(t)
    order = [lang for lang in LANGUAGES if lang in by_lang] + sorted(
        lang for lang in by_lang if lang not in LANGUAGES
    )
    langs: dict[str, dict] = {}
    shards_read = shards_unreadable = 0
    man_tmp = output_dir / (MANIFEST_NAME + ".partial")
    rej_tmp = output_dir / (REJECTS_NAME + ".partial")
    with open(man_tmp, "w", encoding="utf-8") as man, open(rej_tmp, "w", encoding="utf-8") as rej:
        for lang in order:
            row = {"accepted": 0, "hours": 0.0, "rejects": Counter()}
            seen: set[str] = set()
            seconds = 0.0
            for task in by_lang[lang]:
                records_path, rejects_path, done_path = part_paths(output_dir, task)
                done = json.loads(done_path.read_text())
                shards_read += bool(done["readable"])
                shards_unreadable += not done["readable"]
                seconds += done["seconds"]
                row["rejects"].update(done["rejects"])
                with open(records_path, encoding="utf-8") as f:
                    for line in f:
                        key = _key_of(line)
                        if key in seen:
                            rec = json.loads(line)
                            seconds -= rec["duration"]
                            row["rejects"][DUPLICATE_KEY] += 1
                            rej.write(json.dumps({
                                "tar": rec["tar_path"], "key": key, "lang": lang,
                                "reason": DUPLICATE_KEY,
                                "detail": "key already taken by an earlier shard of this language",
                            }, ensure_ascii=False) + "\n")  # fmt: skip
                            continue
                        seen.add(key)
                        man.write(line)
                        row["accepted"] += 1
                with open(rejects_path, encoding="utf-8") as f:
                    rej.writelines(f)
            row["hours"] = round(seconds / 3600, 6)
            row["rejects"] = {r: row["rejects"][r] for r in REASONS if row["rejects"][r]}
            langs[lang] = row
    os.replace(man_tmp, output_dir / MANIFEST_NAME)
    os.replace(rej_tmp, output_dir / REJECTS_NAME)
    summary = summarize(langs, shards_read, shards_unreadable)
    (output_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


def summarize(langs: dict[str, dict], shards_read: int, shards_unreadable: int) -> dict:
    accepted = sum(r["accepted"] for r in langs.values())
    rejected = sum(sum(r["rejects"].values()) for r in langs.values())
    reasons = Counter()
    for r in langs.values():
        reasons.update(r["rejects"])
    return {
        "languages": langs,
        "accepted": accepted,
        "rejected": rejected,
        "hours": round(sum(r["hours"] for r in langs.values()), 6),
        "reject_rate": round(rejected / max(1, accepted + rejected), 6),
        "rejects_by_reason": {r: reasons[r] for r in REASONS if reasons[r]},
        "shards_read": shards_read,
        "shards_unreadable": shards_unreadable,
    }


def format_summary(summary: dict) -> str:
    """Per-language table: accepted utterances, hours, then one column per reject reason seen."""
    reasons = list(summary["rejects_by_reason"])
    width = {r: len(r) + 2 for r in reasons}
    head = f"{'lang':<6}{'accepted':>9}{'hours':>9}" + "".join(f"{r:>{width[r]}}" for r in reasons)
    lines = [head]
    for lang, row in summary["languages"].items():
        cells = "".join(f"{row['rejects'].get(r, 0):>{width[r]}}" for r in reasons)
        lines.append(f"{lang:<6}{row['accepted']:>9}{row['hours']:>9.3f}{cells}")
    cells = "".join(f"{summary['rejects_by_reason'][r]:>{width[r]}}" for r in reasons)
    lines.append(f"{'all':<6}{summary['accepted']:>9}{summary['hours']:>9.3f}{cells}")
    lines.append(
        f"rejected {summary['rejected']} ({summary['reject_rate']:.2%}); shards read "
        f"{summary['shards_read']}, unreadable {summary['shards_unreadable']}"
    )
    return "\n".join(lines)


# Exit codes of scripts/build_manifest.py (argparse itself uses 2 for bad flags).
EXIT_OK, EXIT_REJECT_RATE, EXIT_NO_SHARDS = 0, 3, 4


def exit_code(summary: dict, max_reject_rate: float) -> int:
    """Non-zero only when no shard could be read or the reject rate passes the threshold."""
    if summary["shards_read"] == 0:
        return EXIT_NO_SHARDS
    if summary["reject_rate"] > max_reject_rate:
        return EXIT_REJECT_RATE
    return EXIT_OK
