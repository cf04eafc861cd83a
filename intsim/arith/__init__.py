"""intsim.arith: the arithmetics a layer's matmuls run under (layer 2).

kinds.py holds the integer arithmetic configurations (FP, HDQT, LUQ);
qmatmul.py the quantized matmul passes they share (forward quantizers, tiled
accumulation, the HDQT and LUQ backward) and the per-layer audit;
floatkinds.py the float-datapath kinds on intsim.formats (FP8, FP134).
"""
from intsim.arith.kinds import ARITHS, FP, HDQT, LUQ, register_arith
from intsim.arith.floatkinds import FP8, FP134

__all__ = ["ARITHS", "FP", "HDQT", "LUQ", "FP8", "FP134", "register_arith"]
