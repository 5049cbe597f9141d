"""The transcriber on a tiny random hybrid TDT+CTC model: both heads, order, timestamps, long
audio decoded whole with local attention, languages, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from maya_asr.inference.inputs import AudioInput, InputError, files_to_inputs, read_manifest
from maya_asr.inference.transcriber import (
    RunStats,
    TranscribeOptions,
    accepts_language,
    frame_shift_s,
    load_model,
    model_heads,
    transcribe_inputs,
    write_transcripts,
)


@pytest.fixture(scope="module")
def items(corpus_manifest):
    return read_manifest(corpus_manifest)


@pytest.fixture(scope="module")
def long_clip(items, tmp_path_factory):
    """> 60 s of demo speech, concatenated, written as 44.1 kHz stereo."""
    from maya_asr.inference.inputs import read_audio

    parts, total = [], 0
    while total < 65 * 16000:
        for item in items:
            parts.append(read_audio(item, 16000))
            total += len(parts[-1])
    audio = np.concatenate(parts)
    path = tmp_path_factory.mktemp("long") / "long.wav"
    import soxr

    stereo = np.stack([audio, audio], axis=1)
    sf.write(path, soxr.resample(stereo, 16000, 44100), 44100)
    return path, len(audio) / 16000


@pytest.mark.parametrize("decoder", ["tdt", "ctc"])
def test_every_input_is_transcribed_in_input_order(tiny_model, items, decoder):
    stats = RunStats()
    options = TranscribeOptions(decoder=decoder, batch_size=5, timestamps=True)
    out = list(transcribe_inputs(tiny_model, items, options, stats=stats, progress=False))
    assert [t.item for t in out] == items
    assert all(isinstance(t.text, str) and t.decoder == decoder for t in out)
    assert stats.utterances == 36 and stats.bad == [] and stats.rtfx > 0
    shift = frame_shift_s(tiny_model)
    for t in out:
        # the whole utterance was encoded: one frame per 80 ms (short clips padded to 1 s)
        assert t.frames == pytest.approx(max(t.duration, 1.0) / shift, abs=2)
        for word in t.words:  # a TDT token may claim up to 4 frames past the last one
            assert 0 <= word["start"] <= word["end"] <= (t.frames + 4) * shift + 1e-6


def test_hybrid_model_has_both_heads_and_no_language(tiny_model):
    assert model_heads(tiny_model) == ("tdt", "ctc")
    assert not accepts_language(tiny_model)


def test_language_for_a_model_without_one_is_refused(tiny_model, items):
    options = TranscribeOptions(language="hi")
    with pytest.raises(ValueError, match="takes no language; drop --language"):
        list(transcribe_inputs(tiny_model, items[:1], options, progress=False))


class LanguageModel:
    """A model whose transcribe takes ``language=`` (as Maya models' does), recording calls."""

    def __init__(self, model):
        self._model = model
        self.calls: list[tuple[int, str | None]] = []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def transcribe(self, audio, language=None, **kwargs):
        self.calls.append((len(audio), language))
        return self._model.transcribe(audio, **kwargs)


def test_each_rows_language_reaches_the_model(tiny_model, items):
    model = LanguageModel(tiny_model)
    assert accepts_language(model)
    options = TranscribeOptions(decoder="ctc", language_from_rows=True, batch_size=4)
    out = list(transcribe_inputs(model, items, options, progress=False))
    assert [t.language for t in out] == [i.language for i in items]
    # one language per model call; every utterance passed exactly once
    per_language: dict[str, int] = {}
    for n, lang in model.calls:
        per_language[lang] = per_language.get(lang, 0) + n
    assert per_language == {lang: 3 for lang in {i.language for i in items}}


def test_unknown_row_language_names_the_row(tiny_model, items):
    first = items[0]
    bad = AudioInput(first.path, "m.jsonl:7", first.offset, first.nbytes, row={"lang": "xx"})
    with pytest.raises(InputError, match=r"m\.jsonl:7: unknown language 'xx'"):
        list(
            transcribe_inputs(
                LanguageModel(tiny_model), [bad], TranscribeOptions(language_from_rows=True)
            )
        )


@pytest.mark.parametrize("decoder", ["tdt", "ctc"])
def test_long_audio_is_decoded_whole_with_local_attention(tiny_model, long_clip, decoder):
    path, seconds = long_clip
    assert seconds > 60
    (item,) = files_to_inputs([path])
    options = TranscribeOptions(decoder=decoder, long_audio_s=40, timestamps=True)
    stats = RunStats()
    (t,) = transcribe_inputs(tiny_model, [item], options, stats=stats, progress=False)
    assert t.local_attention and stats.local_attention_utterances == 1
    assert t.duration == pytest.approx(seconds, abs=0.01)
    assert t.frames == pytest.approx(seconds / frame_shift_s(tiny_model), abs=2)
    # full attention is back afterwards
    assert tiny_model.encoder.self_attention_model == "rel_pos"
    assert tiny_model.cfg.encoder.self_attention_model == "rel_pos"
    # and it decodes the same frames as a full-attention run of the same clip
    full = TranscribeOptions(decoder=decoder, long_audio_s=1000)
    (t_full,) = transcribe_inputs(tiny_model, [item], full, progress=False)
    assert not t_full.local_attention and t_full.frames == t.frames


def test_local_attention_fills_config_fields_nemo_needs(tiny_model):
    from omegaconf import open_dict

    from maya_asr.inference.transcriber import AttentionSwitch

    encoder = tiny_model.encoder
    with open_dict(encoder._cfg):
        del encoder._cfg["pos_emb_max_len"]  # older configs leave it to the default
    switch = AttentionSwitch(tiny_model, (64, 64))
    assert switch.set(True) and encoder.self_attention_model == "rel_pos_local_attn"
    assert encoder.att_context_size == [64, 64]
    switch.restore()
    assert encoder.self_attention_model == "rel_pos" and encoder.att_context_size == [-1, -1]
    assert encoder._cfg.pos_emb_max_len == 5000


def test_undecodable_inputs_are_skipped_counted_and_capped(tiny_model, items, tmp_path):
    bad_file = tmp_path / "bad.wav"
    bad_file.write_bytes(b"garbage")
    (bad,) = files_to_inputs([bad_file])
    stats = RunStats()
    out = list(
        transcribe_inputs(tiny_model, [items[0], bad, items[1]], TranscribeOptions(), stats=stats)
    )
    assert [t.item for t in out] == [items[0], items[1]]
    assert len(stats.bad) == 1 and "bad.wav" in stats.bad[0]
    with pytest.raises(InputError, match="limit --max-bad 0"):
        list(transcribe_inputs(tiny_model, [bad], TranscribeOptions(max_bad=0), progress=False))


def test_output_rows_keep_the_input_row(tiny_model, items, tmp_path):
    out = tmp_path / "out.jsonl"
    transcripts = transcribe_inputs(tiny_model, items[:3], TranscribeOptions(), progress=False)
    assert write_transcripts(transcripts, out) == 3
    import json

    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    for row, item in zip(rows, items[:3], strict=True):
        assert row["tar_path"] == item.row["tar_path"] and row["text"] == item.text
        assert set(row) >= {"pred_text", "decoder", "duration"} and row["decoder"] == "tdt"
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_batches_are_one_language_similar_lengths_and_capped():
    from maya_asr.inference.transcriber import plan_batches

    entries = [("hi", 10), ("ta", 50), ("hi", 30), ("hi", 20), ("ta", 40), ("hi", 100)]
    batches = plan_batches(entries, batch_size=2, max_batch_samples=10**6)
    assert batches == [[5, 2], [3, 0], [1, 4]]  # longest first, per language
    # padded size cap: 100 alone; then 30+20 (2 x 30 = 60 <= 60); then 10
    assert plan_batches(entries[:4] + entries[5:], 8, 60) == [[4], [2, 3], [0], [1]]
    assert sorted(i for b in plan_batches(entries, 3, 70) for i in b) == list(range(6))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"decoder": "rnnt"}, "decoder must be one of"),
        ({"language": "xx"}, "unknown language"),
        ({"language": "hi", "language_from_rows": True}, "not both"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_options_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TranscribeOptions(**kwargs)


@pytest.mark.requires_cuda
@pytest.mark.parametrize("decoder", ["tdt", "ctc"])
def test_transcribes_on_the_gpu(tiny_nemo, items, decoder):
    model = load_model(str(tiny_nemo), device="cuda")
    assert next(model.parameters()).is_cuda
    options = TranscribeOptions(decoder=decoder, batch_size=8, timestamps=True)
    out = list(transcribe_inputs(model, items, options, progress=False))
    assert [t.item for t in out] == items and all(isinstance(t.text, str) for t in out)


def test_cuda_without_a_gpu_is_refused(tiny_nemo):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="use --device cpu"):
        load_model(str(tiny_nemo), device="cuda")
