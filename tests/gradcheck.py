"""Central-difference numerical gradients for the tests' gradient checks."""
import numpy as np
import pytest


def numerical_grad(f, x, eps=1e-6):
    """d f / d x by central differences; f: array -> float, x: float64 array."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (f(xp) - f(xm)) / (2 * eps)
    return g


def check_grads(module, x, rng, eps=1e-6, rtol=1e-5, n_dirs=3):
    """Check module.backward against central differences of L = sum(R * forward(x)).

    Compares directional derivatives along random directions for the input
    and for every parameter (float64 everywhere)."""
    module.to_dtype(np.float64)
    x = x.astype(np.float64)
    y = module.forward(x)
    R = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(R * module.forward(x)))

    module.forward(x)
    dx = module.backward(R.copy())
    grads = {name: p.grad.copy() for name, p in module.named_parameters()}
    for _ in range(n_dirs):
        v = rng.standard_normal(x.shape)
        x0 = x.copy()
        x = x0 + eps * v
        lp = loss()
        x = x0 - eps * v
        lm = loss()
        x = x0
        num = (lp - lm) / (2 * eps)
        ana = float(np.sum(dx * v))
        assert num == pytest.approx(ana, rel=rtol, abs=1e-7), ("input", num, ana)
        for name, p in module.named_parameters():
            v = rng.standard_normal(p.data.shape)
            p0 = p.data.copy()
            p.data = p0 + eps * v
            lp = loss()
            p.data = p0 - eps * v
            lm = loss()
            p.data = p0
            num = (lp - lm) / (2 * eps)
            ana = float(np.sum(grads[name] * v))
            assert num == pytest.approx(ana, rel=rtol, abs=1e-7), (name, num, ana)
