"""intsim.arith: the arithmetics a layer's matmuls run under (layer 2).

kinds.py holds the arithmetic configurations (FP, HDQT, LUQ); qmatmul.py the
quantized matmul passes they share (forward quantizers, tiled accumulation,
the HDQT and LUQ backward) and the per-layer audit.
"""
from intsim.arith.kinds import ARITHS, FP, HDQT, LUQ, register_arith

__all__ = ["ARITHS", "FP", "HDQT", "LUQ", "register_arith"]
