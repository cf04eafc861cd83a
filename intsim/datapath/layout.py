"""How a layer lays out its matmul: the only thing a layer tells its datapath.

- :class:`Dense`: y = x W^T with x (M, K), W (N, K), y (M, N).
- :class:`Conv`: a 2-D convolution; x (B, C, H, W) images, W (N, C/G k k), y
  (B, N, Ho, Wo). The datapath unfolds x into columns (im2col) and folds the
  input gradient back (col2im); ``kmajor`` chooses the K-major (K, B, L)
  columns (one GEMM over the batch) or the per-image (B, K, L) reference.
  ``groups`` G > 1: G independent convolutions, group g reading input
  channels g C/G .. (g+1) C/G and writing outputs g N/G .. (g+1) N/G.
- :class:`Batched`: S independent products of two activations, y_s = x_s w_s^T
  with x (S, M, K), w (S, N, K), y (S, M, N) and no bias (attention's Q K^T
  and A V); the second operand takes the weight's place in the datapath.

A layout whose ``per_item`` is True is S (Batched) or G (grouped Conv)
independent products: every quantized datapath runs each item as the
:attr:`item` layout does (its own scales, tiles and audit counts, its draws
item after item; intsim.datapath.items), and a call's Shape counts one item
with ``items`` = S or G. HDQT's family runs a Batched call's items on whole
(S, ...) tensors instead (the same per-item arithmetic; its backward draws
operand by operand, each operand's uniforms item-major:
intsim.arith.qmatmul.hdqt_backward_items); FormatsDatapath too where that is
the per-item loop's bits (FormatsDatapath.items_vectorised).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from intsim.kernels.im2col import col2im_km


class Shape(NamedTuple):
    """The shape of one layer call, what its cost is counted from.

    The product is (M, K) @ (K, N); a convolution's M = S L rows are S images of
    L = Ho Wo positions (a dense layer: S = 1, L = M); ``x`` is the number of
    elements of the layer input (a convolution quantizes the images before
    unfolding them). ``items``: the call is that many independent products of
    this shape (Batched: S; a grouped convolution: G; the counts of the call are
    ``items`` times those of one, intsim.datapath.base.Datapath.call_counts).
    """

    kind: str
    M: int
    K: int
    N: int
    S: int
    L: int
    x: int
    items: int = 1


@dataclass(frozen=True)
class Dense:
    """y = x W^T: x (M, K) -> y (M, N)."""

    conv = False
    per_item = False

    def check(self, x, K):
        if x.ndim != 2 or x.shape[1] != K:
            raise ValueError(f"expected input (M, {K}), got shape {x.shape}")

    @staticmethod
    def shape(x, N) -> Shape:
        """The Shape of a call on rows x (M, K) with N outputs."""
        M, K = x.shape
        return Shape("dense", M, K, N, 1, M, M * K)

    @staticmethod
    def bias_grad(g, dtype):
        """g (M, N) -> (N,) summed over the rows."""
        return g.sum(axis=0).astype(dtype)


@dataclass(frozen=True)
class Conv:
    """A square k x k convolution with ``stride``, zero ``padding`` and ``groups``."""

    k: int
    stride: int = 1
    padding: int = 0
    kmajor: bool = True
    groups: int = 1

    conv = True

    @property
    def per_item(self) -> bool:
        return self.groups > 1

    @property
    def item(self) -> "Conv":
        """The layout of one group: the same convolution with one group."""
        return Conv(self.k, self.stride, self.padding, self.kmajor)

    def check(self, x, K):
        if x.ndim != 4 or x.shape[1] * self.k * self.k != K * self.groups:
            raise ValueError(f"expected images (B, {K * self.groups // (self.k * self.k)}, H, W), "
                             f"got shape {x.shape}")

    def shape(self, x, N, y) -> Shape:
        """The Shape of a call on images x (B, C, H, W) with output y (B, N, Ho, Wo): one
        group's product, ``items`` = groups."""
        B, C = x.shape[:2]
        G = self.groups
        L = int(y.shape[2] * y.shape[3])
        return Shape("conv", B * L, C // G * self.k * self.k, N // G, B, L, int(x.size) // G, G)

    # -- the groups as items (intsim.datapath.items)
    def split(self, x, W, b):
        """[(x_g (B, C/G, H, W), W_g (N/G, K), b_g or None)] per group."""
        G = self.groups
        cg, ng = x.shape[1] // G, W.shape[0] // G
        return [(np.ascontiguousarray(x[:, g * cg:(g + 1) * cg]), W[g * ng:(g + 1) * ng],
                 None if b is None else b[g * ng:(g + 1) * ng]) for g in range(G)]

    def split_grad(self, g):
        ng = g.shape[1] // self.groups
        return [np.ascontiguousarray(g[:, i * ng:(i + 1) * ng]) for i in range(self.groups)]

    @staticmethod
    def join_output(ys):
        return np.concatenate(ys, axis=1)

    @staticmethod
    def join_grads(dxs, dWs, dbs):
        """(dx (B, C, H, W) or None, dW (N, K), db (N,) or None) from the groups'."""
        dx = None if dxs[0] is None else np.concatenate(dxs, axis=1)
        db = None if dbs[0] is None else np.concatenate(dbs)
        return dx, np.concatenate(dWs, axis=0), db

    @staticmethod
    def bias_grad(g, dtype):
        """g (B, N, Ho, Wo) -> (N,) summed over images and positions."""
        return g.sum(axis=(0, 2, 3)).astype(dtype)

    @staticmethod
    def output(y, B, N, Ho, Wo, bias=None):
        """(N, B*L) K-major product -> (B, N, Ho, Wo) (+ bias (N,))."""
        y = np.ascontiguousarray(y.reshape(N, B, Ho * Wo).transpose(1, 0, 2)).reshape(B, N, Ho, Wo)
        if bias is not None:
            y += bias[None, :, None, None]
        return y

    @staticmethod
    def grad_rows(g):
        """g (B, N, Ho, Wo) -> g^T per image (B, N, L), contiguous."""
        B, N = g.shape[:2]
        return np.ascontiguousarray(g).reshape(B, N, -1)

    def float_backward(self, g, cols, W, xshape, need_dx):
        """The float32 products of a K-major convolution's backward: g (B, N, Ho, Wo),
        cols (K, B, L) the unfolded input, W (N, K) -> (dx images or None, dW (N, K)),
        each one GEMM over the batch."""
        gT = self.grad_rows(g)                                              # (B, N, L)
        B, N, L = gT.shape
        g2 = self.grad_kmajor(gT)                                           # (N, B L)
        dW = np.matmul(g2, cols.reshape(cols.shape[0], B * L).T)
        if not need_dx:
            return None, dW
        return col2im_km(np.matmul(W.T, g2).reshape(-1, B, L), xshape, self.k, self.stride,
                         self.padding), dW

    @staticmethod
    def grad_kmajor(gT):
        """g^T (B, N, L) -> (N, B*L)."""
        B, N, L = gT.shape
        return np.ascontiguousarray(gT.transpose(1, 0, 2)).reshape(N, B * L)


@dataclass(frozen=True)
class Batched:
    """S products of two activations: x (S, M, K), w (S, N, K) -> y (S, M, N),
    y_s = x_s w_s^T, no bias. The backward gives dx (S, M, K) and dw (S, N, K)."""

    conv = False
    per_item = True
    item = Dense()

    def check(self, x, w, b=None):
        if x.ndim != 3 or w.ndim != 3 or x.shape[0] != w.shape[0] or x.shape[2] != w.shape[2]:
            raise ValueError(f"expected x (S, M, K) and w (S, N, K), got shapes {x.shape} "
                             f"and {w.shape}")
        if b is not None:
            raise ValueError("a product of two activations takes no bias")

    @staticmethod
    def shape(x, w) -> Shape:
        """The Shape of a call: one item's dense product (M, K) @ (K, N), ``items`` = S."""
        S, M, K = x.shape
        return Shape("dense", M, K, int(w.shape[1]), 1, M, M * K, S)

    def split(self, x, W, b):
        self.check(x, W, b)
        x, W = np.ascontiguousarray(x), np.ascontiguousarray(W)
        return [(x[s], W[s], None) for s in range(x.shape[0])]

    @staticmethod
    def split_grad(g):
        return list(np.ascontiguousarray(g))

    @staticmethod
    def join_output(ys):
        return np.stack(ys)

    @staticmethod
    def join_grads(dxs, dWs, dbs):
        """(dx (S, M, K) or None, dw (S, N, K), None) from the items'."""
        return (None if dxs[0] is None else np.stack(dxs)), np.stack(dWs), None
