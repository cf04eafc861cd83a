"""Scales for a format: per tensor or per channel, from the max magnitude."""
from __future__ import annotations

import numpy as np


def amax_scale(x, fmt, axis=None, pow2=False):
    """The scale that maps max|x| onto the format's max: s = max|x| / fmt.max_value.

    x: array (any shape); fmt: any format of intsim.formats (has max_value).
    axis None: one scale for the tensor (a Python float); an int: one scale per
    index of that axis (per channel), as an array with x's number of dims
    (size 1 on the other axes) that broadcasts against x.
    pow2: round each scale up to a power of two (then x / s is exact, and
    max|x| / s stays <= max_value, as it does without pow2).
    A channel (or tensor) of zeros or without a finite value gets scale 1.0.
    """
    a = np.abs(np.asarray(x, dtype=np.float64))
    a = np.where(np.isfinite(a), a, 0.0)
    if axis is None:
        m = np.asarray(a.max() if a.size else 0.0)
    else:
        axis = int(axis) % max(a.ndim, 1)
        other = tuple(i for i in range(a.ndim) if i != axis)
        m = a.max(axis=other, keepdims=True) if a.size else \
            np.zeros([1 if i != axis else a.shape[i] for i in range(a.ndim)])
    s = m / float(fmt.max_value)
    # keep max|x| / s <= max_value in float64 (the division may round above it)
    s = np.where(m / np.where(s > 0, s, 1.0) > fmt.max_value, np.nextafter(s, np.inf), s)
    if pow2:
        with np.errstate(divide="ignore"):
            s = np.where(s > 0, np.exp2(np.ceil(np.log2(np.where(s > 0, s, 1.0)))), s)
    s = np.where(s > 0, s, 1.0)
    return float(s) if axis is None else s
