"""Mini-batch iteration."""
from __future__ import annotations

import numpy as np

__all__ = ["iterate_batches"]


def iterate_batches(X, y, batch_size: int, rng: np.random.Generator | None = None,
                    shuffle: bool = True):
    """Yield (xb, yb) batches of X (N, ...) and y (N,); the last partial batch is kept.

    shuffle=True permutes with rng (required: no global randomness); one
    permutation per call, drawn before the first batch.
    """
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} samples, y has {len(y)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if shuffle:
        if rng is None:
            raise ValueError("shuffle=True needs an np.random.Generator rng")
        idx = rng.permutation(n)
        for i in range(0, n, batch_size):
            j = idx[i:i + batch_size]
            yield X[j], y[j]
    else:
        for i in range(0, n, batch_size):
            yield X[i:i + batch_size], y[i:i + batch_size]
