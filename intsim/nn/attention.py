"""Multi-head self-attention whose products all run under the datapath when asked."""
import math

import numpy as np

from intsim.datapath import ExactDatapath
from intsim.nn.activations import Softmax
from intsim.nn.linear import Linear
from intsim.nn.module import Module
from intsim.nn.product import ActivationProduct

#: the activation-activation products of attention that can be quantized
PRODUCTS = ("qk", "av")


class MultiHeadSelfAttention(Module):
    """x (B, T, dim) -> (B, T, dim) float32, ``heads`` heads of dim / heads.

    qkv = x W_qkv^T + b (Linear ``qkv``, dim -> 3 dim), split into Q, K, V per
    head; scores = Q K^T / sqrt(dim / heads) (``qk``); A = softmax(scores)
    along the keys (float32; ``causal``: key j > query i masked out);
    O = A V (``av``); out = O W_o^T + b (Linear ``proj``).

    The two Linear layers run under ``arith``. ``quantize_products`` says which
    of the activation-activation products do too: a tuple of "qk" and/or "av"
    (empty: both float32). Each is an ActivationProduct, a site of its own with
    the module's name (``<name>.qk``, ``<name>.av``) in the audit and the cost;
    a float32 product is the exact datapath (priced, not audited). The
    1/sqrt(d) factor multiplies the float32 scores, after the product.
    """

    def __init__(self, dim, heads, arith, rng, quantize_products=(), causal=False, bias=True):
        super().__init__()
        if int(heads) < 1 or int(dim) % int(heads):
            raise ValueError(f"attention width {dim} is not divisible into {heads} heads")
        unknown = sorted(set(quantize_products) - set(PRODUCTS))
        if unknown or isinstance(quantize_products, str):
            raise ValueError(f"quantize_products takes a tuple of {PRODUCTS}, "
                             f"got {quantize_products!r}")
        self.dim, self.heads = int(dim), int(heads)
        self.causal = bool(causal)
        self.quantize_products = tuple(p for p in PRODUCTS if p in quantize_products)
        self.qkv = Linear(dim, 3 * dim, bias, arith, rng)
        float32 = ExactDatapath()
        self.qk = ActivationProduct(arith if "qk" in self.quantize_products else float32, rng)
        self.softmax = Softmax()
        self.av = ActivationProduct(arith if "av" in self.quantize_products else float32, rng)
        self.proj = Linear(dim, dim, bias, arith, rng)

    def forward(self, x):
        if x.ndim != 3 or x.shape[2] != self.dim:
            raise ValueError(f"MultiHeadSelfAttention({self.dim}) expects (B, T, {self.dim}), "
                             f"got shape {x.shape}")
        B, T, D = x.shape
        H, dh = self.heads, D // self.heads
        qkv = self.qkv.forward(x.reshape(B * T, D)).reshape(B, T, 3, H, dh)
        q, k, v = (np.ascontiguousarray(t).reshape(B * H, T, dh)
                   for t in qkv.transpose(2, 0, 3, 1, 4))                  # (B H, T, dh) each
        s = self.qk.forward(q, k)                                          # (B H, T, T)
        s = s * s.dtype.type(1.0 / math.sqrt(dh))
        if self.causal:
            s = np.where(np.tri(T, dtype=bool), s, s.dtype.type(-np.inf))
        a = self.softmax.forward(s)
        o = self.av.forward(a, np.ascontiguousarray(v.transpose(0, 2, 1)))  # (B H, T, dh)
        self._bthd = (B, T, H, dh)
        o = o.reshape(B, H, T, dh).transpose(0, 2, 1, 3).reshape(B * T, D)
        return self.proj.forward(o).reshape(B, T, D)

    def backward(self, grad):
        B, T, H, dh = self._bthd
        D = H * dh
        go = self.proj.backward(grad.reshape(B * T, D))
        go = np.ascontiguousarray(go.reshape(B, T, H, dh).transpose(0, 2, 1, 3))
        go = go.reshape(B * H, T, dh)
        ga, gvT = self.av.backward(go)
        gs = self.softmax.backward(ga) * ga.dtype.type(1.0 / math.sqrt(dh))
        gq, gk = self.qk.backward(gs)
        gv = gvT.transpose(0, 2, 1)
        gqkv = np.stack([g.reshape(B, H, T, dh) for g in (gq, gk, gv)])  # (3, B, H, T, dh)
        gqkv = np.ascontiguousarray(gqkv.transpose(1, 3, 0, 2, 4)).reshape(B * T, 3 * D)
        gx = self.qkv.backward(gqkv)
        return None if gx is None else gx.reshape(B, T, D)
