"""Kernels behind intsim.kernels.intmm (private): tiled BLAS matmul + fused tile reduction,
and the saturating-accumulator kernel.

Operands arrive already cast to the exact compute dtype chosen by
intmm.matmul_acc; each entry point returns (out, n_saturated, max_abs_tile_sum).
"""
import numba
import numpy as np
from numba import njit, prange

from intsim.kernels.threads import numpy_blas_single

_WIDE, _CLAMP, _WRAP = 0, 1, 2
_U = np.uint64
_MODE_CODE = {"wide": _WIDE, "clamp": _CLAMP, "wrap": _WRAP}
# rows x N elements of one tile product in the 2-D path (float32: 512 KB, in L2)
_ROW_ELEMS = 1 << 17
# outputs below this many elements use one batched matmul over all tiles instead
_SMALL_OUT = 1 << 14
# outputs narrower than this batch a row block's tiles into one matmul call
_WIDE_N = 256
# a row block's exact tile sums (tile planes x rows x N, the narrow tiled path and
# the saturate path) kept at most this size: buffers of about 1 MB
_BLOCK_ELEMS = 1 << 18


@njit(inline="always")
def _range_consts(P, L, half):
    """The accumulator's constants in P's dtype: (L, 2 half, 1 / (2 half), half)."""
    dt = P.dtype.type
    return dt(L), dt(2.0 * half), dt(1.0 / (2.0 * half)), dt(half)


@njit(inline="always", fastmath=True)
def _add_tile_row(row, acc, sat, big, Lt, m2, inv, hf, mode, want):
    """acc[j] += f(row[j]) for one row of exact tile sums (f: identity / clip to +-Lt /
    wrap mod m2, mode 0/1/2), and when ``want`` the per-column saturation counts
    sat[j] (+1 where row[j] leaves the range, _outside) and maxima big[j] of |row[j]|.
    One loop per mode (a mode test inside the loop keeps LLVM from vectorising it)."""
    N = row.shape[0]
    one = sat.dtype.type(1)
    zero = sat.dtype.type(0)
    if want:
        if mode == 2:
            for j in range(N):
                v = row[j]
                sat[j] += one if (v > Lt) | (v < -Lt - one) else zero
                big[j] = max(big[j], abs(v))
        else:
            for j in range(N):
                v = row[j]
                sat[j] += one if (v > Lt) | (v < -Lt) else zero
                big[j] = max(big[j], abs(v))
    if mode == 1:
        for j in range(N):
            acc[j] += min(max(row[j], -Lt), Lt)
    elif mode == 2:
        for j in range(N):
            v = row[j]
            acc[j] += v - m2 * np.floor((v + hf) * inv)
    else:
        for j in range(N):
            acc[j] += row[j]


# Serial on purpose: it runs between OpenBLAS calls, and Numba's OpenMP threads
# spinning after a parallel region starved OpenBLAS's threads (60x slowdowns
# measured on the loaded 2-core machine). It is memory-bound anyway.
@njit(cache=True, fastmath=True)
def _reduce_tiles(P, out, L, half, mode, want):
    """out[b, i, j] += sum_t f(P[b, t, i, j]); f = identity / clip to +-L / wrap mod 2*half.

    P: (B, nT, M, N) float32/float64 exact tile sums; out: (B, M, N). Returns
    (count of P outside the range (_outside), max |P|) when ``want`` (else zeros). fastmath only reorders
    sums and min/max of exact integers, which cannot change the result.
    Per-column accumulators (saturation counts held in P's dtype, exact below
    2^24 tiles) keep every inner loop free of cross-lane reductions, so LLVM
    vectorises them: 4.5x faster than one scalar count per row.
    """
    B, nT, M, N = P.shape
    nsat = np.zeros(B * M, np.int64)
    mx = np.zeros(B * M, np.float64)
    Lt, m2, inv, hf = _range_consts(P, L, half)
    acc = np.empty(N, out.dtype)   # out's dtype: the exact width of the whole sum
    sat = np.empty(N, P.dtype)
    big = np.empty(N, P.dtype)
    for r in range(B * M):
        b = r // M
        i = r - b * M
        acc[:] = 0
        sat[:] = 0
        big[:] = 0
        for t in range(nT):
            _add_tile_row(P[b, t, i], acc, sat, big, Lt, m2, inv, hf, mode, want)
        o = out[b, i]
        for j in range(N):
            o[j] += acc[j]
        if want:
            nsat[r] = np.int64(sat.sum())
            mx[r] = big.max()
    return nsat.sum(), mx.max()



@njit(cache=True, fastmath=True, nogil=True)
def _clip_acc(P, out, L, half, mode, want, first):
    """out (=|+=) f(P) elementwise for 2-D P (R, N), out (R, N) (out may be P itself).

    f = identity / clip to +-L / wrap mod 2*half (mode 0/1/2). Returns
    (count of P outside the range (_outside), max |P|) when ``want`` (else zeros). Per-column lane
    counters keep the inner loop vectorisable; fastmath only reorders exact
    integer min/max, which cannot change the result.
    """
    R, N = P.shape
    dt = P.dtype.type
    Lt = dt(L)
    m2 = dt(2.0 * half)
    inv = dt(1.0 / (2.0 * half))
    hf = dt(half)
    sat = np.zeros(N, P.dtype)   # per-column counts, flushed to nsat every 2^20 rows (exact)
    big = np.zeros(N, P.dtype)
    one = dt(1)
    zero = dt(0)
    nsat = 0
    for i in range(R):
        row = P[i]
        o = out[i]
        if want and mode == 1 and not first:
            # the common case (clamped forward tiles) in one loop
            for j in range(N):
                v = row[j]
                sat[j] += one if (v > Lt) | (v < -Lt) else zero
                big[j] = max(big[j], abs(v))
                o[j] += min(max(v, -Lt), Lt)
            if (i & 0xFFFFF) == 0xFFFFF:
                for j in range(N):
                    nsat += np.int64(sat[j])
                sat[:] = 0
            continue
        if want:
            for j in range(N):
                v = row[j]
                sat[j] += one if _outside(v, Lt, mode) else zero
                big[j] = max(big[j], abs(v))
            if (i & 0xFFFFF) == 0xFFFFF:
                for j in range(N):
                    nsat += np.int64(sat[j])
                sat[:] = 0
        if mode == 1:
            if first:
                for j in range(N):
                    o[j] = min(max(row[j], -Lt), Lt)
            else:
                for j in range(N):
                    o[j] += min(max(row[j], -Lt), Lt)
        elif mode == 2:
            if first:
                for j in range(N):
                    v = row[j]
                    o[j] = v - m2 * np.floor((v + hf) * inv)
            else:
                for j in range(N):
                    v = row[j]
                    o[j] += v - m2 * np.floor((v + hf) * inv)
        else:
            if first:
                for j in range(N):
                    o[j] = row[j]
            else:
                for j in range(N):
                    o[j] += row[j]
    if want and N:
        for j in range(N):
            nsat += np.int64(sat[j])
        return nsat, np.float64(big.max())
    return 0, 0.0


@njit(parallel=True, cache=True, fastmath=True)
def _reduce_planes(P, out, L, half, mode, want, S):
    """out[i, j] += sum_t f(tile sums in P[t, i, j]), in parallel over rows.

    P: (nP, R, N) float32/float64 exact values; out: (R, N). S = 0: each entry
    is one tile sum. S > 0 (a power of two): each entry packs two tile sums
    lo + S * hi with |lo|, |hi| < S / 2, decoded exactly as hi = round(v / S),
    lo = v - S * hi (v / S is a power-of-two scaling, so exact). f = identity /
    clip to +-L / wrap mod 2*half (mode 0/1/2). Returns (count of tile sums outside
    the range (_outside), max |tile sum|) when ``want`` (else zeros). fastmath only reorders sums and
    min/max of exact integers, which cannot change the result.
    """
    nP, R, N = P.shape
    dt = P.dtype.type
    Lt = dt(L)
    m2 = dt(2.0 * half)
    inv = dt(1.0 / (2.0 * half))
    hf = dt(half)
    St = dt(S)
    iS = dt(1.0 / S) if S > 0 else dt(0)
    h5 = dt(0.5)
    one = dt(1)
    zero = dt(0)
    packed = S > 0
    nsat = np.zeros(R, np.int64)
    mx = np.zeros(R, np.float64)
    for i in prange(R):
        acc = np.zeros(N, out.dtype)   # out's dtype: the exact width of the whole sum
        sat = np.zeros(N, P.dtype)     # per-column counts: the loop stays vectorisable
        big = np.zeros(N, P.dtype)
        for t in range(nP):
            row = P[t, i]
            for j in range(N):
                v = row[j]
                if packed:
                    hi = np.floor(v * iS + h5)
                    lo = v - St * hi
                else:
                    hi = zero
                    lo = v
                if want:
                    ah = abs(hi)
                    al = abs(lo)
                    sat[j] += (one if _outside(hi, Lt, mode) else zero) \
                        + (one if _outside(lo, Lt, mode) else zero)
                    big[j] = max(big[j], max(ah, al))
                if mode == 1:
                    acc[j] += min(max(hi, -Lt), Lt) + min(max(lo, -Lt), Lt)
                elif mode == 2:
                    acc[j] += (hi - m2 * np.floor((hi + hf) * inv)) \
                        + (lo - m2 * np.floor((lo + hf) * inv))
                else:
                    acc[j] += hi + lo
        o = out[i]
        for j in range(N):
            o[j] += acc[j]
        if want:
            nsat[i] = np.int64(sat.sum())
            mx[i] = big.max()
    return nsat.sum(), mx.max()


_PLANE_ROWS = 64     # rows of one _reduce_flat_planes task


@njit(parallel=True, cache=True, fastmath=True)
def _reduce_flat_planes(P, out, L, half, mode, want):
    """_reduce_planes with S = 0 (one tile sum per entry), the same results: out[i, j] +=
    sum_t f(P[t, i, j]) and (count of tile sums outside the range, max |tile sum|) when
    ``want``. Loops specialised per mode (the one general loop of _reduce_planes does not
    vectorise with the audit on); rows in blocks of _PLANE_ROWS per parallel task.
    """
    nP, R, N = P.shape
    Lt, m2, inv, hf = _range_consts(P, L, half)
    nblk = (R + _PLANE_ROWS - 1) // _PLANE_ROWS
    nsat = np.zeros(nblk, np.int64)
    mx = np.zeros(nblk, np.float64)
    for blk in prange(nblk):
        acc = np.empty(N, out.dtype)   # out's dtype: the exact width of the whole sum
        sat = np.zeros(N, P.dtype)     # per-column counts (exact: < 2^24 entries a block)
        big = np.zeros(N, P.dtype)
        for i in range(blk * _PLANE_ROWS, min(R, (blk + 1) * _PLANE_ROWS)):
            acc[:] = 0
            for t in range(nP):
                _add_tile_row(P[t, i], acc, sat, big, Lt, m2, inv, hf, mode, want)
            o = out[i]
            for j in range(N):
                o[j] += acc[j]
        if want:
            c = 0
            for j in range(N):
                c += np.int64(sat[j])
            nsat[blk] = c
            mx[blk] = np.float64(big.max()) if N else 0.0
    return nsat.sum(), mx.max()


# a few rows (a conv's output channels) against a very wide b (its B*L positions)
_FEW_ROWS = 320
_FEW_ROWS_MIN_N = 4096   # and only this wide (measured faster than BLAS + a clip pass)
_COL_BLOCK = 512     # columns of b per task: a tile's rows of b stay in L1/L2
_ROW_GROUP = 4       # rows of a sharing each load of b


@njit(parallel=True, cache=True, fastmath=True)
def _few_rows_tiled(a, b, T, L, half, mode, want, out):
    """out = sum over K-tiles of f(exact tile sum) for a (R, K) @ b (K, J), R small.

    Direct kernel (no BLAS): per block of _COL_BLOCK columns, tile by tile, each
    group of _ROW_GROUP rows of a accumulates its tile sums in an L1 buffer with
    one load of b per column for the whole group, then clips (mode 1) or wraps
    (mode 2) them into the running totals. Operands are exact integers in a
    float dtype chosen by the caller so every tile sum is exact; fastmath only
    contracts and reorders exact integer arithmetic. Returns (count of tile sums
    outside the range (_outside), max |tile sum|) when ``want``.
    """
    R, K = a.shape
    J = b.shape[1]
    Lt, m2, inv, hf = _range_consts(b, L, half)
    G = _ROW_GROUP
    nblk = (J + _COL_BLOCK - 1) // _COL_BLOCK
    nsat = np.zeros(nblk, np.int64)
    mx = np.zeros(nblk, np.float64)
    for blk in prange(nblk):
        j0 = blk * _COL_BLOCK
        w = min(J, j0 + _COL_BLOCK) - j0
        tot = np.zeros((R, w), out.dtype)
        acc = np.empty((G, w), b.dtype)
        sat = np.zeros(w, b.dtype)
        big = np.zeros(w, b.dtype)
        for t0 in range(0, K, T):
            t1 = min(K, t0 + T)
            for r0 in range(0, R, G):
                g = min(G, R - r0)
                acc[:, :] = 0
                if g == G:
                    a0 = acc[0]
                    a1 = acc[1]
                    a2 = acc[2]
                    a3 = acc[3]
                    k4 = t0 + (t1 - t0) // 4 * 4
                    for k in range(t0, k4, 4):
                        # four k at a time: 8 loads and 4 stores per 16 multiply-adds
                        w00 = a[r0, k]
                        w01 = a[r0, k + 1]
                        w02 = a[r0, k + 2]
                        w03 = a[r0, k + 3]
                        w10 = a[r0 + 1, k]
                        w11 = a[r0 + 1, k + 1]
                        w12 = a[r0 + 1, k + 2]
                        w13 = a[r0 + 1, k + 3]
                        w20 = a[r0 + 2, k]
                        w21 = a[r0 + 2, k + 1]
                        w22 = a[r0 + 2, k + 2]
                        w23 = a[r0 + 2, k + 3]
                        w30 = a[r0 + 3, k]
                        w31 = a[r0 + 3, k + 1]
                        w32 = a[r0 + 3, k + 2]
                        w33 = a[r0 + 3, k + 3]
                        b0r = b[k, j0:j0 + w]
                        b1r = b[k + 1, j0:j0 + w]
                        b2r = b[k + 2, j0:j0 + w]
                        b3r = b[k + 3, j0:j0 + w]
                        for j in range(w):
                            v0 = b0r[j]
                            v1 = b1r[j]
                            v2 = b2r[j]
                            v3 = b3r[j]
                            a0[j] += w00 * v0 + w01 * v1 + w02 * v2 + w03 * v3
                            a1[j] += w10 * v0 + w11 * v1 + w12 * v2 + w13 * v3
                            a2[j] += w20 * v0 + w21 * v1 + w22 * v2 + w23 * v3
                            a3[j] += w30 * v0 + w31 * v1 + w32 * v2 + w33 * v3
                    for k in range(k4, t1):
                        w0 = a[r0, k]
                        w1 = a[r0 + 1, k]
                        w2 = a[r0 + 2, k]
                        w3 = a[r0 + 3, k]
                        br = b[k, j0:j0 + w]
                        for j in range(w):
                            bv = br[j]
                            a0[j] += w0 * bv
                            a1[j] += w1 * bv
                            a2[j] += w2 * bv
                            a3[j] += w3 * bv
                else:
                    for r in range(g):
                        ar = acc[r]
                        for k in range(t0, t1):
                            wv = a[r0 + r, k]
                            br = b[k, j0:j0 + w]
                            for j in range(w):
                                ar[j] += wv * br[j]
                for r in range(g):
                    ar = acc[r]
                    tr = tot[r0 + r]
                    if want:
                        _audit_row(ar, sat, big, Lt, mode)
                    for j in range(w):
                        tr[j] += _fold(ar[j], Lt, m2, inv, hf, mode)
        for r in range(R):
            out[r, j0:j0 + w] = tot[r]
        if want:
            c = 0
            for j in range(w):
                c += np.int64(sat[j])
            nsat[blk] = c
            mx[blk] = np.float64(big.max())
    return nsat.sum(), mx.max()


@njit(inline="always")
def _outside(v, Lt, mode):
    """True when the exact tile sum v leaves the accumulator's range: [-L, L]
    (clamp), [-L-1, L] (wrap: two's complement holds -2^(b-1))."""
    if mode == 2:
        return (v > Lt) | (v < -Lt - 1)
    return (v > Lt) | (v < -Lt)


@njit(inline="always")
def _fold(v, Lt, m2, inv, hf, mode):
    """A tile sum as the accumulator keeps it: identity / clip to +-L / wrap (mode 0/1/2)."""
    if mode == 1:
        return min(max(v, -Lt), Lt)
    if mode == 2:
        return v - m2 * np.floor((v + hf) * inv)
    return v


@njit(inline="always")
def _audit_row(row, sat, big, Lt, mode):
    """Per column j: sat[j] += 1 where the tile sum row[j] leaves the range (_outside),
    big[j] = max(big[j], |row[j]|)."""
    one = sat.dtype.type(1)
    zero = sat.dtype.type(0)
    for j in range(row.shape[0]):
        v = row[j]
        sat[j] += one if _outside(v, Lt, mode) else zero
        big[j] = max(big[j], abs(v))


@njit(parallel=True, cache=True, fastmath=True)
def _rowdot_tiled(x, g, T, L, half, mode, want, out):
    """out[s, k, n] = sum over M-tiles of f(sum_m x[k, s, m] g[n, s, m]) (K-major operands).

    x: (K, S, M), g: (N, S, M) C arrays of exact integers (float dtype chosen by
    the caller so every tile sum is exact); out: (S, K, N). The per-image weight
    gradient of the K-major conv. Each task takes two rows of x against four rows
    of g at a time: eight running sums over contiguous rows, which LLVM keeps in
    vector registers (uint64 indices avoid negative-index selects). Edge rows
    are computed on a repeated row and dropped. f: _fold; fastmath only reorders
    exact integer sums. Returns (count of tile sums outside the range (_outside),
    max |tile sum|) if ``want``.
    """
    K, S, M = x.shape
    N = g.shape[0]
    dt = x.dtype.type
    Lt = dt(L)
    m2 = dt(2.0 * half)
    inv = dt(1.0 / (2.0 * half))
    hf = dt(half)
    zero = dt(0)
    nkp = (K + 1) // 2
    nsat = np.zeros(S * nkp, np.int64)
    mx = np.zeros(S * nkp, np.float64)
    for task in prange(S * nkp):
        s = task // nkp
        k0 = (task - s * nkp) * 2
        kk = min(2, K - k0)
        xa = x[k0, s]
        xb = x[k0 + kk - 1, s]
        cnt = 0
        big = zero
        tot = np.zeros(8, dt)
        for n0 in range(0, N, 4):
            nn = min(4, N - n0)
            ga = g[n0, s]
            gb = g[n0 + min(1, nn - 1), s]
            gc = g[n0 + min(2, nn - 1), s]
            gd = g[n0 + min(3, nn - 1), s]
            tot[:] = 0
            for t0 in range(0, M, T):
                t1 = min(M, t0 + T)
                c0 = zero
                c1 = zero
                c2 = zero
                c3 = zero
                c4 = zero
                c5 = zero
                c6 = zero
                c7 = zero
                for m in range(_U(t0), _U(t1)):
                    a0 = xa[m]
                    a1 = xb[m]
                    b0 = ga[m]
                    b1 = gb[m]
                    b2 = gc[m]
                    b3 = gd[m]
                    c0 += a0 * b0
                    c1 += a0 * b1
                    c2 += a0 * b2
                    c3 += a0 * b3
                    c4 += a1 * b0
                    c5 += a1 * b1
                    c6 += a1 * b2
                    c7 += a1 * b3
                cs = (c0, c1, c2, c3, c4, c5, c6, c7)
                for q in range(8):
                    if q // 4 < kk and q % 4 < nn:
                        v = cs[q]
                        if want:
                            cnt += 1 if _outside(v, Lt, mode) else 0
                            big = max(big, abs(v))
                        tot[q] += _fold(v, Lt, m2, inv, hf, mode)
            for q in range(8):
                if q // 4 < kk and q % 4 < nn:
                    out[s, k0 + q // 4, n0 + q % 4] = tot[q]
        nsat[task] = cnt
        mx[task] = np.float64(big)
    return nsat.sum(), mx.max()


def rowdot_tiled(x, g, T, L, mode, odt, want_audit, acc_bits):
    """Per-image x[:, s] (K, M) @ g[:, s].T (M, N) of K-major (K, S, M) / (N, S, M)
    exact-integer float arrays with tiles of T along M -> (out (S, K, N) odt, nsat, max_abs)."""
    code = _MODE_CODE[mode]
    half = (1 << (acc_bits - 1)) if acc_bits is not None else 1
    if acc_bits is None:
        code = _WIDE
    Lv = float(L if acc_bits is not None else np.inf)
    out = np.empty((x.shape[1], x.shape[0], g.shape[0]), odt)
    nsat, mx = _rowdot_tiled(x, g, T, Lv, half, code, want_audit, out)
    return out, nsat, mx


def pack_scale(pmax, dtype):
    """The power of two S for packing two tile sums (|sum| <= pmax) as lo + S*hi
    exactly in ``dtype``, or 0 when they do not fit (|lo + S*hi| must stay
    below 2^24 in float32, 2^53 in float64)."""
    limit = 2.0 ** 24 if dtype == np.float32 else 2.0 ** 53
    S = 2.0
    while S <= 2.0 * pmax:
        S *= 2.0
    return S if pmax * (S + 1.0) < limit else 0.0


def _full_and_rem(a, b, T):
    """Batched matmuls giving the exact tile sums: (full (..., nF, M, N) or None, rem or None)."""
    K = a.shape[-1]
    N = b.shape[-1]
    nF = K // T
    full = rem = None
    if nF:
        at = np.moveaxis(a[..., :nF * T].reshape(a.shape[:-1] + (nF, T)), -2, -3)
        bt = b[..., :nF * T, :].reshape(b.shape[:-2] + (nF, T, N))
        full = np.matmul(at, bt)
    if K - nF * T:
        rem = np.matmul(a[..., nF * T:], b[..., nF * T:, :])[..., None, :, :]
    return full, rem


def _narrow_tiled(a2, b, T, Lv, half, code, odt, want, pmax):
    """Narrow outputs (N < _WIDE_N): (R, K) @ (K, N) -> (out (R, N), nsat, max_abs).

    One (rows x T) @ (T x N) GEMM per tile is too small for BLAS to run well, so
    the tiles of a row block go through one batched matmul. When two tile sums
    fit in one float exactly, pairs of tiles are multiplied as one tile of 2T
    with the second tile's rows of b scaled by S: each product entry then holds
    lo + S*hi, which halves the tile planes written and read again, and the
    parallel reduction decodes the pair.
    """
    R, K = a2.shape
    N = b.shape[-1]
    cdt = b.dtype
    nF = K // T
    S = pack_scale(pmax, cdt) if nF >= 2 else 0.0
    nPair = nF // 2 if S else 0
    K2 = 2 * T * nPair
    bs = None
    if nPair:
        scale = np.ones(K2, cdt)
        scale.reshape(nPair, 2, T)[:, 1] = S
        bs = (b[:K2] * scale[:, None]).reshape(nPair, 2 * T, N)
    nRem = -(-(K - K2) // T)                 # tiles left after the pairs, unpacked
    bt_r, brem_r = _b_tiles(b[K2:], T) if nRem else (None, None)
    out = np.zeros((R, N), odt)
    nsat = 0
    mx = 0.0
    rb = min(R, max(8, _BLOCK_ELEMS // max(1, (nPair + nRem) * N)))
    # buffers reused by every row block: fresh multi-MB arrays per call cost
    # more in page faults than the arithmetic
    abuf = None if a2.dtype == cdt else np.empty((rb, K), cdt)
    pbuf = np.empty((nPair, rb, N), cdt) if nPair else None
    rbuf = np.empty((nRem, rb, N), cdt) if nRem else None
    for r0 in range(0, R, rb):
        r1 = min(R, r0 + rb)
        if abuf is None:
            ab = a2[r0:r1]
        else:
            ab = abuf[:r1 - r0]
            np.copyto(ab, a2[r0:r1])   # a parallel Numba cast measured no faster
        ob = out[r0:r1]
        if nPair:   # pairs of tiles as one tile of 2T against the scaled b
            s, m = _reduce_planes(_tile_planes(ab[:, :K2], bs, None, 2 * T, pbuf), ob,
                                  Lv, half, code, want, S)
            nsat += s
            mx = max(mx, m)
        if nRem:
            s, m = _reduce_flat_planes(_tile_planes(ab[:, K2:], bt_r, brem_r, T, rbuf), ob,
                                       Lv, half, code, want)
            nsat += s
            mx = max(mx, m)
    return out, nsat, mx


def tiled_matmul(a, b, batch, T, L, mode, odt, want_audit, acc_bits, pmax):
    """wide/clamp/wrap: a (..., M, K), b (..., K, N) -> (out (batch..., M, N) odt, nsat, max_abs).

    b arrives in the compute dtype (float32 / float64 / int64); a may still be
    in any real dtype holding integers (cast to b's dtype here, per row block
    on the narrow path, so no full-size copy is made). pmax: bound on |tile
    sum| (T * max|a| * max|b|).
    """
    code = _MODE_CODE[mode]
    half = (1 << (acc_bits - 1)) if acc_bits is not None else 1
    if code != _WIDE and acc_bits is None:
        code = _WIDE
    Lv = float(L if acc_bits is not None else np.inf)
    M, K = a.shape[-2:]
    N = b.shape[-1]
    nT = -(-K // T)
    nsat = 0
    mx = 0.0
    R = a.size // K if K else 0          # rows of a with its batch flattened
    few_rows = R <= _FEW_ROWS and N >= _FEW_ROWS_MIN_N
    threads = numba.get_num_threads()
    if b.ndim == 2 and b.dtype != np.int64 and nT > 1 and threads > 1 \
            and R >= _PAR_MIN_ROWS and R * N >= _SMALL_OUT and not few_rows:
        out = np.empty((R, N), odt)
        nsat, mx = threaded_row_tiles(a.reshape(-1, K).astype(b.dtype, copy=False), b, T, Lv,
                                      half, code, want_audit, out, threads)
        return out.reshape(batch + (M, N)), nsat, mx
    if b.ndim == 2 and b.dtype != np.int64 and nT > 1 and N < _WIDE_N \
            and R * N >= _SMALL_OUT:
        out, nsat, mx = _narrow_tiled(a.reshape(-1, K), b, T, Lv, half, code, odt,
                                      want_audit, pmax)
        return out.reshape(batch + (M, N)), nsat, mx
    a = a.astype(b.dtype, copy=False)
    if a.dtype == np.int64:
        return _tiled_int64(a, b, batch, T, L, code, odt, want_audit, acc_bits)
    if b.ndim == 2:
        # flatten a's batch into rows; per row block, one BLAS call per tile
        # (P: rows x N, cache-resident) then a fused clip/accumulate/audit pass
        a2 = a.reshape(-1, K)
        if few_rows:
            # a few rows against a very wide b (the K-major conv): direct kernel
            out = np.empty((R, N), odt)
            s, m = _few_rows_tiled(np.ascontiguousarray(a2), b, T, Lv, half, code,
                                   want_audit, out)
            return out.reshape(batch + (M, N)), s, m
        if nT == 1 and odt == a.dtype:
            out = np.matmul(a2, b)      # BLAS takes transposed views directly
            s, m = _clip_acc(out, out, Lv, half, code, want_audit, True)
            return out.reshape(batch + (M, N)), s, m
        if R * N < _SMALL_OUT:
            # tiny outputs (a classifier): one batched matmul beats nT BLAS calls
            out = np.zeros((1, R, N), odt)
            for P in _full_and_rem(a2, b, T):
                if P is not None:
                    s, m = _reduce_tiles(P[None], out, Lv, half, code, want_audit)
                    nsat += s
                    mx = max(mx, m)
            return out.reshape(batch + (M, N)), nsat, mx
        out = np.empty((R, N), odt)
        nsat, mx = _rows_tiled(a2, b, T, Lv, half, code, want_audit, out, 0, R)
        return out.reshape(batch + (M, N)), nsat, mx
    if nT == 1 and odt == a.dtype:
        # one tile (attention's small batched products): the batched BLAS product is the
        # tile sums, clipped and audited in place as the 2-D path does
        out = np.matmul(a, b)
        # elementwise, so on rows wider than N (short rows do not vectorise)
        W = N
        while 0 < W < 512 and out.size % (2 * W) == 0:
            W *= 2
        o2 = out.reshape(-1, W)
        s, m = _clip_acc(o2, o2, Lv, half, code, want_audit, True)
        return out, s, m
    out = np.zeros(batch + (M, N), odt)
    o3 = out.reshape(-1, M, N)
    for P in _full_and_rem(a, b, T):
        if P is not None:
            P4 = np.broadcast_to(P, batch + P.shape[-3:]).reshape((-1,) + P.shape[-3:])
            s, m = _reduce_tiles(P4, o3, Lv, half, code, want_audit)
            nsat += s
            mx = max(mx, m)
    return out, nsat, mx


def _rows_tiled(a2, b, T, Lv, half, code, want, out, r0, r1):
    """Rows r0..r1 of out (R, N) = the tile sums of a2 (R, K) @ b (K, N), both in b's
    float dtype: per block of rows one BLAS call per tile into a buffer that stays in
    L2, then the fused clip/accumulate/audit pass (_clip_acc). Returns (nsat, max_abs)."""
    K = a2.shape[1]
    N = b.shape[1]
    rb = max(8, _ROW_ELEMS // max(1, N))
    P = np.empty((min(rb, r1 - r0), N), b.dtype)
    nsat = 0
    mx = 0.0
    for q0 in range(r0, r1, rb):
        q1 = min(r1, q0 + rb)
        Pr = P[:q1 - q0]
        for t0 in range(0, K, T):
            np.matmul(a2[q0:q1, t0:t0 + T], b[t0:t0 + T], out=Pr)
            s, m = _clip_acc(Pr, out[q0:q1], Lv, half, code, want, t0 == 0)
            nsat += s
            mx = max(mx, m)
    return nsat, mx


# Blocks of rows in Python threads, NumPy's OpenBLAS at one thread meanwhile: small tile
# products (rows x T x N) gain little from OpenBLAS's own threads, two blocks at once
# gain twice. NumPy releases the GIL around each product and _clip_acc runs without it.
_PAR_MIN_ROWS = 16    # fewer rows stay on one thread
_pools: dict = {}


def _pool(n):
    from concurrent.futures import ThreadPoolExecutor
    if n not in _pools:
        _pools[n] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="intsim-rows")
    return _pools[n]


def threaded_row_tiles(a2, b, T, Lv, half, code, want, out, threads):
    """_rows_tiled over all R rows of a2 in ``threads`` blocks at once (the caller's thread
    runs the first). Returns (nsat, max_abs); the same values as one _rows_tiled call."""
    R = a2.shape[0]
    per = -(-R // threads)
    bounds = [(r0, min(R, r0 + per)) for r0 in range(0, R, per)]
    with numpy_blas_single() as blas:
        if not blas.ok:
            return _rows_tiled(a2, b, T, Lv, half, code, want, out, 0, R)
        futures = [_pool(threads - 1).submit(_rows_tiled, a2, b, T, Lv, half, code, want, out,
                                             r0, r1) for r0, r1 in bounds[1:]]
        parts = [_rows_tiled(a2, b, T, Lv, half, code, want, out, *bounds[0])]
        parts += [f.result() for f in futures]
    return sum(p[0] for p in parts), max(p[1] for p in parts)


def _tiled_int64(a, b, batch, T, L, code, odt, want_audit, acc_bits):
    """Rare path (operands too large for float64 to be exact): plain int64 NumPy."""
    out = np.zeros(batch + (a.shape[-2], b.shape[-1]), np.int64)
    nsat = 0
    mx = 0
    for P in _full_and_rem(a, b, T):
        if P is None:
            continue
        if want_audit:
            absP = np.abs(P)
            mx = max(mx, int(absP.max()))
            if acc_bits is not None:
                lo = -L - 1 if code == _WRAP else -L
                nsat += int(np.count_nonzero((P > L) | (P < lo)))
        if code == _CLAMP:
            P = np.clip(P, -L, L)
        elif code == _WRAP:
            half = 1 << (acc_bits - 1)
            P = ((P + half) & (2 * half - 1)) - half
        out = out + P.sum(axis=-3)
    return out.astype(odt), nsat, mx



def _tile_planes(ab, bt, brem, T, buf):
    """Exact tile sums of ab (n, K) @ b into buf[:, :n] (nT, n, N); returns that view.

    bt: b's full tiles as (nF, T, N) (or None), brem: its last partial tile (or None).
    """
    n, K = ab.shape
    nF = K // T
    P = buf[:, :n]
    if nF:
        at = np.moveaxis(ab[:, :nF * T].reshape(n, nF, T), 1, 0)
        np.matmul(at, bt, out=P[:nF])
    if brem is not None:
        np.matmul(ab[:, nF * T:], brem, out=P[nF])
    return P


def _b_tiles(b, T):
    """(b's full tiles (nF, T, N) contiguous or None, its partial last tile or None)."""
    K, N = b.shape
    nF = K // T
    bt = np.ascontiguousarray(b[:nF * T]).reshape(nF, T, N) if nF else None
    brem = np.ascontiguousarray(b[nF * T:]) if K > nF * T else None
    return bt, brem


# the replay path is used when at most this fraction of a first row block's tiles can clip


# The saturating accumulator. Output columns are the vector lanes: a task converts a
# block of b's columns to integer lanes once, then runs every row of its row block over
# them, addition by addition. A row's zero entries are skipped: adding 0 changes neither
# the running sum nor the audit.
_SAT_LANES = 512       # columns of b per task (int16 lanes: 1 KB per k)
_SAT_CHUNKS = 64       # the tasks run as this many fixed chunks, whatever the thread count
_SAT_MIN_LANES = 64    # narrower outputs swap the operands if that gives more lanes


@njit(inline="always")
def _sat_add(c, e, lo, p, nLt, Lt, tp):
    """One addition of the product p: (clip(c + p, -L, L), e + p, min(lo, c + p)) in type tp."""
    s = tp(c + p)
    return min(max(s, nLt), Lt), tp(e + p), min(lo, s)


@njit(cache=True)
def _sat_steps(bb, ks, vs, n, L, want, acc, ex, lo):
    """For q = 0 .. n-1 in order, on every lane: acc = clip(acc + vs[q] * bb[ks[q]], -L, L).

    bb: (K, W) b's rows as integer lanes; ks, vs: (>= n,) int64 k indices and a values, n
    a multiple of 4; acc, ex, lo: (W,) running sums, exact sums and smallest unclipped sums,
    in a type holding all of them (ex and lo are only updated when ``want``). Four additions
    per pass over the lanes keep the sums in registers between them.
    """
    tp = acc.dtype.type
    Lt = tp(L)
    nLt = tp(-L)
    W = acc.shape[0]
    for q in range(0, n, 4):
        v0 = tp(vs[q])
        v1 = tp(vs[q + 1])
        v2 = tp(vs[q + 2])
        v3 = tp(vs[q + 3])
        b0 = bb[ks[q]]
        b1 = bb[ks[q + 1]]
        b2 = bb[ks[q + 2]]
        b3 = bb[ks[q + 3]]
        if want:
            for j in range(W):
                c = acc[j]
                e = ex[j]
                m = lo[j]
                c, e, m = _sat_add(c, e, m, tp(v0 * b0[j]), nLt, Lt, tp)
                c, e, m = _sat_add(c, e, m, tp(v1 * b1[j]), nLt, Lt, tp)
                c, e, m = _sat_add(c, e, m, tp(v2 * b2[j]), nLt, Lt, tp)
                c, e, m = _sat_add(c, e, m, tp(v3 * b3[j]), nLt, Lt, tp)
                acc[j] = c
                ex[j] = e
                lo[j] = m
        else:
            for j in range(W):
                c = acc[j]
                c = min(max(tp(c + tp(v0 * b0[j])), nLt), Lt)
                c = min(max(tp(c + tp(v1 * b1[j])), nLt), Lt)
                c = min(max(tp(c + tp(v2 * b2[j])), nLt), Lt)
                c = min(max(tp(c + tp(v3 * b3[j])), nLt), Lt)
                acc[j] = c


@njit(cache=True)
def _sat_flush(acc, ex, lo, L, want, tot, cnt, big):
    """End of a tile: tot += acc, then acc (and ex, lo) = 0. With ``want``: cnt += 1 where
    an addition clipped, big = max(big, |ex|). A tile clipped iff an unclipped sum fell
    below -L, or else its result differs from its exact sum (clips at +L only lower it).
    """
    tp = acc.dtype.type
    nLt = tp(-L)
    if not want:
        for j in range(acc.shape[0]):
            tot[j] += acc[j]
            acc[j] = 0
        return
    for j in range(acc.shape[0]):
        c = acc[j]
        e = ex[j]
        tot[j] += c
        cnt[j] += tp((lo[j] < nLt) | (c != e))
        big[j] = max(big[j], abs(e))
        acc[j] = 0
        ex[j] = 0
        lo[j] = 0


@njit(cache=True)
def _nonzeros(arow, t0, t1, ks, vs):
    """arow[t0:t1]'s nonzero entries as ks (k) and vs (value), in order, padded with zero
    values to a multiple of 4. Returns (padded count, sum of |values|)."""
    n = 0
    s1 = 0
    for k in range(t0, t1):
        v = np.int64(arow[k])
        ks[n] = k
        vs[n] = v
        s1 += abs(v)
        n += v != 0
    n4 = (n + 3) // 4 * 4
    for q in range(n, n4):
        ks[q] = t0
        vs[q] = 0
    return n4, s1


@njit(cache=True)
def _load_lanes(b2, j0, w, bb):
    """bb[:, :w] = b2[:, j0:j0 + w] as bb's integer type and bb[:, w:] = 0; b2 (K, N)
    in any layout (read along its contiguous axis)."""
    K = b2.shape[0]
    tp = bb.dtype.type
    bb[:, w:] = 0
    if abs(b2.strides[1]) <= abs(b2.strides[0]):
        for k in range(K):
            src = b2[k, j0:j0 + w]
            dst = bb[k]
            for j in range(w):
                dst[j] = tp(src[j])
    else:
        for j in range(w):
            src = b2[:, j0 + j]
            for k in range(K):
                bb[k, j] = tp(src[k])


@njit(parallel=True, cache=True)
def _saturate_tasks(a3, b3, T, L, lane, tot0, want, bmax, out):
    """out[o] = a3[o] @ b3[o] through a saturating accumulator (tiles of T along K).

    a3: (Ba, M, K), b3: (Bb, K, N) integer values in any real dtype and layout, a batch of
    1 broadcast; out: (Bo, M, N). lane, tot0: zeros of the lanes' integer type (which
    must hold L + max|a*b|) and of the row totals' type; bmax: bound on |b|. Rows whose
    exact tile sums may not fit the lanes (sum |a| * bmax too large) run in int64 lanes.
    Returns (tiles in which an addition left [-L, L], max |exact tile sum|), zeros
    unless ``want``. Tasks are (batch, row block, column block) in fixed chunks.
    """
    Ba, M, K = a3.shape
    Bb, _, N = b3.shape
    Bo = out.shape[0]
    tp = type(lane)
    lim = np.iinfo(tp).max
    W = min(_SAT_LANES, N if N <= 8 else (N + 31) // 32 * 32)
    ncb = (N + W - 1) // W
    nrb = max(1, min((M + 7) // 8, (32 + ncb * Bo - 1) // (ncb * Bo)))
    RB = (M + nrb - 1) // nrb
    nrb = (M + RB - 1) // RB
    ntask = Bo * nrb * ncb
    nch = min(ntask, _SAT_CHUNKS)
    nsat = np.zeros(nch, np.int64)
    mx = np.zeros(nch, np.int64)
    for ch in prange(nch):
        bb = np.empty((K, W), tp)
        acc = np.zeros(W, tp)
        ex = np.zeros(W, tp)
        lo = np.zeros(W, tp)
        cnt = np.zeros(W, tp)
        big = np.zeros(W, tp)
        acc64 = np.zeros(W, np.int64)
        ex64 = np.zeros(W, np.int64)
        lo64 = np.zeros(W, np.int64)
        cnt64 = np.zeros(W, np.int64)
        big64 = np.zeros(W, np.int64)
        tot = np.zeros(W, type(tot0))
        ks = np.zeros(T + 4, np.int64)
        vs = np.zeros(T + 4, np.int64)
        c = 0
        for task in range(ch * ntask // nch, (ch + 1) * ntask // nch):
            o = task // (nrb * ncb)
            rb = (task - o * nrb * ncb) // ncb
            j0 = (task - o * nrb * ncb - rb * ncb) * W
            w = min(N, j0 + W) - j0
            _load_lanes(b3[o if Bb > 1 else 0], j0, w, bb)
            for i in range(rb * RB, min(M, (rb + 1) * RB)):
                arow = a3[o if Ba > 1 else 0, i]
                tot[:] = 0
                for t0 in range(0, K, T):
                    n, s1 = _nonzeros(arow, t0, min(K, t0 + T), ks, vs)
                    if n == 0:
                        continue
                    if not want or s1 * bmax < lim:
                        _sat_steps(bb, ks, vs, n, L, want, acc, ex, lo)
                        _sat_flush(acc, ex, lo, L, want, tot, cnt, big)
                    else:
                        _sat_steps(bb, ks, vs, n, L, want, acc64, ex64, lo64)
                        _sat_flush(acc64, ex64, lo64, L, want, tot, cnt64, big64)
                dst = out[o, i, j0:j0 + w]
                for j in range(w):
                    dst[j] = tot[j]
                if want:
                    for j in range(W):
                        c += cnt[j]
                    cnt[:] = 0
        if want:
            nsat[ch] = c + cnt64.sum()
            mx[ch] = max(np.int64(big.max()), big64.max())
    return nsat.sum(), mx.max()


def _as_batch3(x, batch):
    """x (..., R, C) as (B, R, C): B = 1 (broadcast by the kernel) or prod(batch)."""
    if int(np.prod(x.shape[:-2], dtype=np.int64)) == 1:
        return x.reshape((1,) + x.shape[-2:])
    return np.broadcast_to(x, batch + x.shape[-2:]).reshape((-1,) + x.shape[-2:])


def saturate_matmul(a, b, batch, T, L, odt, want_audit, amax, bmax):
    """Saturating accumulator: a (..., M, K), b (..., K, N) -> (out (batch..., M, N) odt,
    nsat, max_abs).

    a, b: integer values in any real dtype and layout (not copied unless batch
    broadcasting needs it); amax, bmax: bounds on |a| and |b|. The lanes are int16 while
    L + amax * bmax (the largest running sum before a clip) fits, else int32 / int64.
    Outputs narrower than _SAT_MIN_LANES with more rows are computed as b^T a^T (the
    same additions in the same order).
    """
    M, K = a.shape[-2:]
    N = b.shape[-1]
    need = L + amax * bmax
    nT = -(-K // T)
    if need < 2.0 ** 15 and nT < 2 ** 15:
        lane = np.int16(0)
    elif need < 2.0 ** 31:
        lane = np.int32(0)
    else:
        lane = np.int64(0)
    tot0 = np.int32(0) if nT * (L + 1.0) < 2.0 ** 31 else np.int64(0)
    out = np.empty(batch + (M, N), odt)
    b3 = _as_batch3(b, batch)
    if b3.shape[0] == 1:
        # a's batch dimensions as rows: b's lanes are converted once per block
        a3 = a.reshape((1, -1, K))
        out3 = out.reshape((1, -1, N))
    else:
        a3 = _as_batch3(a, batch)
        out3 = out.reshape((-1, M, N))
    # the kernel does not check bounds
    Bo = out3.shape[0]
    assert out3.shape[1:] == (a3.shape[1], N) and b3.shape[1] == K
    assert a3.shape[0] in (1, Bo) and b3.shape[0] in (1, Bo)
    if N < _SAT_MIN_LANES and a3.shape[1] > N:
        nsat, mx = _saturate_tasks(b3.transpose(0, 2, 1), a3.transpose(0, 2, 1), T, L, lane,
                                   tot0, want_audit, float(amax), out3.transpose(0, 2, 1))
    else:
        nsat, mx = _saturate_tasks(a3, b3, T, L, lane, tot0, want_audit, float(bmax), out3)
    return out, nsat, mx
