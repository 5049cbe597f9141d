"""Tiny SentencePiece BPE tokenizers in NeMo's folder layout, for smoke runs, tests and benches.

The real 32K tokenizer comes from the data pipeline (scripts/build_tokenizer.py); these exist so
a model can be built in a second without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SAMPLE_TEXTS = (
    "the quick brown fox jumps over the lazy dog",
    "a tiny model learns a tiny language",
    "speech recognition in twelve languages",
    "hello world this is maya",
    "numbers like one two three four five",
    "zebra quiz vex jolt mix",
)


def train_tiny_tokenizer(texts: Sequence[str], out_dir: Path, vocab_size: int) -> Path:
    """Train a BPE on ``texts``; write tokenizer.model, tokenizer.vocab and vocab.txt."""
    import sentencepiece as spm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "text.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out_dir / "tokenizer"), vocab_size=vocab_size,
        model_type="bpe", character_coverage=1.0, hard_vocab_limit=False, bos_id=-1, eos_id=-1,
        num_threads=1, minloglevel=2,
    )  # fmt: skip
    vocab = (out_dir / "tokenizer.vocab").read_text(encoding="utf-8").splitlines()
    pieces = [line.split("\t")[0] for line in vocab]
    (out_dir / "vocab.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    return out_dir


def tokenizer_with_vocab(out_dir: Path, vocab_size: int) -> Path:
    """A valid BPE tokenizer with exactly ``vocab_size`` pieces, made in ~0.1 s.

    Trains on :data:`SAMPLE_TEXTS` and pads the model proto with unique pieces: enough to build
    a model with the production vocabulary size (to count parameters or time a step).
    """
    from sentencepiece import sentencepiece_model_pb2 as pb

    out_dir = Path(out_dir)
    train_tiny_tokenizer(SAMPLE_TEXTS, out_dir, vocab_size=min(vocab_size, 40))
    proto = pb.ModelProto()
    proto.ParseFromString((out_dir / "tokenizer.model").read_bytes())
    normal = pb.ModelProto.SentencePiece.NORMAL
    i = 0
    while len(proto.pieces) < vocab_size:
        piece = proto.pieces.add()
        piece.piece, piece.score, piece.type = f"▁pad{i}", -1000.0 - i, normal
        i += 1
    proto.trainer_spec.vocab_size = vocab_size
    (out_dir / "tokenizer.model").write_bytes(proto.SerializeToString())
    pieces = [p.piece for p in proto.pieces]
    (out_dir / "tokenizer.vocab").write_text("\n".join(f"{p}\t0" for p in pieces) + "\n")
    (out_dir / "vocab.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    return out_dir
