"""Kernels for intsim.quant (private): the per-row range (NumPy SIMD max/min) and
the fused scale/clip/round pass (Numba). Arrays are viewed as (rows, m): row r is one
independent tensor (batch_dims items flattened); work is split into tasks of
at most _CHUNK entries of one row so both cores share even a single tensor.
fastmath is off, so every operation matches the NumPy reference bit for bit.
"""
import numpy as np
from numba import njit, prange

U = np.uint64
_CHUNK = 1 << 16
_PAR_MIN = 1 << 16   # smaller arrays use the serial builds


def _apply_impl(x2, u2, sdiv, lo, hi, keep, stochastic, out, chunk):
    """out[r] = round(clip(x2[r] / sdiv[r], lo[r], hi[r])) * keep[r] (float32 out).

    nearest: rint (half to even); stochastic: min(floor(y + u), hi) with u2 the
    uniforms (same shape as x2). sdiv, lo, hi have x2's dtype, one entry per row.
    """
    rows, m = x2.shape
    nch = (m + chunk - 1) // chunk
    xf = x2.reshape(-1)
    of = out.reshape(-1)
    uf = u2.reshape(-1)
    for task in prange(rows * nch):
        r = task // nch
        c = task % nch
        b0 = U(r * m + c * chunk)
        k = U(min(m, (c + 1) * chunk) - c * chunk)
        s = sdiv[r]
        a = lo[r]
        b = hi[r]
        if not keep[r]:
            for t in range(k):
                of[b0 + U(t)] = 0
        elif stochastic:
            for t in range(k):
                y = min(max(xf[b0 + U(t)] / s, a), b)
                of[b0 + U(t)] = min(np.floor(y + uf[b0 + U(t)]), b)
        else:
            for t in range(k):
                y = min(max(xf[b0 + U(t)] / s, a), b)
                of[b0 + U(t)] = np.rint(y)


_apply_par = njit(parallel=True, cache=True)(_apply_impl)
_apply_ser = njit(cache=True)(_apply_impl)


def row_range(x2):
    """(max, min) float64 arrays of length rows for the C (rows, m) float array x2 (m >= 1);
    raises ValueError on NaN or inf.

    NumPy's SIMD max/min reductions (10x the scalar kernel): they propagate NaN,
    so the input is finite iff both results are finite.
    """
    mx = x2.max(axis=1)
    mn = x2.min(axis=1)
    if not (np.isfinite(mx).all() and np.isfinite(mn).all()):
        raise ValueError("quantize: input contains NaN or inf")
    return mx.astype(np.float64), mn.astype(np.float64)


def apply(x2, u2, sdiv, lo, hi, keep):
    """Fused scale/clip/round of the C (rows, m) float array x2 -> float32 (rows, m).

    u2: float32 uniforms of x2's shape, or None for round-half-to-even."""
    out = np.empty(x2.shape, np.float32)
    stochastic = u2 is not None
    if u2 is None:
        u2 = np.zeros((1, 1), np.float32)
    dt = x2.dtype
    f = _apply_par if x2.size >= _PAR_MIN else _apply_ser
    f(x2, u2, sdiv.astype(dt), lo.astype(dt), hi.astype(dt), keep.astype(np.bool_),
      stochastic, out, _CHUNK)
    return out


@njit(cache=True)
def _levels_seen(qf, qmin, qmax):
    """seen[l] = 1 if level qmin + l occurs in the flat array qf (values truncated to
    integers, as astype(int64) does). Returns (seen uint8, ok) with ok False when a
    value lies outside [qmin, qmax] or is NaN."""
    n = qmax - qmin + 1
    seen = np.zeros(n, np.uint8)
    if n <= 64:
        # 16 lanes of 64-bit level masks: the OR-reduction vectorises
        mask = np.zeros(16, np.uint64)
        bad = np.zeros(16, np.uint8)
        nb = qf.size // 16
        for t in range(nb):
            for l in range(16):
                v = qf[t * 16 + l]
                d = np.int64(v) - qmin
                bad[l] |= (d < 0) | (d >= n) | (v != v)
                mask[l] |= U(1) << U(d & 63)
        m = U(0)
        for l in range(16):
            m |= mask[l]
            if bad[l]:
                return seen, False
        for t in range(nb * 16, qf.size):
            v = qf[t]
            d = np.int64(v) - qmin
            if d < 0 or d >= n or v != v:
                return seen, False
            m |= U(1) << U(d)
        for i in range(n):
            seen[i] = (m >> U(i)) & U(1)
        return seen, True
    for t in range(qf.size):
        v = qf[t]
        iv = np.int64(v)
        if iv < qmin or iv > qmax or v != v:
            return seen, False
        seen[iv - qmin] = 1
    return seen, True


def levels_seen(q, qmin, qmax):
    """(seen uint8 (qmax - qmin + 1,), ok) for any real array q; see _levels_seen."""
    qf = np.ascontiguousarray(q).reshape(-1)
    if qf.dtype == np.bool_ or qf.dtype.kind not in "fiu":
        qf = qf.astype(np.int64)
    return _levels_seen(qf, qmin, qmax)
