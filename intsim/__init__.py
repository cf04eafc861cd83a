"""intsim: a bit-exact integer-arithmetic training simulator.

Public namespaces: ``intsim`` (number formats, kernels, engine, CLI),
``intsim.models`` (ResNet-32, FC nets) and ``intsim.cil`` (class-incremental
learning methods).
"""
import os as _os

# Numba's OpenMP threads spin after each parallel region and starve OpenBLAS's
# threads when the two alternate (a 60x slowdown was measured here); passive
# waiting fixes it. setdefault keeps a user's own choice.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from intsim.arith import FP, HDQT, LUQ  # noqa: E402
from intsim import nn, optim  # noqa: E402,F401
