#!/usr/bin/env python3
"""Check that .nemo files work with NeMo's own API, as a user would first try them.

Usage:
    python scripts/check_nemo_api.py --model experiments/smoke/model.nemo \\
        --model experiments/smoke/model_stock.nemo --manifest experiments/smoke/clips.jsonl

The first --count rows of --manifest (ours or NeMo's) are written as wav files with a NeMo
manifest beside them under --work-dir. Then, for each model, a fresh Python process
(scripts/nemo_api_client.py) runs NeMo's examples/asr/transcribe_speech.py calls (restore by the
config's target, change_decoding_strategy with decoder_type ctc and rnnt, transcribe a manifest
with override_config, cal_write_wer) and the README's Python example (ASRModel.restore_from,
transcribe of paths and of a manifest, timestamps, CTC and back). A Maya model gets
`import maya_asr` before the README part; a stock export gets nothing of ours (maya_asr is made
unimportable). Prints every transcript and one summary line per model; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIENT = REPO / "scripts" / "nemo_api_client.py"


def nemo_target(path: str) -> str:
    """The class path a .nemo's config names (read from the archive, no NeMo import)."""
    import yaml

    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("model_config.yaml"))
        return str(yaml.safe_load(tar.extractfile(member).read()).get("target", ""))


def write_clips(manifest: str, count: int, out_dir: Path) -> tuple[Path, list[str]]:
    """The first ``count`` rows of ``manifest`` as 16 kHz wav files + a NeMo manifest."""
    import soundfile as sf

    from maya_asr.inference.inputs import read_audio, read_manifest

    out_dir.mkdir(parents=True, exist_ok=True)
    rows, wavs = [], []
    for i, item in enumerate(read_manifest(manifest)[:count]):
        audio = read_audio(item, 16000)
        wav = out_dir / f"clip{i}.wav"
        sf.write(wav, audio, 16000)
        wavs.append(str(wav))
        row = {"audio_filepath": str(wav), "duration": round(len(audio) / 16000, 3)}
        row.update(text=item.text or "", lang=item.language or "")
        rows.append(row)
    nemo_manifest = out_dir / "clips_nemo.jsonl"
    nemo_manifest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return nemo_manifest, wavs


def run_client(model: str, manifest: Path, wavs: list[str], maya: bool) -> dict:
    """Run the client in a fresh process; its RESULT, or {"error": ...}."""
    cmd = [sys.executable, str(CLIENT), model, str(manifest), *wavs] + (["--maya"] if maya else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    print("\n".join(ln for ln in proc.stdout.splitlines() if not ln.startswith("RESULT ")))
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?"}
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 1)[1],
    )
    p.add_argument("--model", action="append", required=True, help=".nemo file (repeatable)")
    p.add_argument("--manifest", required=True, help="JSONL with audio and text (ours or NeMo's)")
    p.add_argument("--count", type=int, default=4, help="clips to transcribe (default 4)")
    p.add_argument("--work-dir", help="where the wav clips go (default: a temporary folder)")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        manifest, wavs = write_clips(args.manifest, args.count, Path(args.work_dir or tmp))
        failed = 0
        summary = []
        for model in args.model:
            maya = nemo_target(model).startswith("maya_asr.")
            print(f"== {model} ({'Maya model' if maya else 'stock NeMo model'})")
            got = run_client(model, manifest, wavs, maya)
            if "error" in got:
                failed += 1
                summary.append(f"FAIL {model}: {got['error']}")
            else:
                summary.append(
                    f"ok   {model}: {got['class']}; NeMo-script CER tdt "
                    f"{got['script_rnnt_cer']:.3f} ctc {got['script_ctc_cer']:.3f}"
                    + (f"; timestamps skipped: {got['timestamps_skipped']}"
                       if "timestamps_skipped" in got else "")
                )  # fmt: skip
    print("\n".join(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
