"""Rehearse the production data path at production size on this CPU box (``make rehearsal``).

Builds (or reuses) a production-shaped index of --rows rows with scripts/make_rehearsal_index.py,
then plans epochs for 8 simulated ranks with the production sampler config and reports plan time
and peak RSS, the no-repeat check, share error, audio seconds per bucket, rank cost balance,
resume exactness (mid-epoch and after an epoch boundary), coverage and repeat factor after 1, 3
and 10 epochs, and DataLoader throughput with 2 workers (maya_asr.data.rehearsal).

Writes artifacts/bench/rehearsal.json and prints a table of the goals with their figures, with the
row-lookup figures of scripts/bench_row_lookup.py and the stage throughput of
scripts/bench_prod_stages.py folded in from their JSON (`make rehearsal` runs both first).

Usage:
    python scripts/rehearsal.py                    # 50M rows (~150K h): ~15-25 min, ~4 GB
    python scripts/rehearsal.py --rows 5000000     # a quicker look
    python scripts/rehearsal.py --index my.parquet # any production index
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs/train/stage1_prod_8xh200.yaml"
DEFAULT_TOKENIZER = REPO / "tokenizers/demo_bpe/tokenizer.model"
INDEX_SCRIPT = REPO / "scripts/make_rehearsal_index.py"
DEFAULT_POOL = REPO / "artifacts/demo/shards"  # real shard members for the reader to decode


def ensure_index(path: Path, rows: int, pool: Path) -> Path:
    """The rehearsal index at ``path``; built with scripts/make_rehearsal_index.py if absent."""
    if path.exists():
        return path
    if not INDEX_SCRIPT.exists():
        raise SystemExit(
            f"{path} does not exist and {INDEX_SCRIPT.relative_to(REPO)} is missing: pass "
            "--index PATH (any production index) or update the checkout"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"building a {rows:,}-row rehearsal index at {path} ...", flush=True)
    if not pool.exists():
        raise SystemExit(f"shard pool {pool} is missing: run `make demo-artifacts` or pass --pool")
    cmd = [sys.executable, str(INDEX_SCRIPT), "--rows", str(rows), "--output", str(path)]
    cmd += ["--pool", str(pool)]
    subprocess.run(cmd, check=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=50_000_000, help="rows of the rehearsal index")
    ap.add_argument("--index", type=Path, help="use this index (default: built for --rows)")
    ap.add_argument("--pool", type=Path, default=DEFAULT_POOL, help="shards the index points at")
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="training config")
    ap.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER, help="for the loader")
    ap.add_argument("--ranks", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=10, help="epochs planned for coverage")
    ap.add_argument("--loader-seconds", type=float, default=60.0)
    ap.add_argument("--loader-workers", type=int, default=2)
    ap.add_argument("--vocab-size", type=int, default=32000, help="when the tokenizer is absent")
    ap.add_argument("--out", type=Path, default=REPO / "artifacts/bench/rehearsal.json")
    ap.add_argument(
        "--lookup-json",
        type=Path,
        default=REPO / "artifacts/bench/row_lookup.json",
        help="scripts/bench_row_lookup.py's report, folded into the table",
    )
    ap.add_argument(
        "--stages-json",
        type=Path,
        default=REPO / "artifacts/bench/prod_stages.json",
        help="scripts/bench_prod_stages.py's report, folded into the table",
    )
    args = ap.parse_args()

    from omegaconf import OmegaConf

    from maya_asr.data.rehearsal import render_table, run_rehearsal
    from maya_asr.training.data import sampler_config

    index = args.index or ensure_index(
        REPO / f"artifacts/rehearsal/index_{args.rows}.parquet", args.rows, args.pool
    )
    cfg = OmegaConf.load(args.config)
    prod_tok = Path(cfg.model.tokenizer.dir) / "tokenizer.model"
    vocab = args.vocab_size
    if prod_tok.exists():
        import sentencepiece as spm

        vocab = spm.SentencePieceProcessor(model_file=str(prod_tok)).get_piece_size()
    config = sampler_config(cfg, vocab)
    epochs = tuple(sorted({e for e in (1, 3, 10) if e <= args.epochs} | {args.epochs}))
    result = run_rehearsal(
        index,
        list(cfg.model.languages),
        config,
        args.tokenizer if args.tokenizer.exists() else None,
        ranks=args.ranks,
        coverage_epochs=epochs,
        loader_workers=args.loader_workers,
        loader_seconds=args.loader_seconds,
        log=lambda m: print(m, flush=True),
    )
    result["config"] = str(args.config)
    for key, path in (("row_lookup", args.lookup_json), ("prod_stages", args.stages_json)):
        if path.exists():  # measured by its own script (make rehearsal runs both first)
            result[key] = {"from": str(path), **json.loads(path.read_text())}
    result["vocab_size"] = vocab
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(render_table(result))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
