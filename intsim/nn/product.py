"""A product of two activations (attention's Q K^T and A V) through the datapath."""
from intsim.datapath import Batched
from intsim.nn.init import child_rng
from intsim.nn.linear import DatapathSite
from intsim.nn.module import Module


class ActivationProduct(Module, DatapathSite):
    """y_s = a_s b_s^T for every item s: a (S, M, K), b (S, N, K) -> (S, M, N) float32.

    No weights: both operands are activations, each item one product of the
    datapath (``arith``; layout intsim.datapath.Batched: b takes the weight's
    role, item s has its own scales and backward quantizers). The site is the
    layer's: its Generator, audit (under its module name, e.g.
    ``block3.attn.qk``) and call counts for the cost.
    """

    def __init__(self, arith, rng):
        super().__init__()
        # exactly one draw from rng under any datapath, so that which products a model
        # quantizes leaves the other layers' initial weights as they are
        self._init_site(arith, child_rng(rng))

    def forward(self, a, b):
        layout = Batched()
        layout.check(a, b)
        y, self._ctx = self.arith.forward(a, b, None, layout, self)
        self._shape = layout.shape(a, b)
        self.calls[("forward", self._shape, self.training)] += 1
        return y

    def backward(self, grad):
        """-> (da (S, M, K), db (S, N, K)); da is None when ``need_input_grad`` is off."""
        da, db, _ = self._ctx.backward(grad)
        self.calls[("backward_weight", self._shape, True)] += 1
        if da is not None:
            self.calls[("backward_input", self._shape, True)] += 1
        return da, db
