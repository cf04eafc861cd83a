"""Central-difference numerical gradients for the tests' gradient checks."""
import numpy as np


def numerical_grad(f, x, eps=1e-6):
    """d f / d x by central differences; f: array -> float, x: float64 array."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (f(xp) - f(xm)) / (2 * eps)
    return g
