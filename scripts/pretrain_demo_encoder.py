#!/usr/bin/env python3
"""Pretrain the demo's FastConformer encoder with CTC on the pretraining corpus (CPU).

Usage:
    python scripts/pretrain_demo_encoder.py --corpus-root artifacts/demo_pretrain/shards
    python scripts/pretrain_demo_encoder.py --corpus-root /tmp/tiny --out-dir /tmp/enc \\
        --work-dir /tmp/enc_run --max-steps 20 --checkpoint-every 10

Every --checkpoint-every steps it scores the held-out utterances and overwrites
<out-dir>/encoder.pt (the encoder state dict, for maya_asr.models.load_pretrained_encoder, of the
checkpoint with the lowest held-out CER so far), curve.csv and summary.json, and
<work-dir>/last.pt; running the same command again resumes from last.pt (refused if the corpus,
held-out set or augmentation changed). <out-dir>/encoder.yaml is the encoder's config block for
the demo config. Stop it any time: encoder.pt is usable.

    python scripts/pretrain_demo_encoder.py --update-readme pretrained/demo/README.md

rewrites only the README's progress section from <out-dir>/summary.json and curve.csv.
"""

from __future__ import annotations

import argparse
import json

from maya_asr.models.pretrain_ctc import EncoderDims
from maya_asr.training.pretrain import PretrainConfig, run_pretraining, update_readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    d, c = EncoderDims(), PretrainConfig(corpus_root=".")
    add = parser.add_argument
    add("--corpus-root", help="<lang>/shard-*.tar of make_pretrain_corpus.py")
    add("--update-readme", metavar="README", help="only refresh README's progress section")
    add("--out-dir", default=str(c.out_dir), help="encoder.pt, encoder.yaml, curve.csv")
    add("--work-dir", default=str(c.work_dir), help="last.pt (resume) and the tokenizer")
    add("--n-layers", type=int, default=d.n_layers, help="conformer blocks")
    add("--d-model", type=int, default=d.d_model, help="model width")
    add("--n-heads", type=int, default=d.n_heads, help="attention heads")
    add("--ff-expansion", type=int, default=d.ff_expansion_factor, help="feed-forward factor")
    add("--subsampling-factor", type=int, default=d.subsampling_factor, help="4 or 8")
    add("--subsampling-channels", type=int, default=d.subsampling_conv_channels)
    add("--dropout", type=float, default=d.dropout, help="dropout during pretraining")
    add("--vocab-size", type=int, default=c.vocab_size, help="BPE pieces of the CTC head")
    add("--max-steps", type=int, default=c.max_steps, help="steps of the LR schedule")
    add("--stop-after", type=int, help="stop after this many more steps (schedule unchanged)")
    add("--batch-seconds", type=float, default=c.batch_seconds, help="padded audio per batch")
    add("--max-batch-size", type=int, default=c.max_batch_size, help="utterances per batch")
    add("--lr", type=float, default=c.lr, help="peak learning rate")
    add("--warmup-steps", type=int, default=c.warmup_steps, help="linear warm-up steps")
    add("--checkpoint-every", type=int, default=c.checkpoint_every, help="steps per checkpoint")
    add("--log-every", type=int, default=c.log_every, help="steps per curve row")
    add("--val-utterances", type=int, default=c.val_utterances, help="held-out utterances")
    add("--freq-masks", type=int, default=c.freq_masks, help="SpecAugment frequency masks")
    add("--time-masks", type=int, default=c.time_masks, help="SpecAugment time masks (0: off)")
    add("--seed", type=int, default=c.seed)
    add("--threads", type=int, default=c.threads, help="torch threads")
    args = parser.parse_args(argv)
    if args.update_readme:
        update_readme(args.update_readme, args.out_dir)
        return 0
    if not args.corpus_root:
        parser.error("--corpus-root is required to train")
    dims = EncoderDims(
        n_layers=args.n_layers,
        d_model=args.d_model,
        n_heads=args.n_heads,
        ff_expansion_factor=args.ff_expansion,
        subsampling_factor=args.subsampling_factor,
        subsampling_conv_channels=args.subsampling_channels,
        dropout=args.dropout,
    )
    cfg = PretrainConfig(
        corpus_root=args.corpus_root,
        out_dir=args.out_dir,
        work_dir=args.work_dir,
        dims=dims,
        vocab_size=args.vocab_size,
        max_steps=args.max_steps,
        batch_seconds=args.batch_seconds,
        max_batch_size=args.max_batch_size,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        val_utterances=args.val_utterances,
        freq_masks=args.freq_masks,
        time_masks=args.time_masks,
        seed=args.seed,
        threads=args.threads,
    )
    summary = run_pretraining(cfg, stop_after=args.stop_after, log=lambda m: print(m, flush=True))
    keys = ("step", "train_loss", "val_loss", "val_cer", "wall_s", "audio_hours_seen")
    print(json.dumps({k: summary[k] for k in keys}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
