"""BatchNorm2d in float (docs/paper.md sec 6: normalisation stays float32)."""
import numpy as np

from intsim.nn.module import Module, Parameter


class BatchNorm2d(Module):
    """Batch normalisation over (B, H, W) per channel of a (B, C, H, W) input.

    Training uses batch statistics (biased variance) and updates the running
    mean / unbiased running variance with ``momentum`` (PyTorch convention);
    eval uses the running statistics.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.weight = Parameter(np.ones(num_features, np.float32), "weight")
        self.bias = Parameter(np.zeros(num_features, np.float32), "bias")
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d({self.num_features}) got input shape {x.shape}")
        dt = self.weight.data.dtype
        x = x.astype(dt, copy=False)
        if self.training:
            n = x.shape[0] * x.shape[2] * x.shape[3]
            mean = x.mean(axis=(0, 2, 3), dtype=dt)
            xc = x - mean[None, :, None, None]
            var = np.einsum("bchw,bchw->c", xc, xc) / dt.type(n)
            m = self.momentum
            unbiased = var * (n / max(n - 1, 1))
            self.running_mean = ((1 - m) * self.running_mean + m * mean).astype(self.running_mean.dtype)
            self.running_var = ((1 - m) * self.running_var + m * unbiased).astype(self.running_var.dtype)
        else:
            mean = self.running_mean.astype(dt)
            var = self.running_var.astype(dt)
            xc = x - mean[None, :, None, None]
        inv = (1.0 / np.sqrt(var + dt.type(self.eps))).astype(dt)
        xhat = xc * inv[None, :, None, None]
        self._xhat, self._inv = xhat, inv
        return xhat * self.weight.data[None, :, None, None] + self.bias.data[None, :, None, None]

    def backward(self, grad):
        xhat, inv = self._xhat, self._inv
        dt = xhat.dtype
        grad = grad.astype(dt, copy=False)
        gsum = grad.sum(axis=(0, 2, 3), dtype=dt)
        gxhat = np.einsum("bchw,bchw->c", grad, xhat)
        self.weight.grad = gxhat.astype(self.weight.data.dtype)
        self.bias.grad = gsum.astype(self.bias.data.dtype)
        ginv = (self.weight.data * inv)[None, :, None, None]
        if not self.training:
            return grad * ginv
        n = grad.shape[0] * grad.shape[2] * grad.shape[3]
        # d xhat terms: g - mean(g) - xhat * mean(g * xhat)
        return ginv * (grad - (gsum / n)[None, :, None, None] - xhat * (gxhat / n)[None, :, None, None])
