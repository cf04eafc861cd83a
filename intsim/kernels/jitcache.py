"""Numba's on-disk cache of intsim's kernels: where it lives, and telling the user
when a kernel is being compiled (a cold cache costs tens of seconds).

- :func:`configure_cache_dir` (called by ``intsim/__init__.py`` before Numba
  loads): when the package's own ``__pycache__`` is not writable (a read-only
  install) and ``NUMBA_CACHE_DIR`` is not set, it points Numba at a per-user
  directory, ``$XDG_CACHE_HOME/intsim/numba`` (default ``~/.cache/...``),
  or a per-user folder in the temp directory when that cannot be written
  either. Numba itself would fall back to ``~/.cache/numba``, but when that
  is not writable every ``cache=True`` kernel fails to import at all.
- :func:`notify_compiles`: a context manager calling ``notify()`` once, the
  first time Numba compiles something inside it (a cache miss; loading from
  the cache is silent).
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from typing import Callable, MutableMapping

CACHE_ENV = "NUMBA_CACHE_DIR"
MESSAGE = "compiling kernels (first run only)..."


def writable_dir(path: str) -> bool:
    """True if ``path`` exists or can be created, and a file can be written in it."""
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False


def user_cache_dirs(environ: MutableMapping[str, str]) -> list[str]:
    """Candidate per-user cache folders, preferred first."""
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return [os.path.join(base, "intsim", "numba"),
            os.path.join(tempfile.gettempdir(), f"intsim-numba-{uid}")]


def configure_cache_dir(package_dir: str, environ: MutableMapping[str, str] | None = None
                        ) -> str | None:
    """Set ``NUMBA_CACHE_DIR`` when ``package_dir/__pycache__`` is not writable.

    A user's own ``NUMBA_CACHE_DIR`` is kept. Returns the folder set, or None
    when nothing was changed. If Numba is already imported, its config is
    updated too (kernels decorated later then use the folder).
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


@contextlib.contextmanager
def notify_compiles(notify: Callable[[], None]):
    """Call ``notify()`` once, at the first Numba compilation inside the block.

    Yields an object whose ``compiled`` attribute tells whether anything was
    compiled and ``seconds`` the wall time of the outermost compilations.
    """
    from numba.core import event

    class _Listener(event.Listener):
        def __init__(self):
            self.compiled = False
            self.seconds = 0.0
            self._depth = 0
            self._t0 = 0.0

        def on_start(self, ev):
            if self._depth == 0:
                self._t0 = time.perf_counter()
            self._depth += 1
            if not self.compiled:
                self.compiled = True
                notify()

        def on_end(self, ev):
            self._depth = max(0, self._depth - 1)
            if self._depth == 0:
                self.seconds += time.perf_counter() - self._t0

    with event.install_listener("numba:compile", _Listener()) as listener:
        yield listener
