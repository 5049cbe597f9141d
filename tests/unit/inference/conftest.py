"""Fixtures of the inference tests: the tiny demo corpus as a manifest, and a tiny random
hybrid TDT+CTC model trained on its text, both built once per session."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def corpus_rows(tiny_corpus):
    """Tar-offset manifest rows of the 36 demo utterances (12 languages x 3)."""
    from maya_asr.inference.inputs import shard_rows

    return shard_rows(tiny_corpus)


@pytest.fixture(scope="session")
def corpus_manifest(corpus_rows, tmp_path_factory):
    path = tmp_path_factory.mktemp("manifests") / "demo.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in corpus_rows), encoding="utf-8"
    )
    return path


@pytest.fixture(scope="session")
def tiny_nemo(corpus_rows, tmp_path_factory):
    """A .nemo of a 2-layer FastConformer hybrid TDT+CTC model with random weights."""
    from maya_asr.inference.tiny_model import build_tiny_model

    out = tmp_path_factory.mktemp("tiny_model") / "tiny.nemo"
    return build_tiny_model([r["text"] for r in corpus_rows], out, size="tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny_nemo):
    from maya_asr.inference.transcriber import load_model

    return load_model(str(tiny_nemo), device="cpu")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tiny model's ops are microseconds of work: on a shared 2-core runner, intra-op
    threads only add contention (measured 2x slower with 2 threads under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
