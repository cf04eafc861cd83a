"""intsim: a bit-exact integer-arithmetic training simulator.

Public namespaces: ``intsim`` (number formats, kernels, engine, CLI),
``intsim.models`` (ResNet-32, FC nets) and ``intsim.cil`` (class-incremental
learning methods).
"""
import os as _os

from intsim.kernels.jitcache import configure_cache_dir as _configure_cache_dir
from intsim.kernels.threads import configure_environment as _configure_environment

# Before NumPy/Numba load: idle OpenMP and OpenBLAS threads sleep instead of
# spinning (spinning threads starved the other pool's threads, and the other
# run's, 30-60x slowdowns measured here), and compiled kernels are cached in a
# per-user folder when the package's own folder is read-only. A user's own
# values win. See intsim.kernels.threads and intsim.kernels.jitcache.
_configure_environment()
_configure_cache_dir(_os.path.dirname(_os.path.abspath(__file__)))

__version__ = "0.1.0"

from intsim.arith import FP, HDQT, LUQ  # noqa: E402
from intsim import nn, optim  # noqa: E402

__all__ = ["FP", "HDQT", "LUQ", "nn", "optim", "run", "RunConfig", "resolve", "RunHooks"]


def __getattr__(name):
    # The driver needs the models, the CIL methods and the data; load them on first use.
    if name in ("run", "RunHooks", "RunInterrupted"):
        from intsim.app import driver
        return getattr(driver, name)
    if name in ("RunConfig", "resolve"):
        from intsim.app import config
        return getattr(config, name)
    raise AttributeError(f"module 'intsim' has no attribute {name!r}")
