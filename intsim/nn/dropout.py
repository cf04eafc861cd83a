"""Dropout with its own Generator (float32; identity in eval mode)."""
import numpy as np

from intsim.nn.init import child_rng
from intsim.nn.module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` in training and scale the kept ones by
    1 / (1 - p) (inverted dropout, as PyTorch); the identity in eval mode.

    x: any shape, dtype kept. ``rng``: the Generator the layer's own is drawn from
    (intsim.nn.init.child_rng), so the masks depend on the seed only, and the
    layer's state is saved and restored with the model's (Module.rng_state).
    One float64 uniform per element per training forward, in C order.
    """

    def __init__(self, p, rng):
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = child_rng(rng)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self._scale = None
            return x
        keep = self.rng.random(x.shape) >= self.p
        self._scale = keep * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self._scale

    def backward(self, grad):
        return grad if self._scale is None else grad * self._scale
