#!/usr/bin/env bash
# Stage-1 production launch: readiness gate -> checkpoint watcher -> torchrun training -> drain.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/run_stage1_prod.sh [extra train_prod.py flags...]     (or: make prod-launch)

Steps, each failing fast with a clear message:
  1. readiness gate: scripts/readiness.py (disk, GPUs, config, artifacts, R2); any FAIL stops here
  2. node rank 0 only: scripts/checkpoint_watcher.py in the background (uploads, verifies and
     frees checkpoints; log in $EXP_DIR/logs/watcher.log)
  3. training on all GPUs of this node via torchrun (multi-node with NUM_NODES/NODE_RANK/MASTER_ADDR)
  4. node rank 0: stop the watcher, then drain it in the foreground until every checkpoint has a
     verified remote copy (exit 1 if one does not)

Settings (environment variables, defaults in brackets):
  CONFIG             [configs/train/stage1_prod_8xh200.yaml]
  TRAIN_PARQUET      [artifacts/phase3/production_train_final.parquet]
  VAL_MANIFEST       [data/manifests/stage1_prod_val_v2.jsonl]
  PRETRAINED_ENCODER [pretrained/parakeet_tdt_1.1b_encoder.pt]
  RUN_NAME           [stage1_prod]       remote folder under R2_PREFIX, and experiment name
  EXP_DIR            [experiments/$RUN_NAME]
  CKPT_DIR           [$EXP_DIR/checkpoints]   where the trainer writes checkpoints
  GPUS_PER_NODE      [8]     NUM_NODES [1]   NODE_RANK [0]   MASTER_ADDR [127.0.0.1]   MASTER_PORT [29500]
  KEEP_LOCAL         [2]     checkpoints always kept on local disk
  ENV_FILE           [.env]  R2 settings (chmod 600): R2_ACCOUNT_ID or R2_ENDPOINT, R2_ACCESS_KEY_ID,
                             R2_SECRET_ACCESS_KEY, R2_BUCKET, optional R2_PREFIX
  TRAIN_SCRIPT       [scripts/train_prod.py]
  PY                 [.venv/bin/python, else python3]     TORCHRUN [torchrun next to $PY]
  SKIP_READINESS     [0]     1 skips the gate (only for debugging; you own the consequences)

Example (2 nodes, run on each):
  NUM_NODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 scripts/run_stage1_prod.sh
  NUM_NODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 scripts/run_stage1_prod.sh
EOF
}
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then usage; exit 0; fi

cd "$(dirname "$0")/.."
if [[ -z "${PY:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
TORCHRUN=${TORCHRUN:-$(dirname "$PY")/torchrun}
[[ -x "$TORCHRUN" ]] || TORCHRUN=torchrun
CONFIG=${CONFIG:-configs/train/stage1_prod_8xh200.yaml}
TRAIN_PARQUET=${TRAIN_PARQUET:-artifacts/phase3/production_train_final.parquet}
VAL_MANIFEST=${VAL_MANIFEST:-data/manifests/stage1_prod_val_v2.jsonl}
PRETRAINED_ENCODER=${PRETRAINED_ENCODER:-pretrained/parakeet_tdt_1.1b_encoder.pt}
RUN_NAME=${RUN_NAME:-stage1_prod}
EXP_DIR=${EXP_DIR:-experiments/$RUN_NAME}
CKPT_DIR=${CKPT_DIR:-$EXP_DIR/checkpoints}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
NUM_NODES=${NUM_NODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
KEEP_LOCAL=${KEEP_LOCAL:-2}
ENV_FILE=${ENV_FILE:-.env}
TRAIN_SCRIPT=${TRAIN_SCRIPT:-scripts/train_prod.py}
SKIP_READINESS=${SKIP_READINESS:-0}
WATCHER_ARGS=${WATCHER_ARGS:-}   # extra flags for the watcher (tests: small parts, short settle)
LOG_DIR="$EXP_DIR/logs"

say() { echo "[prod-launch $(date -u +%H:%M:%S)] $*"; }
die() { echo "[prod-launch] ERROR: $*" >&2; exit 1; }

say "run $RUN_NAME: node $NODE_RANK of $NUM_NODES, $GPUS_PER_NODE GPU(s), checkpoints in $CKPT_DIR"

# ---- 1. readiness gate
if [[ "$SKIP_READINESS" == 1 ]]; then
    say "WARNING: readiness gate skipped (SKIP_READINESS=1)"
else
    r2_flag=()
    [[ "$NODE_RANK" == 0 ]] || r2_flag=(--no-r2)   # only rank 0 uploads
    "$PY" scripts/readiness.py --config "$CONFIG" --train-parquet "$TRAIN_PARQUET" \
        --val-manifest "$VAL_MANIFEST" --pretrained-encoder "$PRETRAINED_ENCODER" \
        --checkpoint-dir "$CKPT_DIR" --expect-gpus "$GPUS_PER_NODE" --keep-local "$KEEP_LOCAL" \
        --env-file "$ENV_FILE" "${r2_flag[@]}" \
        || die "readiness gate FAILED: fix the FAIL rows above (make prod-readiness), then relaunch"
fi
[[ -f "$TRAIN_SCRIPT" ]] || die "$TRAIN_SCRIPT not found: the training entry point is missing"
mkdir -p "$CKPT_DIR" "$LOG_DIR" || die "cannot create $CKPT_DIR / $LOG_DIR"

# ---- 2. checkpoint watcher (rank 0 only: Lightning saves checkpoints on global rank 0)
WATCHER_PID=""
watcher_cmd=("$PY" scripts/checkpoint_watcher.py --checkpoint-dir "$CKPT_DIR"
             --run-name "$RUN_NAME" --keep-local "$KEEP_LOCAL" --env-file "$ENV_FILE")
# shellcheck disable=SC2206  # WATCHER_ARGS is a flag list on purpose
watcher_cmd+=($WATCHER_ARGS)
if [[ "$NODE_RANK" == 0 ]]; then
    "${watcher_cmd[@]}" --log-file "$LOG_DIR/watcher.log" 2>/dev/null &
    WATCHER_PID=$!
    sleep 2
    if ! kill -0 "$WATCHER_PID" 2>/dev/null; then
        wait "$WATCHER_PID" || true
        tail -n 20 "$LOG_DIR/watcher.log" >&2 || true
        die "the checkpoint watcher exited at start (log above: $LOG_DIR/watcher.log)"
    fi
    say "checkpoint watcher running (pid $WATCHER_PID, log $LOG_DIR/watcher.log)"
fi

TRAIN_PID=""
forward() {  # preemption (SIGTERM/SIGINT): stop training, let the drain below run
    say "signal received: stopping training"
    [[ -n "$TRAIN_PID" ]] && kill -TERM "$TRAIN_PID" 2>/dev/null || true
}
trap forward TERM INT

# ---- 3. training
say "training: $TORCHRUN --nnodes $NUM_NODES --node_rank $NODE_RANK --nproc_per_node $GPUS_PER_NODE $TRAIN_SCRIPT"
set +e
"$TORCHRUN" --nnodes "$NUM_NODES" --node_rank "$NODE_RANK" --nproc_per_node "$GPUS_PER_NODE" \
    --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" \
    "$TRAIN_SCRIPT" --config "$CONFIG" --train-parquet "$TRAIN_PARQUET" \
    --val-manifest "$VAL_MANIFEST" --pretrained-encoder "$PRETRAINED_ENCODER" \
    --run-dir "$EXP_DIR" --checkpoint-dir "$CKPT_DIR" --devices "$GPUS_PER_NODE" \
    --num-nodes "$NUM_NODES" "$@" &
TRAIN_PID=$!
wait "$TRAIN_PID"
train_rc=$?
# A trapped signal interrupts `wait`; wait again for the real exit status.
if kill -0 "$TRAIN_PID" 2>/dev/null; then wait "$TRAIN_PID"; train_rc=$?; fi
set -e
trap - TERM INT
if [[ $train_rc -eq 0 ]]; then say "training finished"; else say "training exited with status $train_rc"; fi

# ---- 4. drain the watcher
drain_rc=0
if [[ -n "$WATCHER_PID" ]]; then
    say "stopping the background watcher, then draining"
    kill -TERM "$WATCHER_PID" 2>/dev/null || true
    wait "$WATCHER_PID" || true
    set +e
    "${watcher_cmd[@]}" --drain --log-file "$LOG_DIR/watcher.log"
    drain_rc=$?
    set -e
    if [[ $drain_rc -ne 0 ]]; then
        echo "[prod-launch] ERROR: drain left checkpoints without a verified remote copy; rerun:" >&2
        echo "  ${watcher_cmd[*]} --drain" >&2
    else
        say "every checkpoint has a verified copy in R2"
    fi
fi
[[ $train_rc -ne 0 ]] && die "training failed with status $train_rc (checkpoints were drained)"
exit "$drain_rc"
