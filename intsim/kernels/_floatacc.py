"""Kernels behind intsim.kernels.floatacc (private): matmul with a float accumulator
that rounds every addition to a FloatFormat.

Rounding is the FloatFormat nearest-even rule of intsim.formats (|v| in
[2^E, 2^(E+1)) goes to a multiple of 2^(max(E, emin) - man_bits), ties to the
even multiple; without subnormals |v| < min_normal goes to 0 or min_normal,
ties to 0; then the overflow rule), applied to an exact value hi + lo given
as a float64 pair (lo = the TwoSum error of a sum, 0.0 for a product): lo
only decides the ties of hi, so every sum is the correctly rounded exact sum.

Two forms of it:
  _rnd   scalar, every case (inf/NaN, float64 subnormals, any format);
  _rv    branch-free, for the vectorised passes over a row of N outputs: the
         format's normal range on the IEEE bit pattern, its subnormal range as
         (|v| + C) - C with C = 2^(emin - man_bits + 52) (the float64 sum rounds
         to the subnormal step, ties to even). It flags the lanes it cannot do
         (non-finite v, or a tie-deciding lo below the normal range, which sums
         of format values never produce); those lanes are redone with _rnd.
A format reaches the kernels as the tuple made by :func:`params`.
No fastmath: TwoSum and (|v| + C) - C need strict IEEE arithmetic.
"""
import math

import numpy as np
from numba import njit, prange

NAIVE, PAIRWISE, KAHAN = 0, 1, 2
_MAG = np.int64(0x7FFFFFFFFFFFFFFF)
_INF_BITS = np.int64(0x7FF0000000000000)
#: audit counters per row: swamped, absorbed, overflows, product overflows and
#: the outer swamped, absorbed, overflows
NCOUNT = 7


def params(man_bits, emin, subnormals, min_normal, max_value, ov):
    """The kernels' format tuple. ov: what a magnitude above max_value becomes
    (max_value, inf or NaN)."""
    shift = 52 - man_bits
    keep = ~((1 << shift) - 1)                       # the bits a rounded magnitude keeps
    halfm1 = (1 << (shift - 1)) - 1 if shift else 0  # half an ulp of the format, minus 1
    tbit = 1 if shift else 0                         # man_bits 52: nothing to round
    cexp = emin - man_bits + 52
    cfast = emin >= -1022 and cexp <= 1023           # the (|v| + C) - C form applies
    C = math.ldexp(1.0, cexp) if cexp <= 1023 else 0.0
    ebmin = max(emin + 1023, 1)                      # lowest biased exponent of the bit path
    return (np.int64(man_bits), np.int64(emin), bool(subnormals), float(min_normal),
            float(max_value), float(ov), np.int64(shift), np.int64(keep), np.int64(halfm1),
            np.int64(tbit), np.int64(ebmin), float(C), bool(cfast))


@njit(cache=True)
def _rnd(hi, lo, F):
    """(hi + lo rounded to the format F, whether its rounded magnitude exceeded the max).

    hi: float64; lo: float64 with hi + lo the exact value and |lo| <= ulp(hi) / 2
    (0.0 when hi is exact). NaN gives NaN (not an overflow); +-inf overflows.
    """
    man_bits, emin, subn, mn, mxv, ov = F[0], F[1], F[2], F[3], F[4], F[5]
    if not math.isfinite(hi):
        if math.isnan(hi):
            return np.nan, False            # the positive NaN, as FloatFormat.quantize
        return math.copysign(ov, hi), True
    a = abs(hi)
    E = emin
    if a != 0.0:
        E = max(math.frexp(a)[1] - 1, emin)
    step = math.ldexp(1.0, int(E - man_bits))
    k = a / step
    fl = math.floor(k)
    if lo != 0.0 and k - fl == 0.5:
        kr = fl + 1.0 if (lo > 0.0) == (hi > 0.0) else fl
    else:
        kr = np.rint(k)
    q = kr * step
    if not subn and a < mn:
        q = mn if a > 0.5 * mn else 0.0
    over = q > mxv
    return math.copysign(ov if over else q, hi), over


@njit(cache=True, inline="always")
def _rv(v, lo, F):
    """_rnd without branches: (rounded v, overflow, lane needs _rnd instead)."""
    subn, mn, mxv, ov = F[2], F[3], F[4], F[5]
    shift, keep, halfm1, tbit, ebmin, C, cfast = F[6], F[7], F[8], F[9], F[10], F[11], F[12]
    bits = np.float64(v).view(np.int64)
    mag = bits & _MAG
    ex = mag >> 52
    a = np.int64(mag).view(np.float64)
    # nearest even on the bits: add half an ulp - 1, plus 1 when a tie must go up (the
    # kept mantissa is odd, or lo lies on the far side), then cut the low bits
    odd = (mag >> shift) & 1
    same = np.int64(1) if (lo > 0.0) == (v > 0.0) else np.int64(0)
    t = (odd if lo == 0.0 else same) & tbit
    qn = np.int64((mag + halfm1 + t) & keep).view(np.float64)
    qs = ((a + C) - C) if subn else (mn if a > 0.5 * mn else 0.0)
    small = ex < ebmin
    q = qs if small else qn
    over = q > mxv
    r = math.copysign(ov if over else q, v)
    rare = (ex == 2047) | (small & ((lo != 0.0) | (not cfast)))
    return r, over, rare


@njit(cache=True)
def _vround(src, dst, F, flag):
    """dst[j] = round(src[j]) for the N lanes (dst not src). Returns the number of
    rounded magnitudes above the max."""
    n = src.shape[0]
    nov = 0
    nrare = 0
    for j in range(n):
        r, o, rare = _rv(src[j], 0.0, F)
        dst[j] = r
        flag[j] = rare
        nov += o & (not rare)
        nrare += rare
    if nrare:
        for j in range(n):
            if flag[j]:
                r, o = _rnd(src[j], 0.0, F)
                dst[j] = r
                nov += o
    return nov


@njit(cache=True)
def _vprod(aik, brow, dst, F, flag):
    """dst[j] = round(aik * brow[j]) (float64 product); returns the overflow count."""
    n = brow.shape[0]
    nov = 0
    nrare = 0
    for j in range(n):
        r, o, rare = _rv(aik * brow[j], 0.0, F)
        dst[j] = r
        flag[j] = rare
        nov += o & (not rare)
        nrare += rare
    if nrare:
        for j in range(n):
            if flag[j]:
                r, o = _rnd(aik * brow[j], 0.0, F)
                dst[j] = r
                nov += o
    return nov


@njit(cache=True)
def _vadd(s_arr, x_arr, sg, dst, F, flag, cnt, c0):
    """dst[j] = round(s_arr[j] + sg * x_arr[j]), each rounded once from the exact sum
    (sg = +-1.0; dst must not overlap s_arr or x_arr: the loop then vectorises).

    With cnt (an int64 array; empty: no audit): cnt[c0], cnt[c0 + 1], cnt[c0 + 2]
    += the adds with finite operands that were inexact (overflows included), that
    returned s with x != 0, that overflowed. Returns the IEEE bits (int64) of the
    largest |result| of those adds (NaN ignored; 0 without audit): on magnitudes
    the bit order is the numeric order, and an integer max vectorises.
    """
    n = s_arr.shape[0]
    audit = cnt.shape[0] > 0
    sw = ab = ov = 0
    mb = np.int64(0)
    nrare = 0
    for j in range(n):
        s = s_arr[j]
        x = sg * x_arr[j]
        hi = s + x
        z = hi - s
        lo = (s - (hi - z)) + (x - z)
        r, o, rare = _rv(hi, lo, F)
        keep = not rare
        dst[j] = r
        flag[j] = rare
        nrare += rare
        if audit:
            sw += keep & (o | (r != hi) | (lo != 0.0))
            ab += keep & (r == s) & (x != 0.0)
            ov += keep & o
            rb = np.float64(r).view(np.int64) & _MAG
            mb = max(mb, rb if keep & (rb <= _INF_BITS) else np.int64(0))
    if nrare:
        for j in range(n):
            if not flag[j]:
                continue
            s = s_arr[j]
            x = sg * x_arr[j]
            hi = s + x
            lo = 0.0
            if math.isfinite(hi):
                z = hi - s
                lo = (s - (hi - z)) + (x - z)
            r, o = _rnd(hi, lo, F)
            dst[j] = r
            if audit and math.isfinite(s) and math.isfinite(x):
                sw += o | (r != hi) | (lo != 0.0)
                ab += (r == s) & (x != 0.0)
                ov += o
                rb = np.float64(r).view(np.int64) & _MAG
                if rb <= _INF_BITS:
                    mb = max(mb, rb)
    if audit:
        cnt[c0] += sw
        cnt[c0 + 1] += ab
        cnt[c0 + 2] += ov
    return mb


@njit(parallel=True, cache=True)
def float_mm(a, b, T, order, Fi, Fo, out, cnt, mx):
    """out (M, N) = a (M, K) @ b (K, N) through the accumulator (module docstring of
    floatacc); a, b, out float64 C-contiguous.

    T: block length (1 <= T <= K); order: NAIVE / PAIRWISE / KAHAN; Fi, Fo: the
    inner and outer format tuples (params). Each row's N outputs are summed by one
    thread, lane by lane in the fixed order, so the thread count cannot change
    the result. Per row i: cnt[i] (NCOUNT,) = (swamped, absorbed, overflows,
    product overflows, outer swamped, outer absorbed, outer overflows);
    mx[i] = (max |inner sum|, max |outer sum|) over the audited adds.
    """
    M, K = a.shape
    N = b.shape[1]
    nB = (K + T - 1) // T
    depth = 2
    while (1 << (depth - 1)) <= T:
        depth += 1
    none = np.zeros(0, np.int64)
    for i in prange(M):
        # rows of buf: the running sums (double-buffered), the rounded products,
        # Kahan's y, t - s and c, and the pairwise stack (depth + 1 rows)
        buf = np.zeros((9 + depth, N))
        S, S2, acc, acc2, xr, y, d, c = (buf[0], buf[1], buf[2], buf[3], buf[4], buf[5],
                                         buf[6], buf[7])
        ids = np.zeros(depth, np.int64)     # stack position -> row of buf
        free = np.arange(8 + depth, 7, -1)  # the stack's rows not in use: free[:nf]
        flag = np.zeros(N, np.bool_)
        ci = np.zeros(NCOUNT, np.int64)
        mbi = np.int64(0)
        mbo = np.int64(0)
        for blk in range(nB):
            k0 = blk * T
            k1 = min(K, k0 + T)
            if order == PAIRWISE:
                tp = 0                          # stack of perfect subtree sums
                nf = depth + 1
                for k in range(k0, k1):
                    nf -= 1
                    ids[tp] = free[nf]
                    ci[3] += _vprod(a[i, k], b[k], buf[ids[tp]], Fi, flag)
                    tp += 1
                    n = k - k0 + 1
                    while tp > 1 and (n & 1 == 0 or k == k1 - 1):
                        # one merge per trailing zero bit of n; at the block's end, the
                        # remaining subtrees, smallest first
                        n >>= 1
                        nf -= 1
                        dst = free[nf]
                        mbi = max(mbi, _vadd(buf[ids[tp - 2]], buf[ids[tp - 1]], 1.0, buf[dst],
                                             Fi, flag, ci, 0))
                        free[nf] = ids[tp - 2]
                        free[nf + 1] = ids[tp - 1]
                        nf += 2
                        ids[tp - 2] = dst
                        tp -= 1
                acc[:] = buf[ids[0]]
                free[nf] = ids[0]
            elif order == KAHAN:
                acc[:] = 0.0
                c[:] = 0.0
                for k in range(k0, k1):
                    ci[3] += _vprod(a[i, k], b[k], xr, Fi, flag)
                    _vadd(xr, c, -1.0, y, Fi, flag, none, 0)                  # y = x - c
                    mbi = max(mbi, _vadd(acc, y, 1.0, acc2, Fi, flag, ci, 0))  # t = s + y
                    _vadd(acc2, acc, -1.0, d, Fi, flag, none, 0)              # t - s
                    _vadd(d, y, -1.0, c, Fi, flag, none, 0)                   # c = (t - s) - y
                    acc, acc2 = acc2, acc
            else:
                acc[:] = 0.0
                for k in range(k0, k1):
                    ci[3] += _vprod(a[i, k], b[k], xr, Fi, flag)
                    mbi = max(mbi, _vadd(acc, xr, 1.0, acc2, Fi, flag, ci, 0))
                    acc, acc2 = acc2, acc
            _vround(acc, xr, Fo, flag)
            mbo = max(mbo, _vadd(S, xr, 1.0, S2, Fo, flag, ci, 4))
            S, S2 = S2, S
        out[i] = S
        cnt[i] = ci
        mx[i, 0] = np.int64(mbi).view(np.float64)
        mx[i, 1] = np.int64(mbo).view(np.float64)
