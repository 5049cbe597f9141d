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

# Demo corpus: ~10 hours of espeak-ng speech in 12 languages, in the production raw shard format.
DEMO_ROOT ?= artifacts/demo/shards
DEMO_UTTS ?= 800

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

demo: demo-eval  ## the main job: corpus -> artifacts -> fine-tune the pretrained encoder -> CER/WER table

# The demo's pretrained encoder (pretrained/demo/, committed): a small FastConformer pretrained
# with CTC on espeak-ng en/de/fr/es/it/nl, playing Parakeet's role. The corpus avoids the demo's
# validation speakers, read from its validation manifest (built by demo-artifacts when missing).
# ~70 min on one core (the committed run: PRETRAIN_THREADS=1, the other core busy): the run
# checkpoints every 500 steps and the same command resumes it. The other defaults are the
# committed encoder's run (pretrained/demo/README.md).
PRETRAIN_ROOT ?= artifacts/demo_pretrain/shards
PRETRAIN_UTTS ?= 3000
PRETRAIN_DIR ?= pretrained/demo
PRETRAIN_WORK ?= artifacts/demo_pretrain/run
PRETRAIN_STEPS ?= 4000
PRETRAIN_HELDOUT ?= 120
PRETRAIN_CKPT_EVERY ?= 500
# torch threads: 1 when the box is shared (two OpenMP threads of a niced job next to another busy
# process spin at barriers: measured ~10x slower per step than one thread)
PRETRAIN_THREADS ?= $(WORKERS)
DEMO_VAL_MANIFEST := artifacts/demo/manifests/stage1_prod_val_v2.jsonl
.PHONY: demo-pretrain-corpus demo-pretrain

demo-pretrain-corpus: setup  ## synthesise the encoder's pretraining corpus (~18 h, en de fr es it nl)
	@test -f $(DEMO_VAL_MANIFEST) || $(MAKE) --no-print-directory demo-artifacts
	$(PY) scripts/make_pretrain_corpus.py --output-root $(PRETRAIN_ROOT) \
		--utts-per-lang $(PRETRAIN_UTTS) --heldout-manifest $(DEMO_VAL_MANIFEST) --workers $(WORKERS)

demo-pretrain: demo-pretrain-corpus  ## pretrain the demo's FastConformer encoder -> pretrained/demo/ (~70 min on one core; resumable)
	$(PY) scripts/pretrain_demo_encoder.py --corpus-root $(PRETRAIN_ROOT) --out-dir $(PRETRAIN_DIR) \
		--work-dir $(PRETRAIN_WORK) --max-steps $(PRETRAIN_STEPS) --threads $(PRETRAIN_THREADS) \
		--val-utterances $(PRETRAIN_HELDOUT) --checkpoint-every $(PRETRAIN_CKPT_EVERY)

# ---------------------------------------------------------------- data (prod-artifacts)
# raw shards -> manifest -> train/val split -> BPE tokenizer -> parquet index + val manifest
# -> data report. Each stage is a file target: it reruns only when an input is newer than its
# output (new shards, an edited config). FORCE=1 redoes every stage, shard scans included.
RAW_ROOT ?= data/raw
ARTIFACTS_DIR ?= artifacts
MANIFEST_DIR ?= data/manifests
TOKENIZER_DIR ?= tokenizers/stage1_prod_bpe
VOCAB_SIZE ?= 32000
DATA_CONFIG ?= configs/data/prod.yaml
INDEX_PARQUET ?= $(ARTIFACTS_DIR)/phase3/production_train_final.parquet
VAL_MANIFEST ?= $(MANIFEST_DIR)/stage1_prod_val_v2.jsonl
DATA_REPORT_DIR ?= $(ARTIFACTS_DIR)/phase3/data_report
# training YAML whose data.bucket_edges must reach manifest.max_duration_s (build_index refuses
# an index the sampler would cut); empty: the max is only recorded in the parquet metadata.
# The demo passes none: its corpus stops at 20 s, its manifest limit (40 s) does not.
INDEX_TRAIN_CONFIG ?= configs/train/stage1_prod_8xh200.yaml
# The 12 languages' ten scripts need ~755 single-character pieces. 1536 is the smallest size (in
# steps of 512) at which every demo utterance has fewer tokens than 80-ms encoder frames (CTC
# load p99 <= 0.9, max 0.97; at 1024 some exceed 1 and CTC cannot align them); small keeps the
# CPU model fast.
DEMO_VOCAB_SIZE ?= 1536

RAW_SHARDS = $(shell find $(RAW_ROOT) -mindepth 2 -maxdepth 2 -name 'shard-*.tar' 2>/dev/null | sort)
RAW_MANIFEST = $(MANIFEST_DIR)/raw/manifest.jsonl
TRAIN_SPLIT = $(MANIFEST_DIR)/train.jsonl
VAL_SPLIT = $(MANIFEST_DIR)/val.jsonl
TOKENIZER_MODEL = $(TOKENIZER_DIR)/tokenizer.model
DATA_REPORT = $(DATA_REPORT_DIR)/report.json
DATA_FORCE = $(if $(filter 1,$(FORCE)),data-force,)
# a tokenizer built with another VOCAB_SIZE is stale even when it is newer than its inputs
TOKENIZER_STALE = $(if $(shell grep -qs '"vocab_size_requested": $(VOCAB_SIZE),' \
	$(TOKENIZER_DIR)/build_info.json || echo stale),data-force,)

.PHONY: prod-artifacts demo-artifacts data-force

prod-artifacts: $(DATA_REPORT)  ## build manifest, split, tokenizer, parquet index, report (RAW_ROOT=..., FORCE=1)
	@echo "prod-artifacts: $(INDEX_PARQUET), $(VAL_MANIFEST), $(TOKENIZER_DIR)/, $(DATA_REPORT_DIR)/"

demo-artifacts: demo-corpus  ## prod-artifacts on the demo corpus (outputs under artifacts/demo, tokenizers/demo_bpe)
	@$(MAKE) --no-print-directory prod-artifacts RAW_ROOT=$(DEMO_ROOT) ARTIFACTS_DIR=artifacts/demo \
		MANIFEST_DIR=artifacts/demo/manifests TOKENIZER_DIR=tokenizers/demo_bpe \
		VOCAB_SIZE=$(DEMO_VOCAB_SIZE) DATA_CONFIG=configs/data/demo.yaml INDEX_TRAIN_CONFIG=

data-force:

$(RAW_MANIFEST): $(RAW_SHARDS) $(DATA_CONFIG) $(DATA_FORCE) | setup
	@test -d $(RAW_ROOT) || { echo "RAW_ROOT=$(RAW_ROOT) is not a folder of <lang>/shard-*.tar"; exit 2; }
	$(PY) scripts/build_manifest.py --input-root $(RAW_ROOT) --output-dir $(@D) \
		--config $(DATA_CONFIG) --workers $(WORKERS) $(if $(DATA_FORCE),--force) \
		|| { rc=$$?; rm -f $@; exit $$rc; }

$(TRAIN_SPLIT) $(VAL_SPLIT) &: $(RAW_MANIFEST) $(DATA_CONFIG) $(DATA_FORCE) | setup
	$(PY) scripts/split_manifest.py --manifest $< --output-dir $(MANIFEST_DIR) --config $(DATA_CONFIG)

$(TOKENIZER_MODEL): $(TRAIN_SPLIT) $(VAL_SPLIT) $(DATA_CONFIG) $(DATA_FORCE) $(TOKENIZER_STALE) | setup
	$(PY) scripts/build_tokenizer.py --train $(TRAIN_SPLIT) --val $(VAL_SPLIT) \
		--output-dir $(TOKENIZER_DIR) --vocab-size $(VOCAB_SIZE) --config $(DATA_CONFIG) \
		--threads $(WORKERS)

$(INDEX_PARQUET) $(VAL_MANIFEST) &: $(TRAIN_SPLIT) $(VAL_SPLIT) $(TOKENIZER_MODEL) $(DATA_FORCE) | setup
	$(PY) scripts/build_index.py --train $(TRAIN_SPLIT) --val $(VAL_SPLIT) \
		--tokenizer-dir $(TOKENIZER_DIR) --output $(INDEX_PARQUET) --val-output $(VAL_MANIFEST) \
		--config $(DATA_CONFIG) --threads $(WORKERS) \
		$(if $(INDEX_TRAIN_CONFIG),--train-config $(INDEX_TRAIN_CONFIG))

$(DATA_REPORT): $(INDEX_PARQUET) $(VAL_MANIFEST) $(DATA_FORCE) | setup
	$(PY) scripts/data_report.py --index $(INDEX_PARQUET) --val-manifest $(VAL_MANIFEST) \
		--manifest-summary $(MANIFEST_DIR)/raw/summary.json \
		--split-report $(MANIFEST_DIR)/split_report.json \
		--tokenizer-report $(TOKENIZER_DIR)/tokenizer_report.json --output-dir $(DATA_REPORT_DIR)

# ---------------------------------------------------------------- loader
.PHONY: bench-loader bench-reader bench-sampler

bench-reader: setup  ## reader vs per-sample tarfile and a webdataset stream -> artifacts/bench/reader.json
	$(PY) scripts/bench_reader.py --demo-root $(DEMO_ROOT)

bench-sampler: setup  ## sampler vs Lhotse, shares, DDP balance, 50M-row plan -> artifacts/bench/sampler.json
	$(PY) scripts/bench_sampler.py

bench-loader: bench-reader bench-sampler  ## both loader benchmarks

# The production data path at production size on this box: index of REHEARSAL_ROWS synthetic
# rows over real shard bytes (built once under artifacts/rehearsal/), 8 simulated ranks.
REHEARSAL_ROWS ?= 50000000
.PHONY: rehearsal
rehearsal: demo-artifacts  ## 50M-row index, 8 ranks: plan, coverage, resume, loader, lookups, stages -> artifacts/bench/
	$(PY) scripts/bench_row_lookup.py --sizes 200000,5000000,$(REHEARSAL_ROWS)
	$(PY) scripts/bench_prod_stages.py
	$(PY) scripts/rehearsal.py --rows $(REHEARSAL_ROWS)

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

# ---------------------------------------------------------------- model
PARAKEET_NEMO ?= pretrained/parakeet-tdt-1.1b.nemo
ENCODER_PT ?= pretrained/parakeet_tdt_1.1b_encoder.pt
EXPORT_LANG ?= none
API_MANIFEST ?= $(DEMO_VAL)

.PHONY: extract-encoder export-stock nemo-api-check bench-model bench-demo-step gpu-check

extract-encoder: setup  ## write $(ENCODER_PT) from $(PARAKEET_NEMO) (the pretrained encoder)
	$(PY) scripts/extract_encoder.py --nemo $(PARAKEET_NEMO) --output $(ENCODER_PT)

export-stock: setup  ## plain NeMo .nemo from MODEL=<ours.nemo> for EXPORT_LANG=<code|none> to OUT=
	@test -n "$(MODEL)" -a -n "$(OUT)" || { echo "usage: make export-stock MODEL=x.nemo OUT=y.nemo [EXPORT_LANG=hi]"; exit 2; }
	$(PY) scripts/export_stock_nemo.py --model $(MODEL) --language $(EXPORT_LANG) --output $(OUT)

# What a NeMo user does first, on MODEL and on its stock export (MODEL with _stock): restore_from,
# transcribe (paths, manifest, timestamps), change_decoding_strategy both ways, and the calls of
# NeMo's transcribe_speech.py / speech_to_text_eval.py, each in a fresh process.
nemo-api-check: setup  ## NeMo's own API on MODEL=<ours.nemo> and its stock export [API_MANIFEST=val.jsonl]
	@test -n "$(MODEL)" || { echo "usage: make nemo-api-check MODEL=x.nemo [API_MANIFEST=m.jsonl]"; exit 2; }
	$(PY) scripts/export_stock_nemo.py --model $(MODEL) --language none \
		--output $(basename $(MODEL))_stock.nemo
	$(PY) scripts/check_nemo_api.py --model $(MODEL) --model $(basename $(MODEL))_stock.nemo \
		--manifest $(API_MANIFEST) --work-dir $(dir $(MODEL))nemo_api

bench-model: setup  ## CPU TDT loss vs NeMo reference; smoke step time/memory; CPU allocator; prod param count
	$(PY) scripts/bench_tdt_loss.py
	$(PY) scripts/bench_cpu_alloc.py
	$(PY) scripts/bench_model.py --param-count

bench-demo-step: demo-artifacts  ## demo training step/s: fp32 joint vs bf16 joint vs the demo config (~12 min)
	$(PY) scripts/bench_demo_step.py

gpu-check: setup  ## one H200, <8 min: smoke bf16+numba, prod pre-flight, 50 steps (MFU), RTFx (CPU: tiny variant)
	$(PY) scripts/gpu_check.py

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

# ---------------------------------------------------------------- training
DEMO_RUN ?= experiments/demo
DEMO_STEPS ?= 2500
DEMO_CONFIG ?= configs/train/demo_cpu.yaml
DEMO_VAL = artifacts/demo/manifests/stage1_prod_val_v2.jsonl
SMOKE_RUN ?= experiments/smoke
SMOKE_STEPS ?= 100

.PHONY: demo-train demo-eval demo-ablate smoke

# A new config or encoder.pt retrains from step 0: train_prod.py would resume the old run's
# last.ckpt otherwise.
$(DEMO_RUN)/model.nemo: artifacts/demo/phase3/production_train_final.parquet $(DEMO_CONFIG) \
		$(PRETRAIN_DIR)/encoder.pt
	rm -rf $(DEMO_RUN)
	$(PY) scripts/train_prod.py --config $(DEMO_CONFIG) --run-dir $(DEMO_RUN) \
		--max-steps $(DEMO_STEPS) --val-every $(DEMO_STEPS) --checkpoint-every $(DEMO_STEPS) \
		--pretrained-encoder $(PRETRAIN_DIR)/encoder.pt

demo-train: demo-artifacts  ## fine-tune the pretrained demo FastConformer, recipe on -> $(DEMO_RUN)/model.nemo
	@$(MAKE) --no-print-directory $(DEMO_RUN)/model.nemo

# The starting point (model_init.nemo: pretrained encoder, untrained heads) is not scored here:
# its heads are random, so its CER (~5.5 TDT, ~1.9 CTC) says nothing and would double the time.
# DEMO_COMPARE=1 adds it.
DEMO_COMPARE ?=
demo-eval: demo-train  ## per-language WER/CER of both heads, language given and free
	$(PY) scripts/evaluate.py --model $(DEMO_RUN)/model.nemo \
		$(if $(DEMO_COMPARE),--compare $(DEMO_RUN)/model_init.nemo,) \
		--manifest $(DEMO_VAL) --out-dir $(DEMO_RUN)/eval
	@$(MAKE) --no-print-directory nemo-api-check MODEL=$(DEMO_RUN)/model.nemo

# One part of the recipe removed at a time, DEMO_STEPS each, scored like make demo; reuses make
# demo's run as the full recipe when its config is the same. ~25-30 min a variant on 2 cores;
# finished variants are kept, so it resumes.
demo-ablate: demo-artifacts  ## the demo recipe minus one part at a time -> experiments/demo_ablate/ablation.md
	$(PY) scripts/demo_ablate.py --config $(DEMO_CONFIG) --steps $(DEMO_STEPS) \
		--val-manifest $(DEMO_VAL) --out-dir experiments/demo_ablate \
		--full-run $(DEMO_RUN)

smoke: demo-artifacts  ## ~100 steps of the smoke model, validation, .nemo, restore + transcribe (both heads)
	rm -rf $(SMOKE_RUN)
	$(PY) scripts/train_prod.py --config configs/train/smoke.yaml --run-dir $(SMOKE_RUN) \
		--max-steps $(SMOKE_STEPS) --log-every 10 --val-every 50
	head -n 4 $(DEMO_VAL) > $(SMOKE_RUN)/clips.jsonl
	$(PY) scripts/transcribe.py --model $(SMOKE_RUN)/model.nemo --manifest $(SMOKE_RUN)/clips.jsonl \
		--decoder tdt --output $(SMOKE_RUN)/transcripts_tdt.jsonl
	$(PY) scripts/transcribe.py --model $(SMOKE_RUN)/model.nemo --manifest $(SMOKE_RUN)/clips.jsonl \
		--decoder ctc --output $(SMOKE_RUN)/transcripts_ctc.jsonl
	@$(MAKE) --no-print-directory nemo-api-check MODEL=$(SMOKE_RUN)/model.nemo
	@echo "smoke: trained, validated, exported, restored and transcribed -> $(SMOKE_RUN)/"
