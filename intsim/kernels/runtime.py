"""Process setup of intsim's entry points: thread wait policies, the Numba cache
folder, glibc's heap thresholds.

:func:`configure_runtime` does all three. ``import intsim`` does none of them
(it changes no environment variable); the entry points call it:

- the ``intsim`` console script (:mod:`intsim.cli.main`), before it loads
  NumPy or Numba;
- :func:`intsim.run` (:func:`intsim.app.driver.run`), first thing;
- the workers of ``intsim sweep`` (:mod:`intsim.app.sweep.executors`): the
  local pool's processes call it at start, before NumPy; a Dask LocalCluster's
  worker processes inherit its environment defaults from the client; every
  run (:func:`intsim.app.sweep.worker.run_one`) calls it again.

This module imports neither NumPy nor Numba, so the console script can import
it before them.
"""
from __future__ import annotations

import os
import sys
import tempfile
from typing import MutableMapping

from intsim.kernels.malloc import fix_heap_thresholds, restore_heap_reuse

#: Environment defaults, read once by OpenMP and OpenBLAS when they load (a user's
#: own values win). Both keep concurrent runs (two ``intsim train ... &`` on a
#: small machine) from stalling each other:
#:
#: - ``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads (Numba's ``omp`` layer)
#:   sleep at once instead of spinning.
#: - ``OPENBLAS_THREAD_TIMEOUT=4``: idle OpenBLAS worker threads sleep after
#:   2^4 cycles instead of the default 2^28 (about 0.1 s), which they would
#:   otherwise spend in a ``sched_yield`` loop after every BLAS call, taking
#:   the cores the other run needs.
ENV_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}

CACHE_ENV = "NUMBA_CACHE_DIR"

#: the folder whose ``__pycache__`` tells whether the install is writable (intsim/)
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def configure_environment(environ: MutableMapping[str, str] | None = None) -> dict:
    """Set :data:`ENV_DEFAULTS` in ``environ`` (default ``os.environ``) where unset.

    Returns the variables set. Only effective before NumPy's OpenBLAS and
    Numba's OpenMP runtime are loaded (they read these variables once).
    """
    env = os.environ if environ is None else environ
    set_now = {k: v for k, v in ENV_DEFAULTS.items() if k not in env}
    env.update(set_now)
    return set_now


def writable_dir(path: str) -> bool:
    """True if ``path`` exists or can be created, and a file can be written in it."""
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False


def user_cache_dirs(environ: MutableMapping[str, str]) -> list[str]:
    """Candidate per-user Numba cache folders, preferred first."""
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return [os.path.join(base, "intsim", "numba"),
            os.path.join(tempfile.gettempdir(), f"intsim-numba-{uid}")]


def configure_cache_dir(package_dir: str = PACKAGE_DIR,
                        environ: MutableMapping[str, str] | None = None) -> str | None:
    """Set ``NUMBA_CACHE_DIR`` when ``package_dir/__pycache__`` is not writable.

    A read-only install: Numba would fall back to ``~/.cache/numba``, and
    when that is not writable either every ``cache=True`` kernel fails to
    import at all. The folder set is ``$XDG_CACHE_HOME/intsim/numba`` (default
    ``~/.cache/...``), else a per-user folder in the temp directory. A user's
    own ``NUMBA_CACHE_DIR`` is kept. Returns the folder set, or None when
    nothing was changed. If Numba is already imported (and ``environ`` is
    ``os.environ``), its config is updated too: kernels defined afterwards use
    the folder, those already defined keep the folder they found.
    """
    env = os.environ if environ is None else environ
    if env.get(CACHE_ENV) or writable_dir(os.path.join(package_dir, "__pycache__")):
        return None
    for d in user_cache_dirs(env):
        if writable_dir(d):
            env[CACHE_ENV] = d
            numba_config = getattr(sys.modules.get("numba"), "config", None)
            if numba_config is not None and environ is None:
                numba_config.CACHE_DIR = d
            return d
    return None


def configure_runtime() -> dict:
    """The process setup of intsim's entry points; a user's own environment values win.

    1. :data:`ENV_DEFAULTS` (``OMP_WAIT_POLICY``, ``OPENBLAS_THREAD_TIMEOUT``)
       where unset (:func:`configure_environment`);
    2. ``NUMBA_CACHE_DIR`` when the install is read-only
       (:func:`configure_cache_dir`);
    3. glibc's mmap/trim thresholds back up when ``MALLOC_TRIM_THRESHOLD_`` was
       set small, as Dask's nanny does for its workers
       (:func:`intsim.kernels.malloc.restore_heap_reuse`), and fixed at the same
       values when neither glibc variable is set
       (:func:`intsim.kernels.malloc.fix_heap_thresholds`: the dynamic defaults
       fault the pages of a step's large temporaries in again every step).

    What takes effect depends on what the process has loaded already:

    - the ``intsim`` console script and the local sweep pool's workers call it
      before NumPy and Numba load: everything takes effect;
    - a library user calling :func:`intsim.run` (or a Dask worker starting a
      run) has NumPy loaded by then: ``OPENBLAS_THREAD_TIMEOUT`` no longer
      reaches OpenBLAS (it read the environment when NumPy loaded);
      ``OMP_WAIT_POLICY`` still applies if no parallel Numba kernel has run
      yet (the OpenMP runtime starts with the first); the cache folder applies
      to kernels defined afterwards only, so a read-only install whose
      ``~/.cache`` is not writable either needs ``NUMBA_CACHE_DIR`` set before
      intsim's kernels are imported (or this function called before); the heap
      thresholds take effect at any time.

    To get all of it in a script of your own, call this before importing NumPy.
    Returns what it changed: ``{"environment": {variable: value}, "numba_cache_dir":
    folder or None, "heap_reuse": bool}``. Calling it again is harmless.
    """
    return {"environment": configure_environment(),
            "numba_cache_dir": configure_cache_dir(),
            "heap_reuse": restore_heap_reuse() or fix_heap_thresholds()}
