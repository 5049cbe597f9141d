"""Shared fixtures: a tiny demo corpus built once per session, and CUDA marker handling."""

from __future__ import annotations

import shutil

import pytest


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "requires_cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_corpus_config(tmp_path_factory):
    """Config of a 12-language corpus of 3 utterances each, 2 per shard (so 2 shards a language)."""
    if shutil.which("espeak-ng") is None or shutil.which("aspell") is None:
        pytest.fail("espeak-ng and aspell are needed: run `make system-deps`")
    from maya_asr.data.demo_corpus import DemoCorpusConfig

    root = tmp_path_factory.mktemp("demo_corpus")
    return DemoCorpusConfig(output_root=root, utts_per_lang=3, shard_size=2, seed=7, workers=2)


@pytest.fixture(scope="session")
def tiny_corpus(tiny_corpus_config):
    """Root of the tiny corpus, built once for the whole test session."""
    from maya_asr.data.demo_corpus import build_demo_corpus

    build_demo_corpus(tiny_corpus_config, progress=False)
    return tiny_corpus_config.output_root
