"""intsim: a bit-exact integer-arithmetic training simulator.

Public namespaces: ``intsim`` (number formats, kernels, engine, CLI),
``intsim.models`` (ResNet-32, FC nets) and ``intsim.cil`` (class-incremental
learning methods).
"""
__version__ = "0.1.0"

from intsim.arith import FP, HDQT, LUQ  # noqa: E402
from intsim import nn, optim  # noqa: E402,F401
