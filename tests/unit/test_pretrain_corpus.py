"""The encoder's pretraining corpus never uses a demo language's text, an Indic language, a voice
style outside the demo's or a held-out demo validation speaker."""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import asdict
from pathlib import Path

import pytest

from maya_asr.data import raw_format
from maya_asr.data.demo_corpus import SPEAKER_STYLES, DemoCorpusConfig, plan_language
from maya_asr.data.pretrain_corpus import (
    PRETRAIN_LANGUAGES,
    PretrainCorpusConfig,
    build_pretrain_corpus,
    demo_sentences,
    heldout_speakers_from_manifest,
    plan_pretrain_language,
    pretrain_language,
    pretrain_speakers,
)
from maya_asr.data.wordbanks import load_words
from maya_asr.languages import LANGUAGES, get_language

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
EN_HELDOUT = ("en-m3-s130-p35",)  # the demo split's English validation speaker


def test_no_pretraining_language_is_a_demo_indic_language():
    indic = {code for code in LANGUAGES if get_language(code).script != "Latin"}
    assert indic and len(indic) == len(LANGUAGES) - 1  # every demo language but English
    for language in PRETRAIN_LANGUAGES:
        assert language.code not in indic
        assert language.script == "Latin"
        assert language.aspell_dict  # dictionary words, never the demo's hand-written banks
    for code in sorted(indic):
        with pytest.raises(ValueError, match="not a pretraining language"):
            PretrainCorpusConfig(output_root=Path("x"), languages=(code,))


def test_speakers_use_only_demo_styles_and_never_a_heldout_speaker(tmp_path):
    cfg = PretrainCorpusConfig(
        output_root=tmp_path, languages=("en", "de"), utts_per_lang=24, heldout_speakers=EN_HELDOUT
    )
    for lang in cfg.languages:
        voice = pretrain_language(lang).espeak_voice
        plans = plan_pretrain_language(lang, cfg, WORDS)
        used = {p.speaker for p in plans}
        for speaker in used:
            base, variant = speaker.voice.split("+")
            assert base == voice
            assert (variant, speaker.speed, speaker.pitch) in SPEAKER_STYLES
            assert speaker.name not in EN_HELDOUT
        # every allowed style is used; English loses exactly its held-out one
        assert len(used) == len(SPEAKER_STYLES) - (1 if lang == "en" else 0)
    assert [s.name for s in pretrain_speakers("en", EN_HELDOUT)].count(EN_HELDOUT[0]) == 0


def test_a_shared_language_needs_the_heldout_speakers(tmp_path):
    with pytest.raises(ValueError, match="--heldout-manifest"):
        PretrainCorpusConfig(output_root=tmp_path, languages=("en", "de"))
    assert PretrainCorpusConfig(output_root=tmp_path, languages=("de",)).languages == ("de",)


def test_no_planned_sentence_is_a_demo_sentence(tmp_path):
    # Same seed and the demo's own English words: unfiltered, the plan IS the demo's text.
    words = load_words("en")
    cfg = PretrainCorpusConfig(
        output_root=tmp_path, languages=("en",), seed=0, vocab_per_lang=1000,
        utts_per_lang=60, heldout_speakers=EN_HELDOUT,
    )  # fmt: skip
    demo = demo_sentences("en")
    assert len(demo) > 300
    unfiltered = {p.text for p in plan_language("en", cfg, words)}
    assert len(unfiltered & demo) == 60
    planned = [p.text for p in plan_pretrain_language("en", cfg, words)]
    assert len(planned) == 60 and not set(planned) & demo
    assert demo_sentences("de") == frozenset()


def test_demo_corpus_plan_is_unchanged_by_the_pretraining_options():
    # sha256 of the English demo plan at 400 utterances (the demo's size when the planner was
    # shared with pretraining), from the code before that
    words = load_words("en")
    plans = plan_language("en", DemoCorpusConfig(output_root=Path("."), utts_per_lang=400), words)
    digest = hashlib.sha256(
        json.dumps([asdict(p) for p in plans], sort_keys=True).encode()
    ).hexdigest()
    assert digest == "31b151a8a3c71927b57e3259e66c5d5702b21c8711fc17deb85ebd96b1b09c97"


def test_a_larger_demo_corpus_extends_the_smaller_one():
    # the default corpus grew 400 -> 800 per language: its first 400 utterances (and so the
    # held-out ones scored before) are the smaller corpus's, utterance for utterance
    words = load_words("en")
    small = plan_language("en", DemoCorpusConfig(output_root=Path("."), utts_per_lang=400), words)
    large = plan_language("en", DemoCorpusConfig(output_root=Path(".")), words)
    assert len(large) == 800 and large[:400] == small


def test_heldout_speakers_come_from_the_validation_manifest(tmp_path):
    manifest = tmp_path / "val.jsonl"
    rows = [
        {"speaker": "en-m3-s130-p35"},
        {"speaker": "hi-f1-s135-p60"},
        {"speaker": "en-m3-s130-p35"},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert heldout_speakers_from_manifest(manifest) == ("en-m3-s130-p35", "hi-f1-s135-p60")
    with pytest.raises(FileNotFoundError, match="make demo-artifacts"):
        heldout_speakers_from_manifest(tmp_path / "missing.jsonl")


def test_built_shards_hold_only_pretraining_languages_in_the_raw_format(tmp_path):
    cfg = PretrainCorpusConfig(
        output_root=tmp_path, languages=("de", "es"), utts_per_lang=2, shard_size=2, workers=1
    )
    summary = build_pretrain_corpus(cfg, progress=False)
    assert list(summary["languages"]) == ["de", "es"]
    assert summary["languages"]["de"]["source"] == "Debian aspell-de dictionary"
    for lang in cfg.languages:
        (shard,) = sorted((tmp_path / lang).glob(raw_format.SHARD_GLOB))
        with tarfile.open(shard) as tar:
            metas = [json.loads(tar.extractfile(m).read()) for m in tar if m.name.endswith(".json")]
        assert len(metas) == 2
        assert {m["lang"] for m in metas} == {lang}
        assert all(
            m["synth"]["voice"].startswith(pretrain_language(lang).espeak_voice + "+")
            for m in metas
        )
    assert build_pretrain_corpus(cfg, progress=False)["synthesised_utterances"] == 0
