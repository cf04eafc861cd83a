"""Kernels for intsim.kernels.quant (private): the per-row range (NumPy SIMD max/min) and
the fused scale/clip/round pass (Numba). Arrays are viewed as (rows, m): row r is one
independent tensor (batch_dims items flattened); work is split into tasks of
at most _CHUNK entries of one row so both cores share even a single tensor.
fastmath is off, so every operation matches the NumPy reference bit for bit.
"""
import numpy as np
from numba import njit, prange

from intsim.errors import NonFiniteError
from intsim.kernels._floatbits import NONFINITE, SIGN, rows_abs_max_bits
from intsim.kernels._rng import fill_range

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

_UBLOCK = 4096   # uniforms drawn per block into an L1-resident buffer


def _apply_sr_impl(x2, p, sdiv, lo, hi, keep, out, chunk):
    """Stochastic _apply_impl whose uniforms are float r * m + t of the PCG64 stream p
    (intsim.kernels._rng), drawn inside the kernel: the same values as
    rng.random(x2.shape, dtype=float32) fed to _apply_impl, without the array.

    Tasks are chunks of the flat array (a row's uniforms follow the previous row's in
    the stream), so many short rows (per-item tensors) share one buffer and one
    stream seek per _UBLOCK draws instead of one per row."""
    rows, m = x2.shape
    n = U(rows * m)
    mu = U(m)
    cu = U(chunk)
    xf = x2.reshape(-1)
    of = out.reshape(-1)
    ntask = (rows * m + chunk - 1) // chunk
    for task in prange(ntask):
        f0 = U(task) * cu
        f1 = min(n, f0 + cu)
        ub = np.empty(_UBLOCK, np.float32)
        for u0 in range(f0, f1, U(_UBLOCK)):
            u1 = min(f1, u0 + U(_UBLOCK))
            fill_range(p, u0, u1, ub)
            r = u0 // mu
            i0 = u0
            while i0 < u1:
                i1 = min(u1, (r + U(1)) * mu)      # the end of row r within this block
                k = i1 - i0
                if not keep[r]:
                    for t in range(k):
                        of[i0 + U(t)] = 0
                else:
                    s = sdiv[r]
                    a = lo[r]
                    b = hi[r]
                    o = i0 - u0
                    for t in range(k):
                        y = min(max(xf[i0 + U(t)] / s, a), b)
                        of[i0 + U(t)] = min(np.floor(y + ub[o + U(t)]), b)
                i0 = i1
                r += U(1)


_apply_sr_par = njit(parallel=True, cache=True)(_apply_sr_impl)
_apply_sr_ser = njit(cache=True)(_apply_sr_impl)


def row_range(x2):
    """(max, min) float64 arrays of length rows for the C (rows, m) float array x2 (m >= 1);
    raises NonFiniteError (a ValueError) on NaN or inf.

    NumPy's SIMD max/min reductions (10x the scalar kernel): they propagate NaN,
    so the input is finite iff both results are finite.
    """
    mx = x2.max(axis=1)
    mn = x2.min(axis=1)
    if not (np.isfinite(mx).all() and np.isfinite(mn).all()):
        raise NonFiniteError("quantize: input contains NaN or inf")
    return mx.astype(np.float64), mn.astype(np.float64)


def row_range_f32(x2):
    """row_range of a C (rows, m) float32 array (m >= 1) as (max|x| of each row, its
    negation where the row has an entry < 0, else 0) float64: not the rows' max and min,
    but the same max(max, -min) and the same min < 0, which is all the quantizer's
    scales read (quant._item_scales). Raises NonFiniteError on NaN or inf."""
    am, mr = rows_abs_max_bits(x2)
    if am.size and am.max() >= NONFINITE:
        raise NonFiniteError("quantize: input contains NaN or inf")
    amax = am.view(np.float32).astype(np.float64)
    return amax, np.where(mr > SIGN, -amax, 0.0)


def apply(x2, u2, sdiv, lo, hi, keep, stream=None):
    """Fused scale/clip/round of the C (rows, m) float array x2 -> float32 (rows, m).

    u2: float32 uniforms of x2's shape, or None for round-half-to-even.
    stream: instead of u2, a intsim.kernels._rng.Stream whose next x2.size
    float32 draws are the uniforms (drawn in the kernel; the caller advances
    the Generator)."""
    out = np.empty(x2.shape, np.float32)
    if stream is not None:
        dt = x2.dtype
        f = _apply_sr_par if x2.size >= _PAR_MIN else _apply_sr_ser
        f(x2, stream.params, sdiv.astype(dt), lo.astype(dt), hi.astype(dt),
          keep.astype(np.bool_), out, _CHUNK)
        return out
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


def item_range(x3):
    """(max, min) float64 arrays (S,) over axes 0 and 2 of the (A, S, M) float array x3;
    raises NonFiniteError on NaN or inf (NumPy's SIMD reductions propagate NaN)."""
    mx = x3.max(axis=2).max(axis=0)
    mn = x3.min(axis=2).min(axis=0)
    if not (np.isfinite(mx).all() and np.isfinite(mn).all()):
        raise NonFiniteError("quantize: input contains NaN or inf")
    return mx.astype(np.float64), mn.astype(np.float64)


_ROWS_TASK = 16   # rows of one item per parallel task in _apply_items


@njit(parallel=True, cache=True)
def _apply_items(x3, p, stochastic, sdiv, lo, hi, keep, out):
    """out[a, s] = round(clip(x3[a, s] / sdiv[s], lo[s], hi[s])) * keep[s] for (A, S, M)
    float32 C arrays; stochastic: min(floor(y + u), hi) with u the draw of index
    (s * A + a) * M + m of the PCG64 stream p (the item-major order). Flat uint64
    indices keep the inner loops vectorisable (see _apply_impl)."""
    A, S, M = x3.shape
    xf = x3.reshape(-1)
    of = out.reshape(-1)
    Mu = U(M)
    nt = (A + _ROWS_TASK - 1) // _ROWS_TASK
    rb = max(1, _UBLOCK // max(M, 1))        # rows whose draws fill one buffer
    for task in prange(S * nt):
        s = task // nt
        a0 = (task - s * nt) * _ROWS_TASK
        a1 = min(A, a0 + _ROWS_TASK)
        sd = sdiv[s]
        qa = lo[s]
        qb = hi[s]
        ub = np.empty(rb * M, np.float32)
        for r0 in range(a0, a1, rb):
            r1 = min(a1, r0 + rb)
            if stochastic and keep[s]:
                d0 = (s * A + r0) * M
                fill_range(p, d0, d0 + (r1 - r0) * M, ub)
            for a in range(r0, r1):
                b0 = U(a * S + s) * Mu
                if not keep[s]:
                    for m in range(Mu):
                        of[b0 + U(m)] = 0
                elif stochastic:
                    o = U(a - r0) * Mu
                    for m in range(Mu):
                        y = min(max(xf[b0 + U(m)] / sd, qa), qb)
                        of[b0 + U(m)] = min(np.floor(y + ub[o + U(m)]), qb)
                else:
                    for m in range(Mu):
                        of[b0 + U(m)] = np.rint(min(max(xf[b0 + U(m)] / sd, qa), qb))


def apply_items(x3, stream, sdiv, lo, hi, keep):
    """Fused scale/clip/round of the (A, S, M) float32 array x3 with per-item (axis 1)
    parameters -> float32 (A, S, M); stream: a PCG64 Stream (stochastic) or None (nearest)."""
    out = np.empty(x3.shape, np.float32)
    p = stream.params if stream is not None else np.zeros(6, np.uint64)
    _apply_items(x3, p, stream is not None, sdiv.astype(np.float32), lo.astype(np.float32),
                 hi.astype(np.float32), keep.astype(np.bool_), out)
    return out
