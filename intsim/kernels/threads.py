"""How many threads a run uses: Numba's parallel kernels and OpenBLAS (NumPy's BLAS).

One run uses every core it may run on by default. ``intsim train --threads N``
(or ``threads = N`` in its ``--config`` file, or the environment variable
``INTSIM_THREADS``) sets both pools to N. :func:`set_threads` applies a count
to the running process; nothing is kept here, the counts live in Numba and
OpenBLAS themselves.

Two environment defaults keep concurrent runs (two ``intsim train ... &`` on
a small machine) from stalling each other: ``OMP_WAIT_POLICY=PASSIVE`` and
``OPENBLAS_THREAD_TIMEOUT=4``, set by the entry points before NumPy or Numba
load (:data:`intsim.kernels.runtime.ENV_DEFAULTS`).

A run started without a thread count shares the cores (:func:`default_threads`):
while a run trains it holds a lock on a file named by its process id in
:func:`active_runs_dir`, and a new run takes the smaller of

- its share among the intsim runs: ``cores // (other runs active + 1)``, so
  two runs started side by side on two cores take one each instead of each
  starting a full pool (the marks count a run the moment it starts), and
- the cores the machine's other work leaves idle: ``cores - round(load)``,
  where ``load`` is the 1-minute load average (``os.getloadavg``) scaled to
  the cores this process may use (``load * cores / os.cpu_count()``), so
  other programs' work counts too (the average follows new work within a
  minute),

and at least one. The count is fixed at start and recorded in the run's
config.toml (float BLAS bits can depend on it); ``--resume`` reuses it.
``--threads`` is at most the cores this process may use.

See docs/results.md, "Two runs side by side", for the measurements.
"""
from __future__ import annotations

import ctypes
import glob
import os
import tempfile
from pathlib import Path
from typing import Mapping

import numba
import numpy as np

try:
    import fcntl
except ImportError:                 # not on Windows: no active-run marks
    fcntl = None

ENV_VAR = "INTSIM_THREADS"

_OPENBLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads")
_OPENBLAS_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                     "openblas_get_num_threads64_", "openblas_get_num_threads")


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


def machine_load() -> float:
    """The machine's 1-minute load average scaled to the cores this process may use
    (``load * available_cores() / os.cpu_count()``); 0.0 where the system gives none."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0
    return max(0.0, load) * available_cores() / max(1, os.cpu_count() or 1)


def auto_threads(others: int = 0, load: float | None = None) -> int:
    """The thread count of a run that sets none: the smaller of its share among the
    intsim runs, ``cores // (others + 1)``, and the cores not busy,
    ``cores - round(load)`` (``load``: :func:`machine_load` unless given), at least 1.
    ``others``: the other intsim runs active (:class:`ActiveRun`)."""
    cores = available_cores()
    load = machine_load() if load is None else max(0.0, float(load))
    share = cores // (max(0, int(others)) + 1)
    return max(1, min(share, cores - round(load)))


def default_threads(environ: Mapping[str, str] | None = None, others: int = 0,
                    load: float | None = None) -> int:
    """``INTSIM_THREADS`` if set (ValueError when it is not a count), else
    :func:`auto_threads` (``others`` other intsim runs, the machine's ``load``)."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_VAR, "").strip()
    if raw:
        return parse_threads(raw, ENV_VAR)
    return auto_threads(others, load)


def active_runs_dir() -> Path:
    """Folder of this user's active-run lock files (in the system temp folder)."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"intsim-{uid}" / "active"


class ActiveRun:
    """Marks this process as a running intsim run while the ``with`` block is open.

    The mark is ``active_runs_dir()/<pid>``, held under an exclusive ``flock``;
    the kernel drops the lock when the process dies, so a killed run's file is
    recognised as stale (and removed) by the next :meth:`others` call. Where
    ``flock`` or the folder is unavailable the mark is skipped and
    :meth:`others` returns 0.
    """

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else active_runs_dir()
        self._fd: int | None = None
        self._path: Path | None = None

    def __enter__(self) -> "ActiveRun":
        if fcntl is None:
            return self
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._path = self.folder / str(os.getpid())
            fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._fd = fd
        except OSError:
            self._fd, self._path = None, None
        return self

    def others(self) -> int:
        """How many other processes hold an active-run mark now."""
        if fcntl is None:
            return 0
        try:
            names = os.listdir(self.folder)
        except OSError:
            return 0
        n = 0
        for name in names:
            if self._path is not None and name == self._path.name:
                continue
            p = self.folder / name
            try:
                fd = os.open(p, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                n += 1                      # locked: that run is alive
            else:
                try:
                    p.unlink()              # stale mark of a run that died
                except OSError:
                    pass
            finally:
                os.close(fd)
        return n

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            try:
                if self._path is not None:
                    self._path.unlink()
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None


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
    base = os.path.dirname(np.__file__)
    for pat in (os.path.join(base, "..", "numpy.libs", "lib*openblas*"),
                os.path.join(base, ".dylibs", "lib*openblas*")):
        for p in sorted(glob.glob(pat)):
            if p not in paths:
                paths.append(p)
    return paths


def _numpy_libs_dir() -> str:
    """The folder of the libraries NumPy's wheel bundles (its OpenBLAS among them)."""
    return os.path.realpath(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs"))


def _lib_function(lib, names):
    """The first function of ``names`` that the ctypes library ``lib`` has, or None."""
    return next((getattr(lib, fn) for fn in names if hasattr(lib, fn)), None)


def _openblas_libs():
    """The OpenBLAS libraries found (ctypes handles), NumPy's first, each file once.

    A process may hold several: SciPy's wheels bring their own OpenBLAS, loaded
    beside NumPy's as soon as e.g. scipy.special is imported, and NumPy's
    products run on NumPy's."""
    np_dir = _numpy_libs_dir()
    paths = sorted({os.path.realpath(p) for p in _openblas_candidates()},
                   key=lambda p: (not p.startswith(np_dir), p))
    libs = []
    for path in paths:
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libs


def _openblas_call(names, *args, every=False):
    """Call the first function of ``names`` found in NumPy's OpenBLAS (or the first
    OpenBLAS found), or with ``every`` in each OpenBLAS loaded; the first result, or
    None when there is none."""
    out = None
    for lib in _openblas_libs():
        fn = _lib_function(lib, names)
        if fn is not None:
            r = int(fn(*args) or 0)
            out = r if out is None else out
        if out is not None and not every:
            break
    return out


def openblas_threads() -> int | None:
    """The thread count of NumPy's OpenBLAS (None when no OpenBLAS is found)."""
    return _openblas_call(_OPENBLAS_GETTERS)


def set_threads(n: int, blas: int | None = None) -> dict:
    """Use ``n`` threads in Numba's parallel kernels and ``blas`` (default ``n``) in OpenBLAS.

    Numba's count is capped at ``numba.config.NUMBA_NUM_THREADS`` (the pool
    size fixed at start-up). Returns ``{"numba": k, "openblas": m or None}``,
    the counts in force afterwards (None: no OpenBLAS found, e.g. NumPy built
    on another BLAS, whose own variables such as OMP_NUM_THREADS then apply).
    """
    n = parse_threads(n)
    k = min(n, int(numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(k)
    b = n if blas is None else parse_threads(blas)
    found = _openblas_call(_OPENBLAS_SETTERS, ctypes.c_int(b), every=True) is not None
    return {"numba": int(numba.get_num_threads()),
            "openblas": openblas_threads() if found else None}


_numpy_blas = None


def _numpy_blas_functions():
    """(set, get) of NumPy's own OpenBLAS thread count (ctypes), or None; looked up once."""
    global _numpy_blas
    if _numpy_blas is None:
        found = ()
        for lib in _openblas_libs():
            if not os.path.realpath(lib._name).startswith(_numpy_libs_dir()):
                continue
            s = _lib_function(lib, _OPENBLAS_SETTERS)
            g = _lib_function(lib, _OPENBLAS_GETTERS)
            if s is not None and g is not None:
                found = (s, g)
                break
        _numpy_blas = found
    return _numpy_blas or None


class numpy_blas_single:
    """Context: NumPy's OpenBLAS at one thread inside, its count restored after, so that
    several Python threads can each run products of their own (NumPy releases the GIL
    around them) without OpenBLAS's threads nesting. ``ok``: whether NumPy's OpenBLAS
    was found (without it the count is left alone and callers stay on one thread)."""

    def __enter__(self):
        fns = _numpy_blas_functions()
        self.ok = fns is not None
        if self.ok:
            self._set, get = fns
            self._was = int(get())
            if self._was != 1:
                self._set(ctypes.c_int(1))
        return self

    def __exit__(self, *exc):
        if self.ok and self._was != 1:
            self._set(ctypes.c_int(self._was))
