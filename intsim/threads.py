"""How many threads a run uses: Numba's parallel kernels and OpenBLAS (NumPy's BLAS).

One run uses every core it may run on by default. ``intsim train --threads N``
(or ``threads = N`` in its ``--config`` file, or the environment variable
``INTSIM_THREADS``) sets both pools to N. :func:`set_threads` applies a count
to the running process; nothing is kept here, the counts live in Numba and
OpenBLAS themselves.

Two things keep concurrent runs (two ``intsim train ... &`` on a small
machine) from stalling each other, both set by :func:`configure_environment`
before NumPy or Numba load, as environment defaults a user can override:

- ``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads (Numba's ``omp`` layer)
  sleep at once instead of spinning.
- ``OPENBLAS_THREAD_TIMEOUT=4``: idle OpenBLAS worker threads sleep after
  2^4 cycles instead of the default 2^28 (about 0.1 s), which they would
  otherwise spend in a ``sched_yield`` loop after every BLAS call, taking
  the cores the other run needs.

See docs/results.md, "Two runs side by side", for the measurements.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys
from typing import Mapping, MutableMapping

ENV_VAR = "INTSIM_THREADS"

#: Environment defaults set before NumPy/Numba load (a user's own values win).
ENV_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}

_OPENBLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads")
_OPENBLAS_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                     "openblas_get_num_threads64_", "openblas_get_num_threads")


def configure_environment(environ: MutableMapping[str, str] | None = None) -> None:
    """Set :data:`ENV_DEFAULTS` in ``environ`` (default ``os.environ``) where unset.

    Called by ``intsim/__init__.py``; only effective before NumPy's OpenBLAS and
    Numba's OpenMP runtime are loaded (they read these variables once).
    """
    env = os.environ if environ is None else environ
    for k, v in ENV_DEFAULTS.items():
        env.setdefault(k, v)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def parse_threads(value, source: str = "threads") -> int:
    """A thread count from an option, TOML value or environment string.

    Returns an int >= 1; raises ValueError with a one-line message naming
    ``source`` otherwise.
    """
    if isinstance(value, bool):
        raise ValueError(f"{source} must be an integer >= 1, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            raise ValueError(f"{source} must be an integer >= 1, got {value!r}")
        value = int(text)
    if not isinstance(value, int):
        raise ValueError(f"{source} must be an integer >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{source} must be an integer >= 1, got {value}")
    return value


def default_threads(environ: Mapping[str, str] | None = None) -> int:
    """``INTSIM_THREADS`` if set (ValueError when it is not a count), else all cores."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_VAR, "").strip()
    if raw:
        return parse_threads(raw, ENV_VAR)
    return available_cores()


def _openblas_candidates() -> list[str]:
    """Paths of OpenBLAS libraries: those mapped into this process, then NumPy's wheel copy."""
    paths: list[str] = []
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                p = line.split()[-1] if line.strip() else ""
                if "openblas" in os.path.basename(p).lower() and p not in paths:
                    paths.append(p)
    except OSError:
        pass
    np_mod = sys.modules.get("numpy")
    if np_mod is not None:
        base = os.path.dirname(np_mod.__file__)
        for pat in (os.path.join(base, "..", "numpy.libs", "lib*openblas*"),
                    os.path.join(base, ".dylibs", "lib*openblas*")):
            for p in sorted(glob.glob(pat)):
                if p not in paths:
                    paths.append(p)
    return paths


def _openblas_call(names, *args):
    """Call the first function of ``names`` found in a loaded OpenBLAS; None if none."""
    for path in _openblas_candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for fn in names:
            if hasattr(lib, fn):
                return int(getattr(lib, fn)(*args) or 0)
    return None


def openblas_threads() -> int | None:
    """OpenBLAS's current thread count (None when no OpenBLAS is found)."""
    import numpy  # noqa: F401  (loads NumPy's OpenBLAS)
    return _openblas_call(_OPENBLAS_GETTERS)


def set_threads(n: int) -> dict:
    """Use ``n`` threads in Numba's parallel kernels and in OpenBLAS.

    Numba's count is capped at ``numba.config.NUMBA_NUM_THREADS`` (the pool
    size fixed at start-up). Returns ``{"numba": k, "openblas": m or None}``,
    the counts in force afterwards (None: no OpenBLAS found, e.g. NumPy built
    on another BLAS, whose own variables such as OMP_NUM_THREADS then apply).
    """
    n = parse_threads(n)
    import numba
    import numpy  # noqa: F401
    k = min(n, int(numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(k)
    found = _openblas_call(_OPENBLAS_SETTERS, ctypes.c_int(n)) is not None
    return {"numba": int(numba.get_num_threads()),
            "openblas": openblas_threads() if found else None}
