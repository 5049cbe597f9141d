"""Every kind of ``.nemo`` we write works with NeMo's own API in a fresh process.

The model is trained for two steps by the real training code (the ``tiny_trained_run``
fixture: ``maya_asr.training.run.train`` on the tiny corpus), which writes ``model_init.nemo``
and ``model.nemo``; the stock export writes NeMo-only copies. A fresh process
(``scripts/nemo_api_client.py``) then does what a user does first: the README's Python example
on real wav files and a manifest, timestamps, both heads, and the calls of NeMo's
``transcribe_speech.py`` / ``speech_to_text_eval.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest
import soundfile as sf
import yaml
from train_support import REPO

pytestmark = pytest.mark.slow

CLIENT = REPO / "scripts" / "nemo_api_client.py"
MAYA_CLASS = "maya_asr.models.model.MayaHybridTDTCTCModel"
STOCK_CLASS = "nemo.collections.asr.models.hybrid_rnnt_ctc_bpe_models.EncDecHybridRNNTCTCBPEModel"


@pytest.fixture(scope="module")
def written(tiny_trained_run, tiny_artifacts, tmp_path_factory):
    """{"ours", "init", "stock_free", "stock_hi"} -> .nemo paths, plus the audio to transcribe."""
    from maya_asr.inference.inputs import read_audio, read_manifest
    from maya_asr.models import MayaHybridTDTCTCModel, export_stock_nemo

    out = tmp_path_factory.mktemp("nemo_api")
    ours = tiny_trained_run["model"]
    model = MayaHybridTDTCTCModel.restore_from(str(ours), map_location="cpu")
    paths = {
        "ours": ours,
        "init": tiny_trained_run["init"],
        "stock_free": export_stock_nemo(model, None, out / "stock_free.nemo"),
        "stock_hi": export_stock_nemo(model, "hi", out / "stock_hi.nemo"),
    }
    # Real speech: three espeak-ng utterances of the tiny corpus, written as wav files.
    rows, wavs = [], []
    for i, item in enumerate(read_manifest(tiny_artifacts["val_manifest"])[:3]):
        wav = out / f"utt{i}.wav"
        audio = read_audio(item, 16000)
        sf.write(wav, audio, 16000)
        wavs.append(str(wav))
        rows.append(
            {"audio_filepath": str(wav), "duration": len(audio) / 16000, "text": item.text,
             "lang": item.language}
        )  # fmt: skip
    manifest = out / "clips.jsonl"
    manifest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return {"nemo": paths, "manifest": str(manifest), "wavs": wavs, "cfg": tiny_trained_run["cfg"]}


def nemo_config(path) -> dict:
    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("model_config.yaml"))
        return yaml.safe_load(tar.extractfile(member).read())


def run_client(model_path, manifest, wavs, maya: bool) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    args = [sys.executable, str(CLIENT), str(model_path), manifest, *wavs]
    proc = subprocess.run(
        [*args, "--maya"] if maya else args, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    print(proc.stdout)  # the transcripts, shown with pytest -s
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.mark.parametrize("kind", ["ours", "init", "stock_free", "stock_hi"])
def test_every_nemo_we_write_carries_what_nemo_clients_read(written, kind):
    cfg = nemo_config(written["nemo"][kind])
    data = written["cfg"].data
    assert cfg["target"] == (MAYA_CLASS if kind in ("ours", "init") else STOCK_CLASS)
    assert cfg["tokenizer"]["type"] == "bpe" and cfg["tokenizer"]["model_path"]
    assert cfg["decoding"]["model_type"] == "tdt" and cfg["aux_ctc"]["decoding"]["strategy"]
    for key in ("train_ds", "validation_ds", "test_ds"):
        assert cfg[key]["use_start_end_token"] is False, key
        assert cfg[key]["sample_rate"] == 16000, key
    # our loader's settings, recorded where NeMo has the same notion
    assert cfg["train_ds"]["index_parquet"] == data.train_parquet
    assert cfg["train_ds"]["batch_size"] == data.max_batch_size == 4
    assert cfg["train_ds"]["batch_duration"] == data.max_batch_dur == 20.0
    assert cfg["train_ds"]["max_duration"] == data.bucket_edges[-1]
    assert cfg["validation_ds"]["manifest_filepath"] == data.val_manifest
    assert cfg["validation_ds"]["batch_size"] == data.val_batch_size


@pytest.fixture(scope="module")
def ours_api(written) -> dict:
    """What the fresh process got from our model.nemo (after ``import maya_asr``)."""
    return run_client(written["nemo"]["ours"], written["manifest"], written["wavs"], maya=True)


def test_our_nemo_works_with_the_nemo_api_after_import_maya_asr(written, ours_api):
    got = ours_api
    assert got["class"] == got["script_class"] == MAYA_CLASS
    assert not got["maya_imported_before_scripts"]  # NeMo's scripts need no line of ours
    n = len(written["wavs"])
    assert len(got["paths"]) == n and all(isinstance(t, str) for t in got["paths"])
    # the same model and head give the same text whichever way the audio is named
    assert got["manifest"] == got["rnnt_again"] == got["script_rnnt"] == got["paths"]
    assert got["script_ctc"] == got["ctc"] and len(got["ctc"]) == n
    assert "word" in got["timestamp_keys"] and len(got["word_times"]) == n
    assert got["script_rnnt_cer"] is not None and got["script_ctc_cer"] is not None


def test_stock_export_works_with_the_nemo_api_without_maya_asr(written, ours_api):
    ours = ours_api
    stock = run_client(
        written["nemo"]["stock_free"], written["manifest"], written["wavs"], maya=False
    )
    assert stock["class"] == stock["script_class"] == STOCK_CLASS
    # language-free export == our model without a language, head by head
    assert stock["paths"] == ours["paths"] and stock["ctc"] == ours["ctc"]
    assert stock["script_rnnt"] == stock["paths"] and stock["script_ctc"] == stock["ctc"]
    assert "word" in stock["timestamp_keys"]
