"""Tokenizer: balanced sampling, quality filter, full script coverage, pinned ids, NeMo loads it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from maya_asr.data.config import TokenizerConfig, load_data_config
from maya_asr.data.synthetic import SAMPLE_TEXT
from maya_asr.data.tokenizer import build_tokenizer, sampling_quotas, script_alphabet
from maya_asr.languages import LANGUAGES

REPO = Path(__file__).parents[2]
DEMO = load_data_config(REPO / "configs" / "data" / "demo.yaml")
CFG = replace(DEMO, tokenizer=replace(DEMO.tokenizer, min_char_count=3, min_chars=2))


def test_temperature_moves_shares_toward_uniform():
    chars, lines = {"hi": 90_000, "as": 10_000}, {"hi": 900, "as": 100}
    natural = sampling_quotas(chars, lines, TokenizerConfig(temperature=1.0))
    uniform = sampling_quotas(chars, lines, TokenizerConfig(temperature=0.0))
    half = sampling_quotas(chars, lines, TokenizerConfig(temperature=0.5))
    assert natural == {"hi": 900, "as": 100}
    assert uniform == {"hi": 500, "as": 500}  # "as" is repeated five times
    assert half == {"hi": 750, "as": 250}  # 0.75 : 0.25 from 300 : 100
    capped = sampling_quotas(chars, lines, TokenizerConfig(temperature=1.0, max_sentences=100))
    assert capped == {"hi": 90, "as": 10}


def test_alphabet_covers_sample_text_of_every_language():
    for lang in LANGUAGES:
        alphabet = set(script_alphabet(CFG.text[lang]))
        assert set(SAMPLE_TEXT[lang].replace(" ", "")) <= alphabet, lang
    assert "A" not in script_alphabet(CFG.text["en"])  # English is lower-cased


def _train_manifest(path: Path, extra: list[tuple[str, str]] = ()) -> Path:
    rows = []
    for lang, text in SAMPLE_TEXT.items():
        words = text.split()
        for i in range(20):
            rows.append({"lang": lang, "text": " ".join(words[i % 3 :]), "duration": 2.0})
    rows += [{"lang": lang, "text": t, "duration": 2.0} for lang, t in extra]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tok")
    junk = [("hi", "नमस्ते ☃ दुनिया"), ("en", "x")]  # rare junk character; too short
    manifest = _train_manifest(tmp / "train.jsonl", junk)
    out = tmp / "tokenizers" / "unit_bpe"
    info = build_tokenizer(manifest, out, CFG, val_manifest=manifest, vocab_size=900)
    return out, info


def test_layout_ids_and_report(built):
    out, info = built
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "tokenizer.model",
            "tokenizer.vocab",
            "vocab.txt",
            "build_info.json",
            "tokenizer_report.json",
        ]
    )
    assert (info["unk_id"], info["bos_id"], info["eos_id"], info["pad_id"]) == (0, -1, -1, -1)
    vocab = (out / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(vocab) == info["vocab_size"] - 1  # every piece but <unk>
    assert info["junk_chars"] == ["U+2603"]
    assert info["dropped"] == {"hi:junk_char": 1, "en:quality": 1}
    report = json.loads((out / "tokenizer_report.json").read_text())
    assert set(report["train"]) == set(LANGUAGES)
    assert all(0 < r["tokens_per_char"] <= 1.0 for r in report["train"].values())


def test_every_script_character_is_a_known_piece(built):
    import sentencepiece as spm

    out, _ = built
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    for lang in LANGUAGES:
        for ch in script_alphabet(CFG.text[lang]):
            ids = sp.encode(ch)
            assert sp.unk_id() not in ids, (lang, f"U+{ord(ch):04X}")
            assert sp.decode(ids) == ch
    assert sp.unk_id() in sp.encode("☃")  # the junk character really was kept out


def test_vocab_smaller_than_the_alphabet_is_refused(tmp_path):
    manifest = _train_manifest(tmp_path / "train.jsonl")
    with pytest.raises(ValueError, match="use at least"):
        build_tokenizer(manifest, tmp_path / "tok", CFG, vocab_size=200)
    assert not (tmp_path / "tok").exists()


@pytest.mark.slow
def test_nemo_loads_the_directory_as_a_bpe_tokenizer(built):
    from nemo.collections.asr.parts.mixins.mixins import ASRBPEMixin
    from nemo.collections.common.tokenizers import SentencePieceTokenizer
    from omegaconf import OmegaConf

    out, info = built

    class Holder(ASRBPEMixin):
        def register_artifact(self, config_path, src, verify_src_exists=True):
            return src

    holder = Holder()
    holder._setup_tokenizer(OmegaConf.create({"dir": str(out), "type": "bpe"}))
    tok = holder.tokenizer
    assert isinstance(tok, SentencePieceTokenizer)
    assert tok.vocab_size == info["vocab_size"]
    for lang in LANGUAGES:
        assert tok.ids_to_text(tok.text_to_ids(SAMPLE_TEXT[lang])) == SAMPLE_TEXT[lang]
    assert holder.vocab_path.endswith("vocab.txt") and holder.spe_vocab_path.endswith(
        "tokenizer.vocab"
    )


def test_ctc_load_counts_repeats_against_80ms_frames():
    from maya_asr.data.tokenizer import ctc_load

    assert ctc_load([5, 6, 7], 0.8) == 0.3  # 3 tokens over 10 frames
    assert ctc_load([5, 5, 5], 0.8) == 0.5  # each repeat needs a blank between
    assert ctc_load([1] * 20, 0.8) > 1.0  # no valid CTC alignment


def test_report_has_ctc_load(built):
    out, _ = built
    report = json.loads((out / "tokenizer_report.json").read_text())
    row = report["train"]["hi"]
    assert 0 < row["ctc_load_p99"] <= row["ctc_load_max"]
