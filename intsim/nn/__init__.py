"""intsim.nn: layers with manual forward/backward under any datapath (intsim.datapath).

Every layer has forward(x) and backward(grad) -> grad wrt x (filling the
``.grad`` of its Parameters); Add and ActivationProduct take two inputs and
return two gradients. Quantized layers (Linear, Conv2d, ActivationProduct
under a quantized datapath) record a per-pass Audit (model.audit()) and own a
Generator for their random draws (model.rng_state()), as Dropout does.
Everything outside the datapath's products computes in float32.
"""
from intsim.nn.module import Module, Parameter, Sequential
from intsim.nn.linear import Linear
from intsim.nn.conv import Conv2d
from intsim.nn.batchnorm import BatchNorm2d
from intsim.nn.activations import GELU, Flatten, GlobalAvgPool, Identity, ReLU, Softmax
from intsim.nn.attention import MultiHeadSelfAttention
from intsim.nn.dropout import Dropout
from intsim.nn.embedding import Embedding
from intsim.nn.layernorm import LayerNorm
from intsim.nn.pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from intsim.nn.product import ActivationProduct
from intsim.nn.residual import Add, Residual
from intsim.nn.tokens import Patches1d, PositionEmbedding, TokenLinear, TokenMean, Tokens
from intsim.nn.losses import cross_entropy, kd_loss
from intsim.arith.qmatmul import LayerAudit, PassAudit

__all__ = ["Module", "Parameter", "Sequential", "Linear", "Conv2d", "BatchNorm2d", "ReLU",
           "GlobalAvgPool", "Flatten", "Identity", "cross_entropy", "kd_loss",
           "LayerAudit", "PassAudit", "LayerNorm", "GELU", "Softmax", "Dropout", "Add",
           "Residual",
           "Embedding", "MaxPool2d", "AvgPool2d", "MaxPool1d", "AvgPool1d",
           "ActivationProduct", "MultiHeadSelfAttention", "TokenLinear", "Tokens", "Patches1d",
           "PositionEmbedding", "TokenMean"]
