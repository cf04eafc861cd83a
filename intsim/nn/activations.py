"""Float layers without parameters: ReLU, global average pool, Flatten, residual add."""
import numpy as np

from intsim.nn.module import Module


class ReLU(Module):
    """max(x, 0) elementwise; any shape, dtype preserved."""

    def forward(self, x):
        self._mask = x > 0
        return np.maximum(x, 0, dtype=x.dtype)

    def backward(self, grad):
        return np.where(self._mask, grad, grad.dtype.type(0))


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


AvgPool = GlobalAvgPool


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
