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


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_corpus, tmp_path_factory):
    """The data pipeline's outputs for the tiny corpus, as `make prod-artifacts` writes them:
    {"index": parquet, "val_manifest": jsonl, "tokenizer_dir": NeMo tokenizer folder}."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).parents[1]
    config = str(repo / "configs" / "data" / "demo.yaml")
    out = tmp_path_factory.mktemp("tiny_artifacts")
    m, tok = out / "manifests", out / "tokenizer"
    index, val = out / "phase3" / "production_train_final.parquet", m / "val_manifest.jsonl"
    steps = [
        ("build_manifest.py", "--input-root", str(tiny_corpus), "--output-dir", str(m / "raw"),
         "--config", config, "--workers", "2", "--no-progress"),
        ("split_manifest.py", "--manifest", str(m / "raw" / "manifest.jsonl"),
         "--output-dir", str(m), "--config", config),
        ("build_tokenizer.py", "--train", str(m / "train.jsonl"), "--val", str(m / "val.jsonl"),
         "--output-dir", str(tok), "--config", config, "--vocab-size", "800"),
        ("build_index.py", "--train", str(m / "train.jsonl"), "--val", str(m / "val.jsonl"),
         "--tokenizer-dir", str(tok), "--output", str(index), "--val-output", str(val),
         "--config", config, "--no-progress"),
    ]  # fmt: skip
    for script, *args in steps:
        run = subprocess.run(
            [sys.executable, str(repo / "scripts" / script), *args],
            capture_output=True, text=True, check=False, cwd=repo,
        )  # fmt: skip
        if run.returncode != 0:
            pytest.fail(f"{script} failed:\n{run.stderr[-2000:]}")
    return {"index": index, "val_manifest": val, "tokenizer_dir": tok}


@pytest.fixture(scope="session")
def tiny_trained_run(tiny_artifacts, tmp_path_factory):
    """A model trained for 2 steps by the real training code on the tiny corpus, as `make smoke`
    trains (smoke config, production data path): {"model": model.nemo, "init": model_init.nemo
    (the untrained baseline), "cfg": the run's merged config}."""
    from train_support import smoke_train_config

    from maya_asr.training.run import train

    out = tmp_path_factory.mktemp("tiny_trained_run")
    cfg = smoke_train_config(
        tiny_artifacts, out / "run", 2, val_manifest=str(tiny_artifacts["val_manifest"])
    )
    cfg.run.save_initial = True
    result = train(cfg)
    return {"model": result.nemo_path, "init": result.run_dir / "model_init.nemo", "cfg": cfg}
