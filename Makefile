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

# ---- model
PARAKEET_NEMO ?= pretrained/parakeet-tdt-1.1b.nemo
ENCODER_PT ?= pretrained/parakeet_tdt_1.1b_encoder.pt
EXPORT_LANG ?= none

.PHONY: extract-encoder export-stock bench-model

extract-encoder: setup  ## write $(ENCODER_PT) from $(PARAKEET_NEMO) (the pretrained encoder)
	$(PY) scripts/extract_encoder.py --nemo $(PARAKEET_NEMO) --output $(ENCODER_PT)

export-stock: setup  ## plain NeMo .nemo from MODEL=<ours.nemo> for EXPORT_LANG=<code|none> to OUT=
	@test -n "$(MODEL)" -a -n "$(OUT)" || { echo "usage: make export-stock MODEL=x.nemo OUT=y.nemo [EXPORT_LANG=hi]"; exit 2; }
	$(PY) scripts/export_stock_nemo.py --model $(MODEL) --language $(EXPORT_LANG) --output $(OUT)

bench-model: setup  ## CPU TDT loss vs NeMo reference; smoke step time/memory; prod param count
	$(PY) scripts/bench_tdt_loss.py
	$(PY) scripts/bench_model.py --param-count
