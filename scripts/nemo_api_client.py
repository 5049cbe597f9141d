"""What a NeMo user does first with a ``.nemo``, in a fresh process (check_nemo_api.py, tests).

Usage: python scripts/nemo_api_client.py MODEL.nemo MANIFEST.jsonl WAV [WAV ...] [--maya]

The calls are those of NeMo's ``examples/asr/transcribe_speech.py`` (and
``speech_to_text_eval.py``, which runs it and scores with ``cal_write_wer``), in their order and
with nothing of ours imported, then the README's Python example. ``--maya``: our model; the
README part starts with ``import maya_asr``, the one line it adds. Without ``--maya`` nothing of
ours is importable (a stock export must restore on a machine without maya_asr). Prints every
transcript, then one ``RESULT {json}`` line for the test.
"""

import json
import sys


def texts(hyps) -> list[str]:
    if isinstance(hyps, tuple):  # (best, n-best) of older RNNT models
        hyps = hyps[0]
    return [h.text if hasattr(h, "text") else h for h in hyps]


def readme_calls(model_path: str, manifest: str, wavs: list[str], out: dict) -> None:
    import nemo.collections.asr as nemo_asr

    def show(label, hyps):
        out[label] = texts(hyps)
        for i, text in enumerate(out[label]):
            print(f"{label}[{i}]: {text!r}")

    model = nemo_asr.models.ASRModel.restore_from(model_path)
    hyps = model.transcribe(wavs, batch_size=2)
    show("paths", hyps)
    out["class"] = f"{type(model).__module__}.{type(model).__name__}"
    show("manifest", model.transcribe(manifest, batch_size=2))
    if hasattr(model.encoder, "subsampling_factor"):
        timed = model.transcribe(wavs, batch_size=2, timestamps=True)
        timed = timed[0] if isinstance(timed, tuple) else timed
        out["timestamp_keys"] = sorted(timed[0].timestamp)
        out["word_times"] = [
            [(w["word"], w["start"], w["end"]) for w in h.timestamp.get("word", [])] for h in timed
        ]
    else:  # NeMo's timestamps read encoder.subsampling_factor, which its RNNEncoder lacks
        encoder = type(model.encoder).__name__
        out["timestamps_skipped"] = f"NeMo's {encoder} has no subsampling_factor"
        print(f"timestamps: skipped ({out['timestamps_skipped']}; a NeMo limitation)")
    model.change_decoding_strategy(decoder_type="ctc")
    show("ctc", model.transcribe(wavs, batch_size=2))
    model.change_decoding_strategy(decoder_type="rnnt")
    show("rnnt_again", model.transcribe(wavs, batch_size=2))


def transcribe_speech_calls(model_path: str, manifest: str, out: dict) -> None:
    import lightning.pytorch as pl
    import torch
    from nemo.collections.asr.models import EncDecHybridRNNTCTCModel
    from nemo.collections.asr.parts.submodules.ctc_decoding import CTCDecodingConfig
    from nemo.collections.asr.parts.submodules.rnnt_decoding import RNNTDecodingConfig
    from nemo.collections.asr.parts.utils.eval_utils import cal_write_wer
    from nemo.collections.asr.parts.utils.transcribe_utils import (
        prepare_audio_data,
        restore_transcription_order,
        setup_model,
    )
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {"model_path": model_path, "pretrained_name": None, "audio_dir": None,
         "append_pred": False, "dataset_manifest": manifest, "presort_manifest": True}
    )  # fmt: skip
    asr_model, _ = setup_model(cfg, torch.device("cpu"))  # restore_from via cfg.target
    asr_model.set_trainer(pl.Trainer(devices=1, accelerator="cpu", logger=False))
    asr_model = asr_model.eval()
    out["script_class"] = f"{type(asr_model).__module__}.{type(asr_model).__name__}"
    assert isinstance(asr_model, EncDecHybridRNNTCTCModel), out["script_class"]
    for decoder_type, schema in (("ctc", CTCDecodingConfig), ("rnnt", RNNTDecodingConfig)):
        decoding_cfg = OmegaConf.structured(schema)
        asr_model.change_decoding_strategy(decoding_cfg, decoder_type=decoder_type)
        filepaths, sorted_manifest_path = prepare_audio_data(cfg)
        filepaths = sorted_manifest_path if sorted_manifest_path is not None else filepaths
        with torch.no_grad():
            override_cfg = asr_model.get_transcribe_config()
            override_cfg.batch_size = 2
            override_cfg.num_workers = 0
            override_cfg.return_hypotheses = False
            override_cfg.channel_selector = None
            override_cfg.augmentor = None
            override_cfg.text_field = "text"
            override_cfg.lang_field = "lang"
            override_cfg.timestamps = False
            hyps = asr_model.transcribe(
                audio=filepaths, override_config=override_cfg, timestamps=False
            )
        hyps = restore_transcription_order(manifest, texts(hyps))
        label = f"script_{decoder_type}"
        out[label] = hyps
        for i, text in enumerate(hyps):
            print(f"{label}[{i}]: {text!r}")
        pred_manifest = f"{manifest}.{decoder_type}.pred.jsonl"
        with open(manifest, encoding="utf-8") as src, open(pred_manifest, "w") as dst:
            for line, text in zip(src, hyps, strict=True):
                dst.write(json.dumps({**json.loads(line), "pred_text": text}) + "\n")
        _, totals, _ = cal_write_wer(pred_manifest=pred_manifest, use_cer=True)
        out[f"{label}_cer"] = totals.get("cer")


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--maya"]
    if "-h" in args or "--help" in args or len(args) < 3:
        print(__doc__)
        raise SystemExit(0 if args else 2)
    maya = "--maya" in sys.argv
    if not maya:
        sys.modules["maya_asr"] = None  # a machine without our package
    model_path, manifest, wavs = args[0], args[1], args[2:]
    out: dict = {"maya_imported_before_scripts": sys.modules.get("maya_asr") is not None}
    # NeMo's scripts first, unmodified: their setup_model imports the class named by the
    # config's target, so an installed maya_asr needs no import line there.
    transcribe_speech_calls(model_path, manifest, out)
    if maya:
        import maya_asr  # noqa: F401  the one line our README adds for ASRModel.restore_from
    readme_calls(model_path, manifest, wavs, out)
    print("RESULT " + json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
