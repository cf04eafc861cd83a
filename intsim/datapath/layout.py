"""How a layer lays out its matmul: the only thing a layer tells its datapath.

- :class:`Dense`: y = x W^T with x (M, K), W (N, K), y (M, N).
- :class:`Conv`: a 2-D convolution; x (B, C, H, W) images, W (N, C k k), y
  (B, N, Ho, Wo). The datapath unfolds x into columns (im2col) and folds the
  input gradient back (col2im); ``kmajor`` chooses the K-major (K, B, L)
  columns (one GEMM over the batch) or the per-image (B, K, L) reference.
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
    unfolding them).
    """

    kind: str
    M: int
    K: int
    N: int
    S: int
    L: int
    x: int


@dataclass(frozen=True)
class Dense:
    """y = x W^T: x (M, K) -> y (M, N)."""

    conv = False

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
    """A square k x k convolution with ``stride`` and zero ``padding``."""

    k: int
    stride: int = 1
    padding: int = 0
    kmajor: bool = True

    conv = True

    def check(self, x, K):
        if x.ndim != 4 or x.shape[1] * self.k * self.k != K:
            raise ValueError(f"expected images (B, {K // (self.k * self.k)}, H, W), "
                             f"got shape {x.shape}")

    def shape(self, x, N, y) -> Shape:
        """The Shape of a call on images x (B, C, H, W) with output y (B, N, Ho, Wo)."""
        B, C = x.shape[:2]
        L = int(y.shape[2] * y.shape[3])
        return Shape("conv", B * L, C * self.k * self.k, N, B, L, int(x.size))

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
