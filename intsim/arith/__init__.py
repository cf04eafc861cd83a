"""intsim.arith: the passes the integer and float datapaths run (below intsim.datapath).

qmatmul.py holds the quantized matmul passes (forward quantizers, tiled
accumulation, the HDQT and LUQ backward) and the per-layer audit;
lptorch.py the float datapaths' audit and lptorch's tracked scales.
"""
