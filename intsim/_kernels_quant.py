"""Numba kernels for intsim.quant (private): one-pass range reduction and the
fused scale/clip/round pass. Arrays are viewed as (rows, m): row r is one
independent tensor (batch_dims items flattened); work is split into tasks of
at most _CHUNK entries of one row so both cores share even a single tensor.
fastmath is off, so every operation matches the NumPy reference bit for bit.
"""
import numpy as np
from numba import njit, prange

U = np.uint64
_CHUNK = 1 << 16
_PAR_MIN = 1 << 16   # smaller arrays use the serial builds


def _range_impl(x2, chunk):
    """Per-task (max, min, bad) of the (rows, m) C array x2; bad = sum of x*0 (NaN iff non-finite)."""
    rows, m = x2.shape
    nch = (m + chunk - 1) // chunk
    mx = np.empty(rows * nch, np.float64)
    mn = np.empty(rows * nch, np.float64)
    bad = np.empty(rows * nch, np.float64)
    xf = x2.reshape(-1)
    for task in prange(rows * nch):
        r = task // nch
        c = task % nch
        b0 = U(r * m + c * chunk)
        k = U(min(m, (c + 1) * chunk) - c * chunk)
        hi = xf[b0]
        lo = xf[b0]
        z = xf[b0] * 0
        for t in range(k):
            v = xf[b0 + U(t)]
            hi = max(hi, v)
            lo = min(lo, v)
            z += v * 0
        mx[task] = hi
        mn[task] = lo
        bad[task] = z
    return mx, mn, bad


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


_range_par = njit(parallel=True, cache=True)(_range_impl)
_range_ser = njit(cache=True)(_range_impl)
_apply_par = njit(parallel=True, cache=True)(_apply_impl)
_apply_ser = njit(cache=True)(_apply_impl)


def row_range(x2):
    """(max, min) float64 arrays of length rows for the C (rows, m) float array x2 (m >= 1);
    raises ValueError on NaN or inf."""
    rows, m = x2.shape
    f = _range_par if x2.size >= _PAR_MIN else _range_ser
    with np.errstate(invalid="ignore"):   # inf * 0 warns when the JIT is off
        mx, mn, bad = f(x2, _CHUNK)
    if not np.isfinite(bad).all():
        raise ValueError("quantize: input contains NaN or inf")
    nch = len(mx) // rows
    return mx.reshape(rows, nch).max(axis=1), mn.reshape(rows, nch).min(axis=1)


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
