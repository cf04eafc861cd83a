"""Undo a small glibc trim threshold that makes NumPy's large temporaries slow.

Dask's nanny starts every worker process with ``MALLOC_TRIM_THRESHOLD_=65536``
(distributed's ``nanny.pre-spawn-environ``, meant to return memory to the OS).
Setting it also switches off glibc's dynamic mmap threshold, so every array
above 128 KiB is mmap'd and unmapped again, and its pages fault in on every
use: an intsim run (many short-lived 0.1-10 MB arrays per step) then took
1.5-2.5x as long (docs/sweeps.md, "Measured on this machine"). Results do not
depend on it; only where malloc puts memory.

glibc's default dynamic thresholds fault less, but not little: they still trim the
heap top after each step's peak, so :func:`fix_heap_thresholds` sets the same fixed
thresholds when the process has neither of glibc's variables set.
"""
from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: fixed thresholds: arrays up to 256 MiB come from (and return to) the heap, which keeps
#: up to 512 MiB of freed memory at its top. ResNet-32's unfolded convolution inputs are
#: 75 MB at batch 128; mapped afresh each step, their pages faulted in every time
MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 512 << 20


def restore_heap_reuse(environ=None) -> bool:
    """Raise glibc's mmap/trim thresholds when ``MALLOC_TRIM_THRESHOLD_`` was set
    small for this process (Dask workers). Returns True when it changed them
    (False: not set, not small, or not glibc)."""
    env = os.environ if environ is None else environ
    try:
        small = int(env.get("MALLOC_TRIM_THRESHOLD_", "")) < TRIM_THRESHOLD
    except ValueError:
        return False
    if not small or not sys.platform.startswith("linux"):
        return False
    return _set_thresholds()


#: glibc's own variables for the thresholds: a user who sets one keeps glibc's handling
_USER_VARS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


def fix_heap_thresholds(environ=None) -> bool:
    """Fixed mmap/trim thresholds (:data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD`) when the
    process has neither of glibc's variables set. Returns True when it set them.

    glibc's default dynamic thresholds still return the top of the heap to the OS
    whenever a step's peak of large temporaries has passed (twice the largest array
    freed), so the next step faults those pages in again: an HDQT transformer step
    (many 0.1-2 MB quantized and transformed copies) took about 6000 page faults and
    10-15 ms of system time a step, its FP step under 100 faults at its fastest.
    Results do not depend on it; only where malloc puts memory."""
    env = os.environ if environ is None else environ
    if any(v in env for v in _USER_VARS) or not sys.platform.startswith("linux"):
        return False
    return _set_thresholds()


def _set_thresholds() -> bool:
    """glibc's mmap and trim thresholds to MMAP_THRESHOLD and TRIM_THRESHOLD (mallopt);
    False when this is not glibc or it refuses."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return bool(ok and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
