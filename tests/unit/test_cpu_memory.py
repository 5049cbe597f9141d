"""keep_freed_memory: a CPU run reuses the memory of freed large tensors instead of mapping it
afresh (and page-faulting it in again) for every new tensor."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

# A training step in miniature: tensors of tens of MB made and freed, round after round. Prints
# the minor page faults of each round. mallopt is process-wide, so each setting gets its own
# interpreter.
_PROBE = textwrap.dedent(
    """
    import ctypes, resource, sys
    import torch
    # 4 KiB pages, as most machines fault them: no transparent huge pages for this process.
    ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE
    if sys.argv[1] == "keep":
        from maya_asr.training.cpu_memory import keep_freed_memory
        assert keep_freed_memory()
    faults = []
    for _ in range(8):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for n in (13 << 20, 3 << 20, 9 << 20):  # 52, 12 and 36 MiB of float32
            x = torch.ones(n)
            y = x * 2
            del x, y
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(*faults)
    """
)


def _faults(mode: str) -> list[int]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return [int(n) for n in out.stdout.split()]


@pytest.mark.slow
def test_freed_large_tensors_are_reused_without_new_page_faults():
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt and minor-fault counts are glibc/Linux")
    pages = ((52 + 12 + 36) << 20) // 4096  # one round's tensors (x; y is as large again)
    default, kept = _faults("default"), _faults("keep")
    # glibc's defaults map the big blocks afresh every round: most pages fault in again.
    assert min(default[-3:]) > pages // 2, default
    # Kept: once the first rounds have faulted the heap in, a round reuses it whole. (Not every
    # round: the heap can still grow a little when the next tensor lands past a freed gap.)
    assert min(kept[-3:]) < pages // 50, kept
