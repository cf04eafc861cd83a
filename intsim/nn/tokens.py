"""Layers that turn images and signals into token sequences and back (float32 reshapes
and adds), and a Linear layer applied to every token."""
import numpy as np

from intsim.nn.linear import Linear
from intsim.nn.module import Module, Parameter


class TokenLinear(Linear):
    """Linear over the last axis of any input: (..., in) -> (..., out) float32.

    The leading axes are flattened into rows, so one call is one Dense product of
    (prod(...), in) rows (the audit and the cost see that shape); a 2-D input is
    a plain Linear."""

    def forward(self, x):
        lead = x.shape[:-1]
        self._lead = lead
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(*lead, self.out_features)

    def backward(self, grad):
        dx = super().backward(grad.reshape(-1, self.out_features))
        return None if dx is None else dx.reshape(*self._lead, self.in_features)


class Tokens(Module):
    """Channels-first maps to tokens: (B, C, H, W) -> (B, H W, C), (B, C, L) -> (B, L, C)
    (a patch-embedding convolution's output as a sequence)."""

    def forward(self, x):
        if x.ndim not in (3, 4):
            raise ValueError(f"Tokens expects (B, C, H, W) or (B, C, L), got shape {x.shape}")
        self._shape = x.shape
        B, C = x.shape[:2]
        return np.ascontiguousarray(x.reshape(B, C, -1).transpose(0, 2, 1))

    def backward(self, grad):
        return np.ascontiguousarray(grad.transpose(0, 2, 1)).reshape(self._shape)


class Patches1d(Module):
    """(B, C, L) -> (B, L / size, C size): cut a signal into non-overlapping patches of
    ``size`` samples; a token holds its patch's samples channel by channel
    (token t, feature c size + j = x[:, c, t size + j])."""

    def __init__(self, size):
        super().__init__()
        if int(size) < 1:
            raise ValueError(f"patch size must be >= 1, got {size}")
        self.size = int(size)

    def forward(self, x):
        if x.ndim != 3 or x.shape[2] % self.size:
            raise ValueError(f"Patches1d({self.size}) expects (B, C, L) with L a multiple of "
                             f"{self.size}, got shape {x.shape}")
        B, C, L = x.shape
        self._shape = x.shape
        t = x.reshape(B, C, L // self.size, self.size).transpose(0, 2, 1, 3)
        return np.ascontiguousarray(t).reshape(B, L // self.size, C * self.size)

    def backward(self, grad):
        B, C, L = self._shape
        g = grad.reshape(B, L // self.size, C, self.size).transpose(0, 2, 1, 3)
        return np.ascontiguousarray(g).reshape(B, C, L)


class PositionEmbedding(Module):
    """x (B, T, dim) -> x + weight, a learned (T, dim) float32 table (one row per
    position), drawn N(0, 0.02^2) as ViT's."""

    def __init__(self, tokens, dim, rng, std=0.02):
        super().__init__()
        if int(tokens) < 1 or int(dim) < 1:
            raise ValueError(f"bad PositionEmbedding({tokens}, {dim})")
        self.tokens, self.dim = int(tokens), int(dim)
        w = rng.standard_normal((self.tokens, self.dim)) * std
        self.weight = Parameter(w.astype(np.float32), "weight")

    def forward(self, x):
        if x.ndim != 3 or x.shape[1:] != (self.tokens, self.dim):
            raise ValueError(f"PositionEmbedding({self.tokens}, {self.dim}) expects "
                             f"(B, {self.tokens}, {self.dim}), got shape {x.shape}")
        return x + self.weight.data.astype(x.dtype, copy=False)

    def backward(self, grad):
        self.weight.grad = grad.sum(axis=0).astype(self.weight.data.dtype)
        return grad


class TokenMean(Module):
    """(B, T, dim) -> (B, dim): the mean over the tokens (mean pooling)."""

    def forward(self, x):
        if x.ndim != 3:
            raise ValueError(f"TokenMean expects (B, T, dim), got shape {x.shape}")
        self._shape = x.shape
        return x.mean(axis=1, dtype=x.dtype)

    def backward(self, grad):
        g = grad * grad.dtype.type(1.0 / self._shape[1])
        return np.broadcast_to(g[:, None, :], self._shape).copy()
