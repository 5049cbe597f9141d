"""Progress figures of a training run: the progress bar's, and plain log lines off a terminal."""

from __future__ import annotations

import io
import re

import lightning.pytorch as pl
import torch

from maya_asr.training.callbacks import AudioThroughput, PlainProgressLog, interactive


def test_skip_count_is_the_number_of_lines_workers_appended(tmp_path):
    log = tmp_path / "bad_samples.rank0.jsonl"
    throughput = AudioThroughput(bad_sample_log=log)
    assert throughput.skipped() == 0  # no file yet: nothing skipped
    log.write_text('{"row": 1}\n{"row": 7}\n{"row": 9}\n')
    assert throughput.skipped() == 3
    assert AudioThroughput().skipped() == 0


class _Toy(pl.LightningModule):
    """A one-weight regression: the smallest thing Lightning trains."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.w(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def _toy_run(callback, tmp_path, steps: int, accumulate: int):
    x = torch.linspace(0, 1, 64).unsqueeze(1)
    loader = torch.utils.data.DataLoader(list(zip(x, 2 * x, strict=True)), batch_size=4)
    trainer = pl.Trainer(
        max_steps=steps, accumulate_grad_batches=accumulate, log_every_n_steps=2,
        enable_progress_bar=False, logger=False, enable_checkpointing=False,
        enable_model_summary=False, callbacks=[callback], default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(_Toy(), loader)


def test_plain_log_writes_one_line_every_n_optimizer_steps(tmp_path):
    lines: list[str] = []
    _toy_run(PlainProgressLog(every_n_steps=2, log=lines.append), tmp_path, steps=6, accumulate=3)
    # one line per 2 optimizer steps, not per micro-batch (3 micro-batches per step here)
    assert [ln.split()[1] for ln in lines] == ["2/6", "4/6", "6/6"]
    for ln in lines:
        assert re.fullmatch(
            r"step \d+/6 \(\d+%\) loss [\d.e+-]+ lr 5\.0e-02 [\d.e+-]+ step/s "
            r"elapsed \d+:\d\d:\d\d eta \d+:\d\d:\d\d",
            ln,
        ), ln
        assert "\r" not in ln


def test_a_file_or_pipe_is_not_interactive(tmp_path):
    with open(tmp_path / "log.txt", "w") as f:
        assert not interactive(f)
    assert not interactive(io.StringIO())
