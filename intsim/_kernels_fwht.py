"""FWHT implementation details for intsim.hadamard (private).

fwht_axis(x, axis) views x as (pre, n, post) with the transform on the middle
axis in blocks of p = bp2(n). Strategy (hdqt.md section 13):
- transform on the last axis (post == 1): multiply blocks of q = min(p, 32..128)
  consecutive entries by the dense H_q through BLAS, then (p > q) finish with the
  Numba butterflies on the (rows, p/q, q) view, since H_p = H_{p/q} (x) H_q;
- other axes: Numba butterflies on the middle axis, vectorised over ``post``.
Integer inputs use float64 BLAS only when max|x| * q < 2^53 (provably exact),
and int64 butterflies otherwise; results are cast back to x's dtype (wrapping).
"""
import numpy as np
from numba import njit, prange

_DENSE_MAX = 128   # last-axis blocks up to this size: dense BLAS only
_DENSE_Q = 32      # first-stage BLAS block for larger last-axis blocks
_CHUNK = 64        # post-axis chunk of one Numba task (keeps a block in L2)


@njit(parallel=True, cache=True)
def _fwht_mid(y, p):
    """In place: H_p on consecutive blocks of p along axis 1 of y (pre, n, post)."""
    pre, n, post = y.shape
    nb = n // p
    nch = (post + _CHUNK - 1) // _CHUNK
    for task in prange(pre * nb * nch):
        c = task % nch
        rest = task // nch
        blk = rest % nb
        i = rest // nb
        c0 = c * _CHUNK
        c1 = min(post, c0 + _CHUNK)
        base = blk * p
        h = 1
        while h < p:
            for s in range(base, base + p, 2 * h):
                for j in range(s, s + h):
                    ra = y[i, j, c0:c1]
                    rb = y[i, j + h, c0:c1]
                    for t in range(c1 - c0):
                        u = ra[t]
                        v = rb[t]
                        ra[t] = u + v
                        rb[t] = u - v
            h *= 2


_H_CACHE = {}


def _hmat(q, dtype):
    key = (q, np.dtype(dtype).str)
    h = _H_CACHE.get(key)
    if h is None:
        from intsim.hadamard import sylvester
        h = sylvester(q, dtype)
        h.setflags(write=False)
        _H_CACHE[key] = h
    return h


def _last_axis(x2, p, dtype):
    """H_p on blocks of p along the last axis of the 2-D (rows, n) float array x2 -> new array."""
    q = p if p <= _DENSE_MAX else _DENSE_Q
    rows = x2.reshape(-1, q)
    y = rows @ _hmat(q, dtype)
    if p > q:
        _fwht_mid(y.reshape(-1, p // q, q), p // q)
    return y.reshape(x2.shape)


def fwht_axis(x, axis):
    """Transform of x along ``axis`` (already validated); returns a new C array of x.dtype."""
    shape = x.shape
    n = shape[axis]
    p = n & -n
    pre = int(np.prod(shape[:axis], dtype=np.int64))
    post = int(np.prod(shape[axis + 1:], dtype=np.int64))
    if p == 1:
        return np.array(x, order="C", copy=True)
    integer = np.issubdtype(x.dtype, np.integer)
    if not integer:
        if x.dtype not in (np.float32, np.float64):
            y = fwht_axis(x.astype(np.float64), axis)
            return y.astype(x.dtype)
        if post == 1:
            return _last_axis(np.ascontiguousarray(x).reshape(pre, n), p, x.dtype).reshape(shape)
        y = np.array(x, order="C", copy=True)
        _fwht_mid(y.reshape(pre, n, post), p)
        return y
    if post == 1:
        q = p if p <= _DENSE_MAX else _DENSE_Q
        xmax = float(max(int(x.max()), -int(x.min())))
        if xmax * q < 2.0 ** 53:
            rows = np.ascontiguousarray(x, dtype=np.float64).reshape(-1, q)
            y = (rows @ _hmat(q, np.float64)).astype(np.int64)
            if p > q:
                _fwht_mid(y.reshape(-1, p // q, q), p // q)
            return y.reshape(shape).astype(x.dtype)
    y = np.array(x, order="C", dtype=np.int64, copy=True)
    _fwht_mid(y.reshape(pre, n, post), p)
    return y.astype(x.dtype, copy=False)
