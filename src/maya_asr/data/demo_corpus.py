"""Synthesise the 12-language demo corpus with espeak-ng, in the production raw shard format.

We cannot download speech, so we make it: real words (``wordbanks``) spoken by espeak-ng with
several voice variants, speeds and pitches per language (each combination a named speaker),
resampled to a mix of 16 kHz, 22.05 kHz and 8 kHz and stored as a mix of WAV and FLAC, so the
pipeline meets the same variety it will meet in production shards.

Everything is a pure function of the config's seed: the same config writes byte-identical tars.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import soundfile as sf
import soxr

from maya_asr.data import raw_format
from maya_asr.data.wordbanks import load_words, word_source
from maya_asr.languages import LANGUAGES, get_language, parse_languages

ESPEAK_RATE = 22050  # espeak-ng always synthesises at this rate
SAMPLE_RATE_MIX = ((16000, 0.5), (22050, 0.35), (8000, 0.15))
AUDIO_FORMATS = ("wav", "flac")

# (espeak-ng voice variant, words per minute, pitch 0-99): one named speaker per style.
SPEAKER_STYLES: tuple[tuple[str, int, int], ...] = (
    ("m1", 150, 45),
    ("f2", 165, 65),
    ("m3", 130, 35),
    ("f4", 175, 75),
    ("m7", 145, 55),
    ("f1", 135, 60),
)


@dataclass(frozen=True)
class DemoCorpusConfig:
    output_root: Path  # where <lang>/shard-NNNNNN.tar go
    languages: tuple[str, ...] = LANGUAGES  # language codes to synthesise
    utts_per_lang: int = 800  # utterances per language (~10 h in all at the default)
    shard_size: int = 50  # utterances per tar shard
    seed: int = 0  # everything (words, speakers, rates, formats) derives from it
    workers: int = 2  # synthesis processes
    vocab_per_lang: int = 1000  # words drawn from each language's source to build sentences
    max_words: int = 25  # utterances have 1..max_words words

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_root", Path(self.output_root))
        object.__setattr__(self, "languages", parse_languages(self.languages))
        for name in ("utts_per_lang", "shard_size", "workers", "vocab_per_lang", "max_words"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    def fingerprint(self) -> dict:
        """The fields that decide the corpus content (not where or how fast it is written)."""
        d = asdict(self)
        d.pop("output_root")
        d.pop("workers")
        d["languages"] = list(self.languages)
        return d


@dataclass(frozen=True)
class Speaker:
    name: str
    voice: str  # espeak-ng voice with variant, e.g. "hi+f2"
    speed: int
    pitch: int


@dataclass(frozen=True)
class UtterancePlan:
    key: str
    lang: str
    text: str
    speaker: Speaker
    sample_rate: int
    audio_format: str


@dataclass
class ShardResult:
    lang: str
    path: str
    utterances: int
    seconds: float
    speakers: list[str] = field(default_factory=list)


def speakers_for(lang: str, voice: str | None = None) -> list[Speaker]:
    """A :class:`Speaker` per ``SPEAKER_STYLES`` entry: ``<lang>-<variant>-s<wpm>-p<pitch>``.

    ``voice`` is the espeak-ng voice; by default the target language's own.
    """
    voice = voice or get_language(lang).espeak_voice
    return [
        Speaker(f"{lang}-{variant}-s{speed}-p{pitch}", f"{voice}+{variant}", speed, pitch)
        for variant, speed, pitch in SPEAKER_STYLES
    ]


def plan_language(
    lang: str,
    cfg: DemoCorpusConfig,
    words: list[str],
    speakers: list[Speaker] | None = None,
    forbidden_texts: frozenset[str] = frozenset(),
) -> list[UtterancePlan]:
    """Deterministic plan of every utterance of ``lang`` (pure: no synthesis, no I/O).

    ``cfg`` needs ``seed``, ``utts_per_lang``, ``vocab_per_lang`` and ``max_words`` (the
    pretraining corpus config has them too). ``speakers`` defaults to :func:`speakers_for`;
    a sentence in ``forbidden_texts`` is drawn again (empty by default, so the demo corpus is
    unchanged by the option).
    """
    rng = random.Random(f"{cfg.seed}:{lang}")
    vocab = rng.sample(words, min(cfg.vocab_per_lang, len(words)))
    speakers = speakers if speakers is not None else speakers_for(lang)
    if not speakers:
        raise ValueError(f"no speakers left for {lang}: allow at least one voice style")
    rates, weights = zip(*SAMPLE_RATE_MIX, strict=True)
    plans = []
    for i in range(cfg.utts_per_lang):
        text = _draw_sentence(rng, vocab, cfg.max_words)
        while text in forbidden_texts:
            text = _draw_sentence(rng, vocab, cfg.max_words)
        plans.append(
            UtterancePlan(
                key=f"{lang}_{i:06d}",
                lang=lang,
                text=text,
                speaker=speakers[i % len(speakers)],
                sample_rate=rng.choices(rates, weights)[0],
                audio_format=rng.choice(AUDIO_FORMATS),
            )
        )
    return plans


def _draw_sentence(rng: random.Random, vocab: list[str], max_words: int) -> str:
    # Mostly short sentences with a tail to max_words: mean ~6 words, ~3 s of speech.
    n_words = 1 + min(max_words - 1, int(rng.gammavariate(1.6, 3.0)))
    return " ".join(rng.choice(vocab) for _ in range(n_words))


def synthesize(plan: UtterancePlan, workdir: str) -> tuple[bytes, float]:
    """Speak ``plan.text`` with espeak-ng; return the encoded audio member and its duration."""
    wav_path = os.path.join(workdir, f"{plan.key}.wav")
    sp = plan.speaker
    cmd = ["espeak-ng", "-v", sp.voice, "-s", str(sp.speed), "-p", str(sp.pitch), "-w", wav_path]
    proc = subprocess.run([*cmd, plan.text], capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"espeak-ng failed for {plan.key} ({sp.voice}): {proc.stderr.decode(errors='replace')}"
        )
    audio, rate = sf.read(wav_path, dtype="float32")
    os.unlink(wav_path)
    if rate != plan.sample_rate:
        audio = soxr.resample(audio, rate, plan.sample_rate)
    buf = io.BytesIO()
    sf.write(buf, audio, plan.sample_rate, format=plan.audio_format.upper(), subtype="PCM_16")
    return buf.getvalue(), len(audio) / plan.sample_rate


def write_shard(path: Path, plans: list[UtterancePlan]) -> ShardResult:
    """Synthesise ``plans`` into one tar at ``path`` (written to a temp name, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tar.partial")
    seconds = 0.0
    with (
        tempfile.TemporaryDirectory(prefix="maya-espeak-") as workdir,
        tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for plan in plans:
            audio, duration = synthesize(plan, workdir)
            seconds += duration
            raw_format.add_member(tar, f"{plan.key}.{plan.audio_format}", audio)
            meta = raw_format.metadata_bytes(
                plan.text,
                plan.lang,
                plan.speaker.name,
                synth={"engine": "espeak-ng", "voice": plan.speaker.voice},
            )
            raw_format.add_member(tar, f"{plan.key}.json", meta)
    os.replace(tmp, path)
    speakers = sorted({p.speaker.name for p in plans})
    return ShardResult(plans[0].lang, str(path), len(plans), seconds, speakers)


def shard_jobs(
    output_root: Path, lang: str, plans: list[UtterancePlan], shard_size: int
) -> Iterator[tuple[Path, list[UtterancePlan]]]:
    """``(<output_root>/<lang>/shard-NNNNNN.tar, its plans)`` for consecutive runs of ``plans``."""
    for index, start in enumerate(range(0, len(plans), shard_size)):
        yield output_root / lang / raw_format.shard_name(index), plans[start : start + shard_size]


def _shard_jobs(cfg: DemoCorpusConfig) -> Iterator[tuple[Path, list[UtterancePlan]]]:
    for lang in cfg.languages:
        plans = plan_language(lang, cfg, load_words(lang))
        yield from shard_jobs(cfg.output_root, lang, plans, cfg.shard_size)


def _check_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed; run `make system-deps`")


def build_demo_corpus(cfg: DemoCorpusConfig, progress: bool = True) -> dict:
    """Write the corpus under ``cfg.output_root`` and ``corpus.json`` beside it; return the summary.

    Resumable and idempotent: when ``corpus.json`` records the same fingerprint, shards already on
    disk are kept and only missing ones are synthesised; with a different fingerprint every shard
    is rewritten and stale shards are removed.
    """
    sources = {lang: word_source(lang) for lang in cfg.languages}
    return build_shards(
        cfg.output_root, cfg.fingerprint(), list(_shard_jobs(cfg)), sources, cfg.workers, progress
    )


def build_shards(
    output_root: Path,
    fingerprint: dict,
    jobs: list[tuple[Path, list[UtterancePlan]]],
    sources: dict[str, str],
    workers: int,
    progress: bool = True,
) -> dict:
    """Synthesise planned shards under ``output_root`` with ``corpus.json``; return the summary.

    ``sources`` maps each language, in report order, to where its words came from. Shards of a
    ``corpus.json`` with the same ``fingerprint`` are kept; any other shard is removed.
    """
    from tqdm import tqdm

    _check_espeak()
    summary_path = output_root / "corpus.json"
    previous = json.loads(summary_path.read_text()) if summary_path.exists() else None
    same_config = previous is not None and previous.get("config") == fingerprint
    planned = {str(p) for p, _ in jobs}
    for lang_dir in output_root.glob("*/"):
        for stale in lang_dir.glob(raw_format.SHARD_GLOB):
            if str(stale) not in planned:
                stale.unlink()

    kept = {r["path"]: r for r in previous["shards"]} if same_config else {}
    results: list[ShardResult] = [
        ShardResult(**kept[str(p)]) for p, _ in jobs if str(p) in kept and p.exists()
    ]
    todo = [(p, plans) for p, plans in jobs if not (str(p) in kept and p.exists())]
    t0 = time.perf_counter()
    bar = tqdm(
        total=sum(len(pl) for _, pl in todo), unit="utt", desc="corpus", disable=not progress
    )
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(write_shard, p, plans) for p, plans in todo]
        for fut in as_completed(futures):
            result = fut.result()
            results.append(result)
            bar.update(result.utterances)
    bar.close()
    wall = time.perf_counter() - t0
    results.sort(key=lambda r: r.path)
    summary = {
        "config": fingerprint,
        "shards": [asdict(r) for r in results],
        "languages": _language_table(results, sources),
        "synthesised_utterances": sum(len(pl) for _, pl in todo),
        "wall_seconds": round(wall, 2),
    }
    output_root.mkdir(parents=True, exist_ok=True)
    tmp = summary_path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    os.replace(tmp, summary_path)
    return summary


def _language_table(results: list[ShardResult], sources: dict[str, str]) -> dict:
    # keyed in the configured language order
    table = {lang: {"utterances": 0, "hours": 0.0, "speakers": set()} for lang in sources}
    for r in results:
        row = table[r.lang]
        row["utterances"] += r.utterances
        row["hours"] += r.seconds / 3600
        row["speakers"].update(r.speakers)
    for lang, row in table.items():
        row["speakers"] = len(row["speakers"])
        row["hours"] = round(row["hours"], 4)
        row["source"] = sources[lang]
    return table


def format_summary(summary: dict) -> str:
    """A short plain-text table of the corpus, for the end of the command."""
    lines = [f"{'lang':<5}{'utts':>6}{'hours':>9}{'spk':>5}  words from"]
    for lang, row in summary["languages"].items():
        lines.append(
            f"{lang:<5}{row['utterances']:>6}{row['hours']:>9.3f}{row['speakers']:>5}"
            f"  {row['source']}"
        )
    total_utts = sum(r["utterances"] for r in summary["languages"].values())
    total_hours = sum(r["hours"] for r in summary["languages"].values())
    lines.append(f"{'all':<5}{total_utts:>6}{total_hours:>9.3f}")
    n, wall = summary["synthesised_utterances"], summary["wall_seconds"]
    if n:
        lines.append(
            f"synthesised {n} utterances in {wall:.1f} s ({n / max(wall, 1e-9):.1f} utt/s)"
        )
    else:
        lines.append("corpus already up to date: nothing synthesised")
    return "\n".join(lines)
