"""Evaluation of both heads side by side, and its markdown / JSON / PNG reports."""

from __future__ import annotations

import json

import pytest

from maya_asr.inference.error_rates import ALL
from maya_asr.inference.evaluation import (
    check_references,
    evaluate_model,
    model_labels,
    write_predictions,
)
from maya_asr.inference.inputs import AudioInput, InputError, read_manifest
from maya_asr.inference.report import language_order, markdown_report, write_reports
from maya_asr.languages import LANGUAGES
from maya_asr.text.scoring import ScoringPolicy


@pytest.fixture(scope="module")
def results(tiny_model, tiny_nemo, corpus_manifest):
    items = read_manifest(corpus_manifest)
    return evaluate_model(str(tiny_nemo), items, model=tiny_model, batch_size=8, progress=False)


def test_both_heads_are_scored_per_language(results):
    assert [r.name for r in results] == ["tiny/tdt", "tiny/ctc"]
    for r in results:
        assert next(iter(r.scores)) == ALL and set(r.scores) == {ALL, *LANGUAGES}
        assert r.scores[ALL].utterances == 36
        assert all(r.scores[lang].utterances == 3 for lang in LANGUAGES)
        # overall edit counts are the sums of the per-language ones
        words = [r.scores[lang].words for lang in LANGUAGES]
        assert r.scores[ALL].words.errors == sum(w.errors for w in words)
        assert r.scores[ALL].words.reference_length == sum(w.reference_length for w in words)
        assert r.stats.rtfx > 0 and not r.language_given
        assert len(r.transcripts) == 36


def test_reports_hold_every_system_and_language(results, tmp_path):
    paths = write_reports(results, tmp_path, ScoringPolicy(), "demo.jsonl")
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "WER tiny/tdt" in md and "CER tiny/ctc" in md and "RTFx" in md
    assert all(f"| {lang} | 3 |" in md for lang in LANGUAGES)
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert [s["name"] for s in doc["systems"]] == ["tiny/tdt", "tiny/ctc"]
    assert doc["scoring_policy"]["nukta"] == "fold"
    tdt = doc["systems"][0]
    assert tdt["scores"]["all"]["wer"] == results[0].scores[ALL].wer
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    files = write_predictions(results, tmp_path / "predictions")
    assert [p.name for p in files] == ["tiny.tdt.jsonl", "tiny.ctc.jsonl"]
    rows = [json.loads(line) for line in files[1].read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 36 and all(r["decoder"] == "ctc" and "pred_text" in r for r in rows)


def test_language_order_follows_model_ids_then_all(results):
    assert language_order(results) == [*LANGUAGES, ALL]
    assert markdown_report(results).count("\n| ") >= len(LANGUAGES) + 1


def test_rows_without_reference_are_refused():
    items = [AudioInput("a.wav", "m.jsonl:1", row={"audio_filepath": "a.wav"})]
    with pytest.raises(InputError, match=r"m\.jsonl:1"):
        check_references(items)


def test_model_labels_are_unique():
    assert model_labels(["a/m.nemo", "b/x.nemo"]) == ["m", "x"]
    assert model_labels(["a/m.nemo", "b/m.nemo"]) == ["m#1", "m#2"]


def test_unknown_head_is_refused(tiny_model, tiny_nemo, corpus_manifest):
    items = read_manifest(corpus_manifest)
    with pytest.raises(ValueError, match="has no rnnt head"):
        evaluate_model(str(tiny_nemo), items, model=tiny_model, decoders=["rnnt"])


@pytest.mark.slow
def test_a_model_that_takes_a_language_is_scored_with_and_without_it(
    tiny_trained_run, tiny_artifacts, tmp_path
):
    items = read_manifest(tiny_artifacts["val_manifest"])
    model, init = str(tiny_trained_run["model"]), str(tiny_trained_run["init"])
    results = evaluate_model(model, items, batch_size=8, progress=False)
    assert [r.name for r in results] == [
        "model/tdt",
        "model/tdt/free",
        "model/ctc",
        "model/ctc/free",
    ]
    assert [r.language_given for r in results] == [True, False, True, False]
    assert all(r.takes_language for r in results)
    given_only = evaluate_model(init, items, decoders=["ctc"], language="auto", progress=False)
    assert [r.name for r in given_only] == ["model_init/ctc"]
    free_only = evaluate_model(init, items, decoders=["ctc"], language="none", progress=False)
    assert [r.name for r in free_only] == ["model_init/ctc/free"]
    assert not free_only[0].language_given

    results += given_only + free_only
    paths = write_reports(results, tmp_path, ScoringPolicy(), "val.jsonl")
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "| CER model/tdt given | CER model/tdt free | free/given |" in md
    assert "CER model_init/ctc given | CER model_init/ctc free" in md  # paired across calls
    gap = md[md.index("free/given |") :]
    all_row = next(ln for ln in gap.splitlines() if ln.startswith("| **all** |"))
    tdt, tdt_free = results[0].scores[ALL].cer, results[1].scores[ALL].cer
    assert f"| {100 * tdt:.2f} | {100 * tdt_free:.2f} |" in all_row
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert [s["language_given"] for s in doc["systems"][:2]] == [True, False]
    files = write_predictions(results, tmp_path / "predictions")
    assert [p.name for p in files[:2]] == ["model.tdt.jsonl", "model.tdt.free.jsonl"]
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
