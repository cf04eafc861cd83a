"""Telling the user when a kernel is being compiled: a cold Numba cache costs
tens of seconds.

:func:`notify_compiles`: a context manager calling ``notify()`` once, the
first time Numba compiles something inside it (a cache miss; loading from the
cache is silent). Where the cache lives is set by
:func:`intsim.kernels.runtime.configure_cache_dir`.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable

from numba.core import event

MESSAGE = "compiling kernels (first run only)..."


@contextlib.contextmanager
def notify_compiles(notify: Callable[[], None]):
    """Call ``notify()`` once, at the first Numba compilation inside the block.

    Yields an object whose ``compiled`` attribute tells whether anything was
    compiled and ``seconds`` the wall time of the outermost compilations.
    """

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
