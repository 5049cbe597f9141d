"""Two CPU processes (gloo) through encoder freeze -> unfreeze and the CTC ramp from weight 0."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_rank_ddp_keeps_ranks_identical_without_unused_parameter_errors(
    en_tokenizer_dir, tmp_path
):
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ)
        env.update(
            RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", NODE_RANK="0",
            MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1",
            PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]),
        )  # fmt: skip
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HERE / "ddp_worker.py"), str(en_tokenizer_dir), str(tmp_path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs = [p.communicate(timeout=600)[0] for p in procs]
    for rank, (p, log) in enumerate(zip(procs, logs, strict=True)):
        assert p.returncode == 0, f"rank {rank} failed:\n{log[-4000:]}"
        assert "unused parameters" not in log

    rows = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert [r["step"] for r in rows[0]] == [1, 2, 3, 4, 5]
    assert [r["frozen"] for r in rows[0]] == [True, True, False, False, False]
    assert [r["ctc"] for r in rows[0]] == pytest.approx([0.0, 0.15, 0.3, 0.3, 0.3])
    for a, b in zip(rows[0], rows[1], strict=True):  # every parameter, every step, bit for bit
        for key in a["state"]:
            assert torch.equal(a["state"][key], b["state"][key]), (a["step"], key)
    # While frozen, the encoder-only buckets are not all-reduced (SkipFrozenAllReduce).
    comm = torch.load(tmp_path / "comm0.pt", weights_only=False)  # (reduced, skipped) per step
    assert len(comm) == 5
    print(f"all-reduced bytes per step (reduced, skipped): {comm}")
    assert all(skipped > 0 for _, skipped in comm[:2]) and all(s == 0 for _, s in comm[2:])
    assert all(comm[0][0] < reduced for reduced, _ in comm[2:])
    # The encoder did not move while frozen and moved (identically) once unfrozen.
    enc = [k for k in rows[0][0]["state"] if k.startswith("encoder.") and k.endswith("weight")]
    assert all(torch.equal(rows[0][0]["state"][k], rows[0][1]["state"][k]) for k in enc)
    assert any(not torch.equal(rows[0][1]["state"][k], rows[0][2]["state"][k]) for k in enc)
