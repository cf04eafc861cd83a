"""FWHT implementation details for intsim.kernels.hadamard (private).

fwht_axis(x, axis) views x as (pre, n, post) with the transform on the middle
axis in blocks of p = bp2(n), and runs one of two Numba kernels:
- post == 1 (last axis): each block of p contiguous entries is transformed
  while it sits in L1: a scalar 8-point pass (stages 1, 2, 4) reads x and
  writes the output, then radix-4 passes (two stages each) whose innermost loop
  runs over h contiguous entries, which LLVM vectorises;
- post > 1: a (p, C) tile (p rows of C <= post contiguous columns) is gathered
  into a contiguous scratch with the top stage fused into the gather (when the
  tile is already contiguous, C == post, the output itself is the scratch); the
  other stages run in the scratch (first on groups of rows small enough for L1, then
  across groups) with the innermost loop over contiguous columns; the tile is
  then written out.
Indices are uint64 on purpose: Numba adds a negative-index wraparound select
to every signed index, which stops LLVM from vectorising the loops.
Both kernels work in the array's own dtype (float32/float64; integers run in
int64 and are cast back, which wraps exactly like the dense int64 product);
fastmath is off, so float adds of integers below 2^24 (float32) stay exact.
Small arrays use serial builds of the same kernels (no thread wake-up cost).
"""
import numpy as np
from numba import njit, prange

U = np.uint64
_GROUP = 4096        # elements of one L1-resident row group in the tiled kernel
_TILE = 1 << 18      # target elements of one (p, C) tile (1 MB float32, in L2)
_PAR_MIN = 1 << 15   # arrays smaller than this run the serial kernels
_TASK = 8192         # elements per parallel task in the last-axis kernel


@njit(inline="always")
def _r8(x, a, g):
    """a[g:g+8] = H_8 x[g:g+8] (g uint64)."""
    a0 = x[g]; a1 = x[g + U(1)]; a2 = x[g + U(2)]; a3 = x[g + U(3)]  # noqa: E702
    a4 = x[g + U(4)]; a5 = x[g + U(5)]; a6 = x[g + U(6)]; a7 = x[g + U(7)]  # noqa: E702
    b0 = a0 + a1; b1 = a0 - a1; b2 = a2 + a3; b3 = a2 - a3  # noqa: E702
    b4 = a4 + a5; b5 = a4 - a5; b6 = a6 + a7; b7 = a6 - a7  # noqa: E702
    c0 = b0 + b2; c1 = b1 + b3; c2 = b0 - b2; c3 = b1 - b3  # noqa: E702
    c4 = b4 + b6; c5 = b5 + b7; c6 = b4 - b6; c7 = b5 - b7  # noqa: E702
    a[g] = c0 + c4; a[g + U(1)] = c1 + c5; a[g + U(2)] = c2 + c6; a[g + U(3)] = c3 + c7  # noqa: E702
    a[g + U(4)] = c0 - c4; a[g + U(5)] = c1 - c5  # noqa: E702
    a[g + U(6)] = c2 - c6; a[g + U(7)] = c3 - c7  # noqa: E702


@njit(inline="always")
def top_stage(x, x0, xs, y, y0, ys, hp, n):
    """The top butterfly stage of a p-row block (hp = p/2 uint64): for rows j < hp,
    y[j] = x[j] + x[j + hp] and y[j + hp] = x[j] - x[j + hp] over n contiguous
    entries; row j of x starts at x0 + j xs, of y at y0 + j ys (uint64 offsets;
    x and y may be the same array with the same rows: each pair is read first)."""
    for j in range(hp):
        xa = x0 + U(j) * xs
        xb = xa + hp * xs
        ya = y0 + U(j) * ys
        yb = ya + hp * ys
        for t in range(n):
            u = x[xa + U(t)]
            v = x[xb + U(t)]
            y[ya + U(t)] = u + v
            y[yb + U(t)] = u - v


@njit(cache=True)
def _stages(a, b0, h, span):
    """In place on a[b0:b0+span]: butterfly stages at strides h, 2h, ..., span/2.

    b0, h, span: non-negative integers (any integer type); span / h a power of
    two. Radix-4 (two stages per pass) with a final radix-2 pass when the number
    of stages is odd. Each butterfly's operands are taken as separate slice
    views: with four distinct pointers LLVM vectorises the inner loop (with
    offsets into one array it cannot rule out overlap and stays scalar, 2x slower).
    Not inlined: the kernels call it from several places, and each inlined copy of
    these loops cost seconds of compile time on a cold cache.
    """
    o = np.int64(b0)
    hh = np.int64(h)
    sp = np.int64(span)
    while 4 * hh <= sp:
        for s in range(sp // (4 * hh)):
            o0 = o + s * 4 * hh
            x0 = a[o0:o0 + hh]
            x1 = a[o0 + hh:o0 + 2 * hh]
            x2 = a[o0 + 2 * hh:o0 + 3 * hh]
            x3 = a[o0 + 3 * hh:o0 + 4 * hh]
            for t in range(hh):
                u0 = x0[t]; u1 = x1[t]; u2 = x2[t]; u3 = x3[t]  # noqa: E702
                v0 = u0 + u1; v1 = u0 - u1; v2 = u2 + u3; v3 = u2 - u3  # noqa: E702
                x0[t] = v0 + v2; x1[t] = v1 + v3  # noqa: E702
                x2[t] = v0 - v2; x3[t] = v1 - v3  # noqa: E702
        hh = 4 * hh
    if hh < sp:
        for s in range(sp // (2 * hh)):
            o0 = o + s * 2 * hh
            x0 = a[o0:o0 + hh]
            x1 = a[o0 + hh:o0 + 2 * hh]
            for t in range(hh):
                u0 = x0[t]; u1 = x1[t]  # noqa: E702
                x0[t] = u0 + u1; x1[t] = u0 - u1  # noqa: E702


def _rows_impl(x, out, p, per_task):
    """out = H_p on consecutive blocks of p of the flat C arrays x, out (same size)."""
    pu = U(p)
    nblk = U(x.size) // pu
    per = U(per_task)
    ntask = int((nblk + per - U(1)) // per)
    for task in prange(ntask):
        k0 = U(task) * per
        k1 = min(nblk, k0 + per)
        for k in range(k0, k1):
            b0 = U(k) * pu
            if pu >= U(8):
                for g in range(pu // U(8)):
                    _r8(x, out, b0 + U(g) * U(8))
                _stages(out, b0, U(8), pu)
            else:
                for t in range(pu):
                    out[b0 + U(t)] = x[b0 + U(t)]
                _stages(out, b0, U(1), pu)


def _tiles_impl(x, out, p, C, group):
    """out = H_p along axis 1 of the C arrays x, out of shape (pre, n, post), p >= 2."""
    pre, n, post = x.shape
    xf = x.reshape(-1)
    of = out.reshape(-1)
    nb = n // p
    nch = (post + C - 1) // C
    hp = U(p // 2)
    st = U(post)
    for task in prange(pre * nb * nch):
        c = task % nch
        rest = task // nch
        blk = rest % nb
        i = rest // nb
        c0 = c * C
        cw = U(min(post, c0 + C) - c0)
        base = U((i * n + blk * p) * post + c0)   # flat offset of the tile's first entry
        if cw == st:
            # the whole tile is contiguous in out: work there, no scratch, no write-back
            sc = of
            w0 = base
        else:
            sc = np.empty(p * int(cw), x.dtype)
            w0 = U(0)
        # gather, fused with the top stage (rows j and j + p/2)
        top_stage(xf, base, st, sc, w0, cw, hp, cw)
        half = hp * cw
        if hp > U(1):
            g = U(1)   # rows per L1-resident group
            while g < hp and U(2) * g * cw <= U(group):
                g = U(2) * g
            gs = g * cw
            for b in range(U(2) * half // gs):
                _stages(sc, w0 + U(b) * gs, cw, gs)
            if gs < half:
                _stages(sc, w0, gs, half)
                _stages(sc, w0 + half, gs, half)
        if cw != st:
            for j in range(U(p)):
                ya = base + U(j) * st
                sa = U(j) * cw
                for t in range(cw):
                    of[ya + U(t)] = sc[sa + U(t)]


_rows_par = njit(parallel=True, cache=True)(_rows_impl)
_rows_ser = njit(cache=True)(_rows_impl)
_tiles_par = njit(parallel=True, cache=True)(_tiles_impl)
_tiles_ser = njit(cache=True)(_tiles_impl)


def _run(xc, p, pre, n, post):
    """Transform of the C-contiguous float32/float64/int64 array xc; returns a new array."""
    out = np.empty_like(xc)
    par = xc.size >= _PAR_MIN
    if post == 1:
        per = max(1, _TASK // p)
        (_rows_par if par else _rows_ser)(xc.reshape(-1), out.reshape(-1), p, per)
    else:
        C = min(post, max(16, _TILE // p))
        f = _tiles_par if par else _tiles_ser
        f(xc.reshape(pre, n, post), out.reshape(pre, n, post), p, C, _GROUP)
    return out


def fwht_axis(x, axis):
    """Transform of x along ``axis`` (already validated); returns a new C array of x.dtype."""
    shape = x.shape
    n = shape[axis]
    p = n & -n
    pre = int(np.prod(shape[:axis], dtype=np.int64))
    post = int(np.prod(shape[axis + 1:], dtype=np.int64))
    if p == 1:
        return np.array(x, order="C", copy=True)
    if np.issubdtype(x.dtype, np.integer):
        y = _run(np.ascontiguousarray(x, dtype=np.int64), p, pre, n, post)
        return y.astype(x.dtype, copy=False)
    if x.dtype not in (np.float32, np.float64):
        return _run(np.ascontiguousarray(x, dtype=np.float64), p, pre, n, post).astype(x.dtype)
    return _run(np.ascontiguousarray(x), p, pre, n, post)
