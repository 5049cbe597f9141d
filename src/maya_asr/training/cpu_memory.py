"""Keep freed memory inside the process on CPU-only runs.

Why: glibc's malloc serves every block above its mmap threshold (128 KiB to 32 MiB) with a fresh
``mmap`` and hands it back with ``munmap`` on free. A CPU training step allocates and frees
dozens of tensors of tens of MB (the TDT joint alone is B x T x U x V floats), so each one is
page-faulted in again, 4 KiB at a time, on every step: ~55,000 faults a demo step. Kept, the
heap is faulted in once and reused: the demo model's step alone went from 0.50 s to 0.40 s on two
idle cores (``scripts/bench_cpu_alloc.py``; 1.5x while another job shared the cores), and 200
steps of ``configs/train/demo_cpu.yaml`` from 2 min 0 s to 1 min 52 s, the same losses step for
step (the data loader and logging dilute it). PyTorch's CPU tuning guide gives the same advice
("switch memory allocator": jemalloc or TCMalloc); glibc's own knobs (``mallopt``) do it
without preloading a library, so nothing new has to be installed.

The price: memory the process freed stays mapped, so its resident size stays at its peak
(the demo step's process: 1,460 MiB flat after four steps, against 1,070-1,120 MiB). That is the
right trade for one training process on a machine of its own; GPU runs (whose big tensors
live in CUDA's caching allocator) do not call this.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

# Free memory is returned to the OS only once this much sits unused at the top of the heap.
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory(trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Make glibc malloc serve large blocks from its heap (no per-tensor ``mmap``) and keep up
    to ``trim_threshold`` bytes of freed memory for reuse. Process-wide, applies to allocations
    made from now on, and is inherited by forked DataLoader workers.

    Returns False (and changes nothing) where the C library has no ``mallopt`` (not glibc).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        log.debug("no mallopt in the C library %r: allocator left as it is", name)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1
    if not ok:  # glibc accepts both; a C library with a stub mallopt may not
        log.warning("mallopt refused the CPU allocator settings: large tensors may be mmapped")
    return ok
