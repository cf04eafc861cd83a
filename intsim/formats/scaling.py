"""Scales for a format: per tensor or per channel, from the max magnitude."""
from __future__ import annotations

import numpy as np


def amax_scale(x, fmt, axis=None, pow2=False, batch_dims=0):
    """The scale that maps max|x| onto the format's max: s = max|x| / fmt.max_value.

    x: array (any shape); fmt: any format of intsim.formats (has max_value).
    axis None: one scale for the tensor (a Python float); an int: one scale per
    index of that axis (per channel), as an array with x's number of dims
    (size 1 on the other axes) that broadcasts against x.
    batch_dims: the leading ``batch_dims`` axes of x index independent items
    (x (S..., item shape)): each item gets the scales the item alone would get
    (axis then counts within the item's dims), as an array with x's number of
    dims, of shape (S..., 1, ...) (per tensor) or (S..., 1, C, 1, ...) (per
    channel), bit for bit the per-item values.
    pow2: round each scale up to a power of two (then x / s is exact, and
    max|x| / s stays <= max_value, as it does without pow2).
    A channel (or tensor, or item) of zeros or without a finite value gets scale 1.0.
    """
    a = np.abs(np.asarray(x, dtype=np.float64))
    a = np.where(np.isfinite(a), a, 0.0)
    nb = int(batch_dims)
    if not 0 <= nb <= a.ndim:
        raise ValueError(f"batch_dims must be in 0..{a.ndim}, got {batch_dims!r}")
    if axis is None and nb == 0:
        m = np.asarray(a.max() if a.size else 0.0)
    else:
        keep = set(range(nb))
        if axis is not None:
            keep.add(nb + int(axis) % max(a.ndim - nb, 1))
        other = tuple(i for i in range(a.ndim) if i not in keep)
        m = a.max(axis=other, keepdims=True) if a.size else \
            np.zeros([a.shape[i] if i in keep else 1 for i in range(a.ndim)])
    s = m / float(fmt.max_value)
    # keep max|x| / s <= max_value in float64 (the division may round above it)
    s = np.where(m / np.where(s > 0, s, 1.0) > fmt.max_value, np.nextafter(s, np.inf), s)
    if pow2:
        # s = mant 2^e with mant in [0.5, 1): a power of two already when mant is 0.5,
        # else 2^e (exact; ceil(log2(s)) can round down just above a power of two)
        mant, e = np.frexp(s)
        s = np.where(s > 0, np.where(mant == 0.5, s, np.ldexp(1.0, e)), s)
    s = np.where(s > 0, s, 1.0)
    return float(s) if axis is None and nb == 0 else s
