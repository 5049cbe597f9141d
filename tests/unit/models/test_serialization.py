"""save_to -> restore_from in a fresh process; pretrained encoder loading; stock NeMo export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest
import torch
from model_support import REPO

RESTORE_SCRIPT = r"""
import json, sys, time
t0 = time.time()
import maya_asr  # the only thing a user imports: it must make our .nemo restorable
t_import = time.time() - t0
nemo_at_import = "nemo" in sys.modules
import numpy as np
from nemo.collections.asr.models import ASRModel, EncDecHybridRNNTCTCBPEModel
path, audio_path = sys.argv[1], sys.argv[2]
audio = np.load(audio_path)
out = {"import_s": t_import, "nemo_loaded_at_import": nemo_at_import}
for cls in (ASRModel, EncDecHybridRNNTCTCBPEModel):
    m = cls.restore_from(path, map_location="cpu")
    out[cls.__name__] = type(m).__module__ + "." + type(m).__name__
out["tdt_hi"] = m.transcribe([audio], language="hi", verbose=False)[0].text
m.change_decoding_strategy(decoder_type="ctc", verbose=False)
out["ctc_none"] = m.transcribe([audio], verbose=False)[0].text
print("RESULT" + json.dumps(out))
"""


def _run(script: str, *args: str, block_maya: bool = False) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    if block_maya:  # a machine without our package: make `import maya_asr` fail
        script = "import sys; sys.modules['maya_asr'] = None\n" + script
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


def _trained_a_little(model):
    """Random-but-nonzero language vectors so language paths differ measurably."""
    with torch.no_grad():
        model.lang_embedding.weight.normal_(0, 1.0)
    return model.eval()


def test_import_maya_asr_is_cheap_and_registers_lazily():
    script = (
        "import sys, maya_asr; print('RESULT' + __import__('json').dumps("
        "{'nemo': any(m == 'nemo' or m.startswith('nemo.') for m in sys.modules)}))"
    )
    assert _run(script) == {"nemo": False}
    script = (
        "import json, maya_asr\nfrom nemo.core.classes.common import ALLOWED_TARGET_PREFIXES as P\n"
        "print('RESULT' + json.dumps({'ok': 'maya_asr.' in P}))"
    )
    assert _run(script) == {"ok": True}
    script = (  # NeMo imported first: registration happens at `import maya_asr` itself
        "import json\nfrom nemo.core.classes.common import ALLOWED_TARGET_PREFIXES as P\n"
        "import maya_asr\nprint('RESULT' + json.dumps({'ok': P.count('maya_asr.') == 1}))"
    )
    assert _run(script) == {"ok": True}


@pytest.mark.slow
def test_restore_in_a_fresh_process(smoke_model, tmp_path):
    import numpy as np

    model = _trained_a_little(smoke_model)
    path = tmp_path / "smoke.nemo"
    model.save_to(str(path))
    audio = (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32)
    np.save(tmp_path / "a.npy", audio)
    expected_tdt = model.transcribe([audio], language="hi", verbose=False)[0].text
    model.change_decoding_strategy(decoder_type="ctc", verbose=False)
    expected_ctc = model.transcribe([audio], verbose=False)[0].text

    out = _run(RESTORE_SCRIPT, str(path), str(tmp_path / "a.npy"))
    ours = "maya_asr.models.model.MayaHybridTDTCTCModel"
    assert out["ASRModel"] == ours
    assert out["EncDecHybridRNNTCTCBPEModel"] == ours
    assert out["tdt_hi"] == expected_tdt
    assert out["ctc_none"] == expected_ctc
    assert out["nemo_loaded_at_import"] is False


def _save_encoder(model, path, transform=lambda sd: sd):
    torch.save(transform(dict(model.encoder.state_dict())), path)


def test_load_pretrained_encoder_from_pt_and_nemo(smoke_model, en_tokenizer_dir, tmp_path):
    from model_support import smoke_config

    from maya_asr.models import MayaHybridTDTCTCModel, load_pretrained_encoder
    from maya_asr.models.encoder_loading import save_encoder_state_dict

    torch.manual_seed(5)
    source = MayaHybridTDTCTCModel(smoke_config(en_tokenizer_dir))
    pt = tmp_path / "enc.pt"
    _save_encoder(source, pt, lambda sd: {f"encoder.{k}": v for k, v in sd.items()})
    report = load_pretrained_encoder(smoke_model, pt)
    assert report.ok and len(report.loaded) == len(source.encoder.state_dict())
    for k, v in source.encoder.state_dict().items():
        assert torch.equal(smoke_model.encoder.state_dict()[k], v)

    nemo = tmp_path / "source.nemo"
    source.save_to(str(nemo))
    assert save_encoder_state_dict(nemo, tmp_path / "from_nemo.pt") == len(report.loaded)
    assert load_pretrained_encoder(smoke_model, nemo).ok


def test_load_pretrained_encoder_reports_mismatches(smoke_model, en_tokenizer_dir, tmp_path):
    from model_support import smoke_config

    from maya_asr.models import MayaHybridTDTCTCModel, load_pretrained_encoder

    bigger = MayaHybridTDTCTCModel(
        smoke_config(en_tokenizer_dir, **{"encoder.n_layers": 3, "encoder.d_model": 96})
    )
    pt = tmp_path / "bigger.pt"
    _save_encoder(bigger, pt)
    before = {k: v.clone() for k, v in smoke_model.encoder.state_dict().items()}
    with pytest.raises(ValueError, match=r"does not match model\.encoder") as err:
        load_pretrained_encoder(smoke_model, pt)
    assert "unexpected in the file: layers.2." in str(err.value)
    assert "shape mismatch" in str(err.value)
    for k, v in smoke_model.encoder.state_dict().items():
        assert torch.equal(v, before[k])  # strict failure loads nothing
    report = load_pretrained_encoder(smoke_model, pt, strict=False)
    assert report.unexpected and report.mismatched and not report.ok
    assert set(report.loaded).isdisjoint(k for k, _, _ in report.mismatched)
    with pytest.raises(FileNotFoundError, match=r"extract_encoder\.py"):
        load_pretrained_encoder(smoke_model, tmp_path / "missing.pt")


STOCK_SCRIPT = r"""
import json, sys
sys.modules["maya_asr"] = None  # a machine without our package
import numpy as np, torch
from nemo.collections.asr.models import ASRModel
m = ASRModel.restore_from(sys.argv[1], map_location="cpu").eval()
audio = torch.from_numpy(np.load(sys.argv[2]))[None]
with torch.no_grad():
    enc, enc_len = m(input_signal=audio, input_signal_length=torch.tensor([audio.shape[1]]))
    ctc = m.ctc_decoder(encoder_output=enc)
    proj = m.joint.project_encoder(enc.transpose(1, 2))
torch.save({"ctc": ctc.clone(), "proj": proj.clone()}, sys.argv[3])  # no NeuralType attrs
print("RESULT" + json.dumps({"class": type(m).__name__}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("language", ["hi", None])
def test_stock_export_matches_our_outputs(smoke_model, tmp_path, language):
    import numpy as np

    from maya_asr.models import export_stock_nemo

    model = _trained_a_little(smoke_model)
    out = export_stock_nemo(model, language, tmp_path / "stock.nemo")
    with tarfile.open(out) as tar:
        cfg_member = next(m for m in tar.getmembers() if m.name.endswith("model_config.yaml"))
        cfg_text = tar.extractfile(cfg_member).read().decode()
    assert "maya" not in cfg_text.lower()
    audio = (np.random.default_rng(1).standard_normal(16000) * 0.1).astype(np.float32)
    np.save(tmp_path / "a.npy", audio)
    result = _run(STOCK_SCRIPT, str(out), str(tmp_path / "a.npy"), str(tmp_path / "o.pt"))
    assert result["class"] == "EncDecHybridRNNTCTCBPEModel"
    stock = torch.load(tmp_path / "o.pt")
    ids = model.language_ids(language, 1) if language else None
    with torch.no_grad(), model.languages_of_batch(ids):
        x = torch.from_numpy(audio)[None]
        enc, _ = model(input_signal=x, input_signal_length=torch.tensor([x.shape[1]]))
        ctc = model.ctc_decoder(encoder_output=enc)
        proj = model.joint.project_encoder(enc.transpose(1, 2))
    torch.testing.assert_close(stock["ctc"], ctc, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stock["proj"], proj, rtol=1e-5, atol=1e-5)
