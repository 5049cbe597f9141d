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
	@grep -E '^[a-zA-Z0-9_-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

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

# ---------------------------------------------------------------- ops
# R2 settings come from the environment or a chmod-600 .env (see README, "Operations").
PROD_EXPECT_GPUS ?= 8

.PHONY: validate-r2 prod-readiness prod-launch bench-r2

validate-r2: setup  ## round-trip a 2.5-part object through the R2 bucket (PASS/FAIL per step)
	$(PY) scripts/validate_r2.py

prod-readiness: setup  ## readiness table: disk, GPUs, config, artifacts, R2 (exit 1 on FAIL)
	$(PY) scripts/readiness.py --expect-gpus $(PROD_EXPECT_GPUS)

prod-launch: setup  ## readiness gate -> checkpoint watcher -> torchrun training -> drain
	PY=$(PY) GPUS_PER_NODE=$(PROD_EXPECT_GPUS) bash scripts/run_stage1_prod.sh

bench-r2: setup  ## upload/verify throughput to a local S3 server -> artifacts/bench/r2_upload.json
	$(PY) scripts/bench_r2_upload.py
