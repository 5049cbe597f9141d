"""The demo encoder's pretraining corpus: espeak-ng speech in languages the demo does not target.

Production starts from Parakeet, an encoder pretrained on English; the demo starts from a small
FastConformer we pretrain here in the same spirit: English plus five European languages that
espeak-ng speaks, with words from their Debian aspell dictionaries, none of them Indic.

What keeps the demo's validation honest:

* **no Indic language, no demo sentence** -- the languages come from ``PRETRAIN_LANGUAGES`` only
  (Latin script), English takes its words from aspell-en (the demo's English uses a hand-written
  bank) and any sentence the demo corpus plans for a shared language is drawn again;
* **no held-out voice** -- speakers use only the demo's ``SPEAKER_STYLES`` (espeak-ng variant,
  speed, pitch). A demo speaker is a (language, style) pair and the speaker-disjoint split holds
  one pair per language out; pretraining in German, French, ... never produces those pairs, and
  for English (a demo language too) the held-out pair, read from the demo's validation manifest,
  is left out.

The synthesis, shard layout and summary are the demo corpus's own (``demo_corpus``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from maya_asr.data.demo_corpus import (
    DemoCorpusConfig,
    Speaker,
    UtterancePlan,
    build_shards,
    plan_language,
    shard_jobs,
    speakers_for,
)
from maya_asr.data.wordbanks import load_words, word_source
from maya_asr.languages import LANGUAGES, Language

# Languages the demo's encoder is pretrained on: never a target's words, never an Indic script.
PRETRAIN_LANGUAGES: tuple[Language, ...] = (
    Language("en", "English", "Latin", "en-us", "en"),
    Language("de", "German", "Latin", "de", "de"),
    Language("fr", "French", "Latin", "fr", "fr"),
    Language("es", "Spanish", "Latin", "es", "es"),
    Language("it", "Italian", "Latin", "it", "it"),
    Language("nl", "Dutch", "Latin", "nl", "nl"),
)
_BY_CODE = {lang.code: lang for lang in PRETRAIN_LANGUAGES}


def pretrain_language(code: str) -> Language:
    """The :class:`Language` of pretraining language ``code``; ``ValueError`` naming the choices."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise ValueError(
            f"{code!r} is not a pretraining language; choose from {', '.join(_BY_CODE)}"
            " (the demo's Indic languages are never pretrained on)"
        ) from None


@dataclass(frozen=True)
class PretrainCorpusConfig:
    output_root: Path  # where <lang>/shard-NNNNNN.tar go
    languages: tuple[str, ...] = tuple(_BY_CODE)  # codes of PRETRAIN_LANGUAGES
    utts_per_lang: int = 400  # utterances per language (~2.5 h in all at the default)
    shard_size: int = 50  # utterances per tar shard
    seed: int = 1  # the demo corpus uses 0: even shared words make other sentences
    workers: int = 2  # synthesis processes
    vocab_per_lang: int = 2000  # words drawn from each dictionary to build sentences
    max_words: int = 25  # utterances have 1..max_words words
    heldout_speakers: tuple[str, ...] = ()  # demo validation speakers, never voiced here

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_root", Path(self.output_root))
        codes = self.languages
        if isinstance(codes, str):
            codes = tuple(c.strip() for c in codes.split(",") if c.strip())
        for code in codes:
            pretrain_language(code)
        if len(set(codes)) != len(codes) or not codes:
            raise ValueError(f"languages {codes} must be non-empty and name each language once")
        object.__setattr__(self, "languages", tuple(codes))
        object.__setattr__(self, "heldout_speakers", tuple(sorted(set(self.heldout_speakers))))
        for name in ("utts_per_lang", "shard_size", "workers", "vocab_per_lang", "max_words"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        shared = [c for c in codes if c in LANGUAGES]
        if shared and not self.heldout_speakers:
            raise ValueError(
                f"{', '.join(shared)} is also a demo language: pass the demo's held-out speakers"
                " (--heldout-manifest artifacts/demo/manifests/stage1_prod_val_v2.jsonl) so its"
                " validation voice is not pretrained on, or drop it from --languages"
            )

    def fingerprint(self) -> dict:
        """The fields that decide the corpus content (not where or how fast it is written)."""
        d = asdict(self)
        d.pop("output_root")
        d.pop("workers")
        d["languages"] = list(self.languages)
        d["heldout_speakers"] = list(self.heldout_speakers)
        return d


def heldout_speakers_from_manifest(path: str | os.PathLike) -> tuple[str, ...]:
    """Sorted speaker names of a JSONL manifest (the demo's validation speakers)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no validation manifest at {path}; build it with `make demo-artifacts`"
        )
    with path.open(encoding="utf-8") as f:
        speakers = {json.loads(line)["speaker"] for line in f if line.strip()}
    return tuple(sorted(speakers))


def pretrain_speakers(lang: str, heldout: Iterable[str]) -> list[Speaker]:
    """The demo's speaker styles in pretraining language ``lang``, minus held-out demo speakers."""
    excluded = set(heldout)
    voice = pretrain_language(lang).espeak_voice
    return [s for s in speakers_for(lang, voice) if s.name not in excluded]


def demo_sentences(lang: str) -> frozenset[str]:
    """Every sentence the default demo corpus plans for ``lang`` (empty for a non-demo language)."""
    if lang not in LANGUAGES:
        return frozenset()
    demo = DemoCorpusConfig(output_root=Path("."), languages=(lang,))
    return frozenset(p.text for p in plan_language(lang, demo, load_words(lang)))


def plan_pretrain_language(
    lang: str, cfg: PretrainCorpusConfig, words: list[str]
) -> list[UtterancePlan]:
    """Deterministic plan of ``lang``'s utterances (pure but for the demo plan it avoids)."""
    return plan_language(
        lang,
        cfg,
        words,
        speakers=pretrain_speakers(lang, cfg.heldout_speakers),
        forbidden_texts=demo_sentences(lang),
    )


def build_pretrain_corpus(cfg: PretrainCorpusConfig, progress: bool = True) -> dict:
    """Write the corpus under ``cfg.output_root`` with ``corpus.json``; return the summary.

    Idempotent like the demo corpus: a second run with the same config synthesises nothing.
    """
    jobs = []
    for lang in cfg.languages:
        plans = plan_pretrain_language(lang, cfg, load_words(pretrain_language(lang)))
        jobs.extend(shard_jobs(cfg.output_root, lang, plans, cfg.shard_size))
    sources = {lang: word_source(pretrain_language(lang)) for lang in cfg.languages}
    return build_shards(cfg.output_root, cfg.fingerprint(), jobs, sources, cfg.workers, progress)
