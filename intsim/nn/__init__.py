"""intsim.nn: layers with manual forward/backward under any datapath (intsim.datapath).

Every layer has forward(x) and backward(grad) -> grad wrt x (filling the
``.grad`` of its Parameters). Quantized layers (Linear, Conv2d under HDQT/LUQ)
record a per-pass Audit (model.audit()) and own a Generator for their random
draws (model.rng_state()).
"""
from intsim.nn.module import Module, Parameter, Sequential
from intsim.nn.linear import Linear
from intsim.nn.conv import Conv2d
from intsim.nn.batchnorm import BatchNorm2d
from intsim.nn.activations import Flatten, GlobalAvgPool, Identity, ReLU
from intsim.nn.losses import cross_entropy, kd_loss
from intsim.arith.qmatmul import LayerAudit, PassAudit

__all__ = ["Module", "Parameter", "Sequential", "Linear", "Conv2d", "BatchNorm2d", "ReLU",
           "GlobalAvgPool", "Flatten", "Identity", "cross_entropy", "kd_loss",
           "LayerAudit", "PassAudit"]
