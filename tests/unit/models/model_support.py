"""Helpers shared by the model tests: a tiny SentencePiece tokenizer and the smoke config."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from maya_asr.models.tiny_tokenizer import SAMPLE_TEXTS, tokenizer_with_vocab, train_tiny_tokenizer

REPO = Path(__file__).resolve().parents[3]
SMOKE_CONFIG = REPO / "configs" / "train" / "smoke.yaml"
PROD_CONFIG = REPO / "configs" / "train" / "stage1_prod_8xh200.yaml"

ENGLISH_TEXTS = list(SAMPLE_TEXTS)
train_tokenizer = train_tiny_tokenizer


def smoke_config(tokenizer_dir: Path, **overrides) -> DictConfig:
    """The ``model`` section of configs/train/smoke.yaml with the tokenizer and overrides set."""
    cfg = OmegaConf.load(SMOKE_CONFIG).model
    with open_dict(cfg):
        cfg.tokenizer.dir = str(tokenizer_dir)
        for key, value in overrides.items():
            OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def shortest_utterance(corpus_root: Path, lang: str, sample_rate: int = 16000):
    """(audio float32 at ``sample_rate``, text) of the shortest ``lang`` utterance in raw shards."""
    import io
    import json
    import tarfile

    import numpy as np
    import soundfile as sf
    import soxr

    best = None
    for shard in sorted((corpus_root / lang).glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            members = {m.name: m for m in tar.getmembers()}
            for name, member in members.items():
                key, ext = name.split(".", 1)
                if ext not in ("wav", "flac"):
                    continue
                audio, rate = sf.read(io.BytesIO(tar.extractfile(member).read()), dtype="float32")
                text = json.loads(tar.extractfile(members[f"{key}.json"]).read())["text"]
                if rate != sample_rate:
                    audio = soxr.resample(audio, rate, sample_rate).astype(np.float32)
                if best is None or len(audio) < len(best[0]):
                    best = (audio, text)
    if best is None:
        raise FileNotFoundError(f"no utterances for {lang} under {corpus_root}")
    return best


__all__ = [
    "ENGLISH_TEXTS", "PROD_CONFIG", "REPO", "SMOKE_CONFIG", "shortest_utterance", "smoke_config",
    "tokenizer_with_vocab", "train_tokenizer",
]  # fmt: skip
