"""Helpers shared by the model tests: a tiny SentencePiece tokenizer and the smoke config."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

REPO = Path(__file__).resolve().parents[3]
SMOKE_CONFIG = REPO / "configs" / "train" / "smoke.yaml"
PROD_CONFIG = REPO / "configs" / "train" / "stage1_prod_8xh200.yaml"

ENGLISH_TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "a tiny model learns a tiny language",
    "speech recognition in twelve languages",
    "hello world this is maya",
    "numbers like one two three four five",
    "zebra quiz vex jolt mix",
]


def train_tokenizer(texts: list[str], out_dir: Path, vocab_size: int) -> Path:
    """A SentencePiece BPE in NeMo's tokenizer folder layout (tokenizer.model/.vocab, vocab.txt)."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "text.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(out_dir / "tokenizer"),
        vocab_size=vocab_size,
        model_type="bpe",
        character_coverage=1.0,
        hard_vocab_limit=False,
        bos_id=-1,
        eos_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    pieces = [
        line.split("\t")[0] for line in (out_dir / "tokenizer.vocab").read_text().splitlines()
    ]
    (out_dir / "vocab.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    return out_dir


def smoke_config(tokenizer_dir: Path, **overrides) -> DictConfig:
    """The ``model`` section of configs/train/smoke.yaml with the tokenizer and overrides set."""
    cfg = OmegaConf.load(SMOKE_CONFIG).model
    with open_dict(cfg):
        cfg.tokenizer.dir = str(tokenizer_dir)
        for key, value in overrides.items():
            OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def shortest_utterance(corpus_root: Path, lang: str, sample_rate: int = 16000):
    """(audio float32 at ``sample_rate``, text) of the shortest utterance of ``lang`` in raw shards."""
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
