"""One rank of the 2-process CPU DDP test (run by test_ddp.py; not a test module itself).

Usage: RANK=r WORLD_SIZE=2 LOCAL_RANK=r MASTER_ADDR=127.0.0.1 MASTER_PORT=p \
       python ddp_worker.py <tokenizer_dir> <out_dir>
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import DDPStrategy
from model_support import smoke_config

from maya_asr.models import MayaHybridTDTCTCModel
from maya_asr.training.ddp_comm import SkipFrozenAllReduce


class _Snapshots(pl.Callback):
    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rows.append(
            {
                "step": trainer.global_step,
                "ctc": pl_module.ctc_loss_weight,
                "frozen": pl_module.encoder_frozen,
                # Parameters only: BatchNorm running stats are per-rank buffers (DDP broadcasts
                # rank 0's at the next forward; production training uses sync_batchnorm).
                "state": {k: v.detach().clone() for k, v in pl_module.named_parameters()},
            }
        )


def main() -> None:
    tokenizer_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    rank = int(os.environ["RANK"])
    torch.manual_seed(0)  # same initial weights on both ranks (DDP also broadcasts rank 0's)
    cfg = smoke_config(
        tokenizer_dir, encoder_freeze_steps=2, ctc_warmup_steps=2, language_dropout=0.5
    )
    model = MayaHybridTDTCTCModel(cfg)
    g = torch.Generator().manual_seed(100 + rank)  # different data on each rank
    batches = []
    for i in range(5):
        # rank 1 has batches with no language at all: the embedding must still be "used".
        lang = torch.tensor([i % 12, 3]) if rank == 0 else torch.tensor([-1, -1])
        batches.append(
            (torch.randn(2, 12000, generator=g) * 0.1, torch.tensor([12000, 9000]),
             torch.randint(0, model.tokenizer.vocab_size, (2, 5), generator=g),
             torch.tensor([5, 4]), lang)
        )  # fmt: skip
    snaps, comm = _Snapshots(), SkipFrozenAllReduce()
    trainer = pl.Trainer(
        max_steps=5, accelerator="cpu", devices=2, num_nodes=1,
        strategy=DDPStrategy(process_group_backend="gloo", find_unused_parameters=False),
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[snaps, comm], use_distributed_sampler=False,
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    torch.save(snaps.rows, out_dir / f"rank{rank}.pt")
    torch.save(comm.per_step, out_dir / f"comm{rank}.pt")


if __name__ == "__main__":
    main()
