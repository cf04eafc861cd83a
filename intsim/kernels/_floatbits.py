"""float32 facts read off the bit patterns, for Numba kernels (private).

Non-negative float32 values order as their uint32 patterns, so max |x| is an
integer max of the patterns with the sign bit cleared, which vectorises (a float
max with NaN semantics does not). A pattern at or above NONFINITE is inf or NaN.
"""
import numpy as np
from numba import njit

U = np.uint64
#: the float32 pattern of inf; every NaN lies above it
NONFINITE = np.uint32(0x7F800000)
_ABS = np.uint32(0x7FFFFFFF)


@njit(inline="always")
def abs_max_bits(b):
    """max over the uint32 patterns b (a float32 array's view) of pattern & 0x7FFFFFFF:
    the pattern of max|x|, 0 for an empty array."""
    m = np.uint32(0)
    for i in range(U(b.size)):
        v = np.uint32(b[i] & _ABS)
        m = v if v > m else m
    return m


@njit(cache=True)
def _rows_abs_max_bits(b2, out):
    for r in range(b2.shape[0]):
        out[r] = abs_max_bits(b2[r])


def abs_max_bits_rows(x2):
    """abs_max_bits of each row of the C float32 (S, m) array x2: uint32 (S,)."""
    out = np.empty(x2.shape[0], np.uint32)
    _rows_abs_max_bits(x2.view(np.uint32), out)
    return out
