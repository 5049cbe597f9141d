"""Progress-bar figures of a training run."""

from __future__ import annotations

from maya_asr.training.callbacks import AudioThroughput


def test_skip_count_is_the_number_of_lines_workers_appended(tmp_path):
    log = tmp_path / "bad_samples.rank0.jsonl"
    throughput = AudioThroughput(bad_sample_log=log)
    assert throughput.skipped() == 0  # no file yet: nothing skipped
    log.write_text('{"row": 1}\n{"row": 7}\n{"row": 9}\n')
    assert throughput.skipped() == 3
    assert AudioThroughput().skipped() == 0
