# Maya ASR — every command a user or CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch goes in first and pinned: an unpinned torch drags several GB of CUDA wheels onto a CPU box.
TORCH_SPEC ?= torch==2.13.0
WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
SETUP_STAMP := $(VENV)/.maya-setup-stamp

# Demo corpus: ~1 hour of espeak-ng speech in 12 languages, in the production raw shard format.
DEMO_ROOT ?= artifacts/demo/shards
DEMO_UTTS ?= 70

.PHONY: help setup system-deps test test-all lint format demo-corpus demo

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# ---------------------------------------------------------------- setup
setup: system-deps $(SETUP_STAMP)  ## create .venv with torch, the package and its dev tools

system-deps:  ## install the Debian packages (espeak-ng, sox, libsndfile1, aspell + dictionaries)
	@bash scripts/install_system_deps.sh

$(SETUP_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

# ---------------------------------------------------------------- quality
test: setup  ## CPU unit tests (what CI runs)
	$(PY) -m pytest tests/unit -q

test-all: setup  ## unit + integration tests
	$(PY) -m pytest tests -q

lint: setup  ## ruff check + ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup  ## ruff format + autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# ---------------------------------------------------------------- demo
demo-corpus: setup  ## synthesise the 12-language demo corpus (skipped when already built)
	$(PY) scripts/make_demo_corpus.py --output-root $(DEMO_ROOT) \
		--utts-per-lang $(DEMO_UTTS) --workers $(WORKERS)

demo: demo-corpus  ## the main job on the embedded demo corpus
	@echo "demo: corpus ready under $(DEMO_ROOT)"

# ---------------------------------------------------------------- inference and evaluation
MODEL ?=
EVAL_MANIFEST ?=
EVAL_DIR ?= artifacts/eval
EVAL_SOURCE = $(if $(EVAL_MANIFEST),--manifest $(EVAL_MANIFEST),--shards $(DEMO_ROOT) --per-language 10)

.PHONY: evaluate bench-rtfx

evaluate: setup  ## WER/CER per language, TDT vs CTC: make evaluate MODEL=m.nemo [EVAL_MANIFEST=val.jsonl]
	@test -n "$(MODEL)" || { echo "usage: make evaluate MODEL=path/to/model.nemo [EVAL_MANIFEST=val.jsonl] [EVAL_DIR=...]"; exit 2; }
	$(PY) scripts/evaluate.py --model $(MODEL) $(EVAL_SOURCE) --out-dir $(EVAL_DIR)

bench-rtfx: setup  ## RTFx of TDT vs CTC decoding by batch size (CPU) -> artifacts/bench/
	$(PY) scripts/bench_rtfx.py --shards $(DEMO_ROOT) $(if $(MODEL),--model $(MODEL),)
