"""LayerNorm in float32 (normalisation stays float, as BatchNorm)."""
import numpy as np

from intsim.nn.module import Module, Parameter


class LayerNorm(Module):
    """Normalise over the last axis, then scale and shift per feature.

    x: (..., dim) -> (..., dim), in the parameters' dtype (float32 in training).
    y = (x - mean) / sqrt(var + eps) * weight + bias, biased variance over the
    last axis (PyTorch's nn.LayerNorm(dim, eps)); weight ones, bias zeros.
    """

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        if int(dim) < 1:
            raise ValueError(f"bad LayerNorm size {dim}")
        self.dim, self.eps = int(dim), float(eps)
        self.weight = Parameter(np.ones(self.dim, np.float32), "weight")
        self.bias = Parameter(np.zeros(self.dim, np.float32), "bias")

    def forward(self, x):
        if x.shape[-1] != self.dim:
            raise ValueError(f"LayerNorm({self.dim}) got input shape {x.shape}")
        dt = self.weight.data.dtype
        x = x.astype(dt, copy=False)
        xc = x - x.mean(axis=-1, keepdims=True, dtype=dt)
        var = np.mean(xc * xc, axis=-1, keepdims=True, dtype=dt)
        inv = (1.0 / np.sqrt(var + dt.type(self.eps))).astype(dt)
        self._xhat, self._inv = xc * inv, inv
        return self._xhat * self.weight.data + self.bias.data

    def backward(self, grad):
        xhat, inv = self._xhat, self._inv
        grad = grad.astype(xhat.dtype, copy=False)
        lead = tuple(range(grad.ndim - 1))
        self.weight.grad = np.sum(grad * xhat, axis=lead).astype(self.weight.data.dtype)
        self.bias.grad = np.sum(grad, axis=lead).astype(self.bias.data.dtype)
        gx = grad * self.weight.data
        # d xhat terms: gx - mean(gx) - xhat mean(gx xhat), over the normalised axis
        return inv * (gx - gx.mean(axis=-1, keepdims=True)
                      - xhat * np.mean(gx * xhat, axis=-1, keepdims=True))
