"""The float baseline: float32 products everywhere, nothing quantized."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intsim.cost.tally import OpCounts, product
from intsim.datapath.base import Datapath, register_datapath
from intsim.datapath.items import forward_items
from intsim.datapath.parts import ExactAccumulator
from intsim.kernels.im2col import col2im, im2col, im2col_km


@register_datapath
@dataclass(frozen=True)
class ExactDatapath(Datapath):
    """y = x W^T + b in float32 BLAS; the backward products in float32 as well."""

    kind = "exact"
    quantized = False

    def forward(self, x, W, b, layout, site):
        x = x.astype(W.dtype, copy=False)
        if layout.per_item:
            if layout.conv:
                return forward_items(self, x, W, b, layout, site)
            layout.check(x, W, b)
            return np.matmul(x, np.swapaxes(W, 1, 2)), _BatchedCtx(x, W, site)
        if not layout.conv:
            y = x @ W.T
            if b is not None:
                y = y + b
            return y, _DenseCtx(x, W, b, site)
        B = x.shape[0]
        N = W.shape[0]
        if layout.kmajor:
            # one (N, K) @ (K, B*L) GEMM (BLAS's order for that shape; the per-image
            # reference agrees up to float rounding)
            cols, (Ho, Wo) = im2col_km(x, layout.k, layout.stride, layout.padding)
            y = np.matmul(W, cols.reshape(cols.shape[0], -1))
            return (layout.output(y, B, N, Ho, Wo, b),
                    _ConvCtx(cols, W, b, x.shape, (Ho, Wo), layout, site))
        cols, (Ho, Wo) = im2col(x, layout.k, layout.stride, layout.padding)      # (B, K, L)
        y = np.matmul(W, cols).reshape(B, N, Ho, Wo)
        if b is not None:
            y += b[None, :, None, None]
        return y, _ConvCtx(cols, W, b, x.shape, (Ho, Wo), layout, site)


    def op_counts(self, pass_, shape, training=True):
        """Float32 products: y = x W^T, dx = g W, dW = g^T x."""
        M, K, N = shape.M, shape.K, shape.N
        mnk = {"forward": (M, K, N), "backward_input": (M, N, K), "backward_weight": (N, M, K)}
        a, k, b = mnk[pass_]
        return product(OpCounts(), a, k, b, "fp32", "fp32", ExactAccumulator().add_counts(a, b, k))


class _DenseCtx:
    def __init__(self, x, W, b, site):
        self.x, self.W, self.b, self.site = x, W, b, site

    def backward(self, g):
        db = None if self.b is None else g.sum(axis=0).astype(self.b.dtype)
        dW = g.T @ self.x
        dx = g @ self.W if self.site.need_input_grad else None
        return dx, dW, db


class _BatchedCtx:
    """Backward of y_s = x_s W_s^T for every item s: dx = g W, dW = g^T x per item."""

    def __init__(self, x, W, site):
        self.x, self.W, self.site = x, W, site

    def backward(self, g):
        dW = np.matmul(np.swapaxes(g, 1, 2), self.x)
        dx = np.matmul(g, self.W) if self.site.need_input_grad else None
        return dx, dW, None


class _ConvCtx:
    def __init__(self, cols, W, b, xshape, hw, layout, site):
        self.cols, self.W, self.b, self.xshape, self.hw = cols, W, b, xshape, hw
        self.layout, self.site = layout, site

    def backward(self, g):
        lo = self.layout
        db = None if self.b is None else lo.bias_grad(g, self.b.dtype)
        cols = self.cols
        if lo.kmajor:
            dx, dW = lo.float_backward(g, cols, self.W, self.xshape, self.site.need_input_grad)
            return dx, dW, db
        gT = lo.grad_rows(g)                                                # (B, N, L)
        dW = np.matmul(gT, np.swapaxes(cols, 1, 2)).sum(axis=0)              # sum_b g_b^T cols_b^T
        if not self.site.need_input_grad:
            return None, dW, db
        dx = col2im(np.matmul(self.W.T, gT), self.xshape, lo.k, lo.stride, lo.padding)
        return dx, dW, db
