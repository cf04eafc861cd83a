"""Float layers without parameters: ReLU, GELU, softmax, global average pool, Flatten.

All compute in their input's dtype (float32 in training, float64 in the
gradient checks); none goes through a datapath.
"""
import math

import numpy as np
from numba import njit

from intsim.nn.module import Module


@njit(cache=True)
def _relu_bwd_flat(m, g, out):
    """out = where(m, g, 0) on flat C arrays: a select, not np.where's branches
    (which mispredict on ReLU masks: 10-30x slower)."""
    z = g.dtype.type(0)
    for i in range(g.size):
        out[i] = g[i] if m[i] else z


class ReLU(Module):
    """max(x, 0) elementwise; any shape, dtype preserved."""

    def forward(self, x):
        self._mask = x > 0
        return np.maximum(x, 0, dtype=x.dtype)

    def backward(self, grad):
        m = self._mask
        if grad.shape == m.shape and grad.dtype.kind == "f" and grad.size:
            if grad.flags.c_contiguous and m.flags.c_contiguous:
                out = np.empty(grad.shape, grad.dtype)
                _relu_bwd_flat(m.reshape(-1), grad.reshape(-1), out.reshape(-1))
                return out
            if grad.ndim == 2 and grad.flags.f_contiguous:
                # transposed gradient (Linear's backward): the mask is transposed instead
                # (a cheap copy) and the result keeps grad's layout
                gT = grad.T
                mT = np.ascontiguousarray(m.T)
                out = np.empty(gT.shape, grad.dtype)
                _relu_bwd_flat(mT.reshape(-1), gT.reshape(-1), out.reshape(-1))
                return out.T
        return np.where(m, grad, grad.dtype.type(0))


class GELU(Module):
    """The exact (erf) GELU, PyTorch's default: y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2.

    Any shape, dtype preserved; dy/dx = Phi(x) + x phi(x), phi the standard normal
    density.
    """

    def forward(self, x):
        from scipy.special import erf     # loaded on first use, not by every intsim command
        t = x.dtype.type
        self._x = x
        self._cdf = t(0.5) * (t(1) + erf(x * t(1 / math.sqrt(2))))
        return x * self._cdf

    def backward(self, grad):
        x = self._x
        t = x.dtype.type
        pdf = np.exp(t(-0.5) * x * x) * t(1 / math.sqrt(2 * math.pi))
        return grad * (self._cdf + x * pdf)


class Softmax(Module):
    """Softmax along the last axis (attention's scores): y = exp(x - max) / sum.

    Any shape, dtype preserved; -inf inputs (masked positions) give 0, and each
    row needs one finite input. backward: y (g - sum(g y)) along that axis.
    """

    def forward(self, x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        self._y = e / e.sum(axis=-1, keepdims=True)
        return self._y

    def backward(self, grad):
        y = self._y
        return y * (grad - np.sum(grad * y, axis=-1, keepdims=True))


class GlobalAvgPool(Module):
    """(B, C, H, W) -> (B, C): mean over the spatial positions."""

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"GlobalAvgPool expects (B, C, H, W), got shape {x.shape}")
        self._shape = x.shape
        return x.mean(axis=(2, 3), dtype=x.dtype)

    def backward(self, grad):
        B, C, H, W = self._shape
        g = grad * grad.dtype.type(1.0 / (H * W))
        return np.broadcast_to(g[:, :, None, None], self._shape).copy()




class Flatten(Module):
    """(B, ...) -> (B, prod(...))."""

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        return grad.reshape(self._shape)


class Identity(Module):
    def forward(self, x):
        return x

    def backward(self, grad):
        return grad
