"""Residual connections (float32 adds): Add of two branches, and Residual(body)."""
from intsim.nn.module import Module


class Add(Module):
    """forward(a, b) = a + b (same shapes); backward(g) = (g, g), the gradient of
    each branch."""

    def forward(self, a, b):
        if a.shape != b.shape:
            raise ValueError(f"Add: branch shapes {a.shape} and {b.shape} differ")
        return a + b

    def backward(self, grad):
        return grad, grad


class Residual(Module):
    """x + body(x) for a module ``body`` whose output has x's shape (a pre-norm
    transformer block's halves: Residual(Sequential(LayerNorm, attention)));
    backward: g + body.backward(g)."""

    def __init__(self, body):
        super().__init__()
        self.body = body
        self.add = Add()

    def forward(self, x):
        return self.add.forward(x, self.body.forward(x))

    def backward(self, grad):
        g_skip, g_body = self.add.backward(grad)
        return g_skip + self.body.backward(g_body)
