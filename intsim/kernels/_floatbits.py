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


#: the float32 sign bit; a raw pattern above it is a negative number (-0.0 is equal to it)
SIGN = np.uint32(0x80000000)


@njit(cache=True)
def _rows_abs_max_bits(b2, am, mr):
    """Per row r of the uint32 patterns b2 (rows, m) of a float32 array: am[r] = max of
    the patterns with the sign bit cleared (the pattern of max|x|) and mr[r] = max of the
    raw patterns (> SIGN iff the row has an entry < 0). Integer max reductions
    vectorise, also over short rows."""
    rows, m = b2.shape
    for r in range(rows):
        row = b2[r]
        a = np.uint32(0)
        w = np.uint32(0)
        for t in range(U(m)):
            v = row[t]
            va = np.uint32(v & _ABS)
            a = va if va > a else a
            w = v if v > w else w
        am[r] = a
        mr[r] = w


def rows_abs_max_bits(x2):
    """(am, mr) uint32 (rows,) of the C float32 (rows, m) array x2: each row's pattern of
    max|x| (>= NONFINITE iff the row holds a NaN or inf) and its largest raw pattern."""
    b2 = x2.view(np.uint32)
    am = np.empty(b2.shape[0], np.uint32)
    mr = np.empty(b2.shape[0], np.uint32)
    _rows_abs_max_bits(b2, am, mr)
    return am, mr
