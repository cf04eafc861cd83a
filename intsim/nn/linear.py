"""Linear layer y = x W^T + b under any datapath (intsim.datapath)."""
from collections import Counter

import numpy as np

from intsim.arith import qmatmul as qm
from intsim.datapath import Datapath, Dense
from intsim.nn.init import bias_uniform, child_rng, kaiming_uniform
from intsim.nn.module import Module, Parameter


def check_arith(arith):
    """The datapath ``arith`` (a Datapath) or ValueError naming what was given."""
    if not isinstance(arith, Datapath):
        raise ValueError(f"arith must be a datapath (intsim.datapath, e.g. intsim.HDQT()), "
                         f"got {arith!r}")
    return arith


class DatapathSite:
    """What a layer owns for its datapath (intsim.datapath.base): ``rng`` (its own
    Generator, drawn from the rng given, when the datapath quantizes),
    ``layer_audit`` and the buffer ``arith_state`` (per-layer state, e.g. FP134's
    tracked scales). Mixed into Linear, Conv2d and ActivationProduct."""

    def _count_backward(self, computed_dx: bool) -> None:
        """Count a backward call: its two passes (dx only when computed) and the
        optimizer update of the layer's parameters it feeds."""
        shape = self._shape
        self.calls[("backward_weight", shape, True)] += 1
        if computed_dx:
            self.calls[("backward_input", shape, True)] += 1
        n = self.weight.data.size + (0 if self.bias is None else self.bias.data.size)
        self.calls[("optimizer", n, True)] += 1

    def _init_site(self, arith, rng):
        self.arith = check_arith(arith)
        # (pass, Shape, training) -> calls, what the cost is counted from (intsim.cost)
        self.calls = Counter()
        self.rng = child_rng(rng) if arith.quantized else None
        self.layer_audit = qm.LayerAudit(pass_cls=arith.pass_audit) if arith.quantized else None
        if arith.new_state() is not None:
            self.register_buffer("arith_state", arith.new_state())
        # False for a network's first layer: nobody reads its input gradient, so it
        # is neither computed nor audited (backward returns None)
        self.need_input_grad = True


class Linear(Module, DatapathSite):
    """y = x W^T + b. x: (B, in_features) float32 -> (B, out_features) float32.

    weight: (out_features, in_features), PyTorch default init
    (kaiming-uniform a=sqrt(5)); bias U(+-1/sqrt(in)) if bias. The matmul,
    the bias and their gradients are the datapath's (``arith``).
    """

    def __init__(self, in_features, out_features, bias, arith, rng):
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 0:
            raise ValueError(f"bad Linear sizes {in_features} -> {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        check_arith(arith)
        self.weight = Parameter(kaiming_uniform((out_features, in_features), in_features, rng), "weight")
        self.bias = Parameter(bias_uniform(out_features, in_features, rng), "bias") if bias else None
        self._init_site(arith, rng)

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}->{self.out_features}) got input shape {x.shape}")
        b = None if self.bias is None else self.bias.data
        y, self._ctx = self.arith.forward(x, self.weight.data, b, Dense(), self)
        self._shape = Dense.shape(x, self.out_features)
        self.calls[("forward", self._shape, self.training)] += 1
        return y

    def backward(self, grad):
        if grad.shape[-1] != self.out_features:
            raise ValueError(f"Linear backward: grad shape {grad.shape}")
        dx, dw, db = self._ctx.backward(grad)
        self.weight.grad = dw
        if self.bias is not None:
            self.bias.grad = db
        self._count_backward(dx is not None)
        return dx

    def add_outputs(self, n, rng):
        """Grow by n output rows (classifier growth): old rows kept, new rows
        initialised as a fresh layer with the same fan-in would be; the whole bias
        drawn afresh when the datapath's ``fresh_classifier_bias()`` says so."""
        n = int(n)
        if n < 0:
            raise ValueError(f"cannot add {n} outputs")
        neww = kaiming_uniform((n, self.in_features), self.in_features, rng)
        # the same Parameter objects are kept (their data grows)
        self.weight.data = np.concatenate([self.weight.data, neww.astype(self.weight.data.dtype)])
        self.weight.grad = None
        if self.bias is not None:
            if self.out_features and self.arith.fresh_classifier_bias():
                b = bias_uniform(self.out_features + n, self.in_features, rng)
            else:
                b = np.concatenate([self.bias.data, bias_uniform(n, self.in_features, rng)])
            self.bias.data = b.astype(self.bias.data.dtype, copy=False)
            self.bias.grad = None
        self.out_features += n
        if getattr(self, "arith_state", None) is not None:
            # the released code wraps each task's new classifier in a fresh lptorch
            # QLayer: its per-layer state starts again
            self.arith_state = self.arith.new_state()
