"""The loader inside a Lightning fit: worker processes, set_epoch, and consumed-batch resume."""

from __future__ import annotations

import pytest
import torch
from loader_factories import corpus_shards, index_rows, train_spm, write_index

from lf_asr.data.dataset import ProductionDataset
from lf_asr.data.production_sampler import ProductionBatchSampler

LANGS = ("hi", "bn", "ta", "te", "mr", "gu", "kn", "ml", "pa", "or", "as", "en")


@pytest.mark.integration
def test_lightning_fit_with_workers_and_resume_from_the_consumed_count(tiny_corpus, tmp_path):
    import lightning as L

    rows = index_rows(corpus_shards(tiny_corpus))
    index = write_index(rows, tmp_path / "index.parquet")
    model_path = train_spm([r["transcript"] for r in rows], tmp_path / "spm")

    def make_sampler():
        return ProductionBatchSampler.from_parquet(
            index, languages=LANGS, max_batch_size=4, temperature=1.0, seed=3
        )

    sampler = make_sampler()
    loader = torch.utils.data.DataLoader(
        ProductionDataset(index, LANGS, model_path), batch_size=None, sampler=sampler,
        num_workers=2, persistent_workers=True,
    )  # fmt: skip
    saved: list[dict] = []
    seen: list[tuple[int, int]] = []

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            audio, audio_lens, tokens, _token_lens, langs = batch
            assert audio.shape[0] == audio_lens.shape[0] == tokens.shape[0] == langs.shape[0]
            assert ((langs >= 0) & (langs < len(LANGS))).all()
            seen.append((self.current_epoch, audio.shape[0]))
            return (self.w * audio.mean()).sum() + self.w.pow(2).sum()

        def on_train_batch_end(self, outputs, batch, batch_idx):
            # What a checkpoint callback stores: the batches the step consumed, not prefetched.
            saved.append(sampler.state_dict(batches_consumed=batch_idx + 1))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", devices=1, use_distributed_sampler=False, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(Tiny(), loader)

    per_epoch = len(make_sampler())
    assert [e for e, _ in seen] == [0] * per_epoch + [1] * per_epoch
    assert sampler.epoch == 1, "Lightning called set_epoch"

    mid = saved[per_epoch + 2]  # epoch 1, three batches consumed
    assert (mid["epoch"], mid["batches_consumed"]) == (1, 3)
    reference = make_sampler()
    reference.set_epoch(1)
    resumed = make_sampler()
    resumed.load_state_dict(mid)
    resumed.set_epoch(1)
    assert list(resumed) == list(reference)[3:]
