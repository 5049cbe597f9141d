"""The demo corpus is real speech in the production raw shard format, for all 12 languages."""

from __future__ import annotations

import io
import json
import tarfile
import unicodedata
from collections import Counter

import soundfile as sf
import webdataset.tariterators as wds_tar

from maya_asr.data import raw_format
from maya_asr.data.demo_corpus import (
    DemoCorpusConfig,
    build_demo_corpus,
    plan_language,
    speakers_for,
)
from maya_asr.data.wordbanks import load_words
from maya_asr.languages import LANGUAGES, get_language
from maya_asr.text import script_share


def _shards(root):
    return sorted(root.glob("*/shard-*.tar"))


def _samples(shard):
    """WebDataset's own key grouping over one shard: dicts of {"__key__", "json", "wav"|"flac"}."""
    with open(shard, "rb") as f:
        files = wds_tar.tar_file_expander([{"stream": f, "url": str(shard)}])
        yield from wds_tar.group_by_keys(files)


def test_every_language_has_shards_in_the_raw_layout(tiny_corpus):
    assert sorted(p.name for p in tiny_corpus.iterdir() if p.is_dir()) == sorted(LANGUAGES)
    for lang in LANGUAGES:
        assert [p.name for p in sorted((tiny_corpus / lang).glob("*.tar"))] == [
            raw_format.shard_name(0),
            raw_format.shard_name(1),
        ]


def test_shards_open_with_tarfile_and_pair_audio_with_metadata(tiny_corpus):
    for shard in _shards(tiny_corpus):
        with tarfile.open(shard) as tar:
            names = tar.getnames()
        keys = Counter(raw_format.split_member_name(n)[0] for n in names)
        assert all(count == 2 for count in keys.values()), names
        exts = sorted(raw_format.split_member_name(n)[1] for n in names)
        assert exts.count("json") == len(keys)


def test_webdataset_grouping_gives_audio_and_valid_metadata(tiny_corpus):
    n = 0
    for shard in _shards(tiny_corpus):
        lang = shard.parent.name
        script = get_language(lang).script
        for sample in _samples(shard):
            n += 1
            audio_ext = [e for e in raw_format.AUDIO_EXTENSIONS if e in sample]
            assert len(audio_ext) == 1, sample.keys()
            meta = json.loads(sample["json"])
            assert set(raw_format.REQUIRED_METADATA_FIELDS) <= set(meta)
            assert meta["lang"] == lang
            assert meta["text"] == unicodedata.normalize("NFC", meta["text"])
            assert script_share(meta["text"], script) == 1.0
            assert 1 <= len(meta["text"].split()) <= 25
    assert n == 3 * len(LANGUAGES)


def test_audio_decodes_at_its_stated_rate_mono(tiny_corpus):
    rates, formats = Counter(), Counter()
    for shard in _shards(tiny_corpus):
        for sample in _samples(shard):
            ext = "wav" if "wav" in sample else "flac"
            info = sf.info(io.BytesIO(sample[ext]))
            audio, rate = sf.read(io.BytesIO(sample[ext]), dtype="float32")
            assert info.format == ext.upper()
            assert rate == info.samplerate in (8000, 16000, 22050)
            assert audio.ndim == 1 and info.channels == 1
            assert 0.3 < len(audio) / rate < 25.0
            assert abs(audio).max() > 0.01  # real speech, not silence
            rates[rate] += 1
            formats[ext] += 1
    assert len(rates) >= 2 and len(formats) == 2  # the mix is on purpose


def test_plan_is_deterministic_and_seed_dependent(tmp_path):
    words = load_words("hi")
    cfg = DemoCorpusConfig(output_root=tmp_path, utts_per_lang=12, seed=1)
    again = DemoCorpusConfig(output_root=tmp_path / "x", utts_per_lang=12, seed=1, workers=7)
    other = DemoCorpusConfig(output_root=tmp_path, utts_per_lang=12, seed=2)
    assert plan_language("hi", cfg, words) == plan_language("hi", again, words)
    assert plan_language("hi", cfg, words) != plan_language("hi", other, words)


def test_at_least_four_named_speakers_per_language(tmp_path):
    cfg = DemoCorpusConfig(output_root=tmp_path, utts_per_lang=12)
    for lang in LANGUAGES:
        assert len(speakers_for(lang)) >= 4
        plans = plan_language(lang, cfg, ["ab", "cd"])
        assert len({p.speaker.name for p in plans}) >= 4


def test_rebuild_is_idempotent_and_byte_identical(tiny_corpus, tiny_corpus_config):
    before = {p: p.read_bytes() for p in _shards(tiny_corpus)}
    summary = build_demo_corpus(tiny_corpus_config, progress=False)
    assert summary["synthesised_utterances"] == 0
    # A second, independent build with the same seed writes the same bytes.
    fresh = DemoCorpusConfig(
        output_root=tiny_corpus.parent / "rebuilt",
        languages=("hi", "as"),
        utts_per_lang=3,
        shard_size=2,
        seed=tiny_corpus_config.seed,
    )
    build_demo_corpus(fresh, progress=False)
    for p in _shards(fresh.output_root):
        assert p.read_bytes() == before[tiny_corpus / p.parent.name / p.name]


def test_changed_config_removes_stale_shards(tmp_path):
    cfg = DemoCorpusConfig(output_root=tmp_path, languages=("en",), utts_per_lang=3, shard_size=1)
    build_demo_corpus(cfg, progress=False)
    assert len(_shards(tmp_path)) == 3
    smaller = DemoCorpusConfig(
        output_root=tmp_path, languages=("en",), utts_per_lang=3, shard_size=3
    )
    summary = build_demo_corpus(smaller, progress=False)
    assert [p.name for p in _shards(tmp_path)] == [raw_format.shard_name(0)]
    assert summary["synthesised_utterances"] == 3
