"""Kernels for intsim.kernels.luq.log_quantize (private): the max|g| pass and the fused
log-quantization pass (Numba), bit for bit as the NumPy reference ``log_quantize_ref``.

Work is split into chunks of _CHUNK entries of the flattened tensor; entry i's
uniform is float i of the Generator's PCG64 stream (intsim.kernels._rng), drawn
inside the kernel, so results do not depend on the thread count. fastmath is off:
the float32 divide, subtract, multiply and compares are NumPy's. The two
transcendental functions are reproduced from NumPy's own results on this machine:
- np.exp2 of the integer exponents -1 .. 126 the kernel needs: the exact powers of
  two, once NumPy's exp2 is checked to give them (it need not be exact: AVX512
  NumPy gives 1.701412e+38, not 2^127, for exp2(127), which is not needed).
- floor(np.log2(y)): the float32 exponent of y, plus one where NumPy's log2 rounds
  up to the next integer. NumPy's float32 log2 is rounded, so a short run of
  floats just below each power of two 2^k gives exactly k (1 to 44 floats for
  k = 3..128 on an AVX512 machine, checked over every float32 >= 1); the run's
  first float is a threshold per power, read off NumPy's log2 at first use.
Where NumPy's functions are not of this shape, log_quantize keeps the reference.
"""
import functools

import numpy as np
from numba import njit, prange

from intsim.kernels._floatbits import NONFINITE, abs_max_bits
from intsim.kernels._rng import fill_range

U = np.uint64
_CHUNK = 1 << 16      # entries per parallel task
_PAR_MIN = 1 << 16    # smaller tensors use the serial builds
_UBLOCK = 4096        # uniforms drawn per block into an L1-resident buffer
_BAND = 4096          # floats below each power of two searched for NumPy's log2 round-up
_ABOVE = 64           # floats from each power of two up checked to floor to it
_ONE = np.uint32(0x3F800000)        # bits of 1.0f
_MANT = np.uint32(0x007FFFFF)

# EXP2[k + 1] = 2^k (float32) for k = -1 .. 126
EXP2 = np.ldexp(np.float32(1.0), np.arange(-1, 127)).astype(np.float32)


def _log2_thresholds(band=_BAND, above=_ABOVE):
    """NumPy's float32 floor(log2(y)) next to the powers of two 2^1 .. 2^128.

    Returns (thr, mlim) or None. thr (129,) uint32: thr[k] is the bit pattern of
    the least float32 y < 2^k with floor(np.log2(y)) == k (2^k's own pattern when
    there is none); mlim (uint32): the least mantissa field (bits 0..22) of those
    y, 2^23 when there is none, so floats with a smaller field need no correction.
    None when NumPy's log2 is not of that shape within ``band`` floats below and
    ``above`` floats from each power (then the caller keeps the reference). A log2
    off by E units in the last place can round up only within about 1.4 k (E + 1/2)
    floats below 2^k, so the band covers errors of up to 20 units.
    """
    k = np.arange(1, 129, dtype=np.int64)
    pk = int(_ONE) + (k << 23)                                   # bits of 2^k
    b = pk[:, None] + np.arange(-band, above, dtype=np.int64)[None, :]
    b = np.minimum(b, int(NONFINITE) - 1).astype(np.uint32)         # 2^128 is inf: stop at FLT_MAX
    f = np.floor(np.log2(b.view(np.float32))).astype(np.int64)
    below, at = f[:, :band], f[:, band:]
    kk = k[:, None]
    ok = (np.all((below == kk - 1) | (below == kk)) and np.all(below[:, 0] == k - 1)
          and np.all(np.diff(below, axis=1) >= 0) and np.all(at == kk))
    if not ok:
        return None
    run = np.count_nonzero(below == kk, axis=1)
    thr = np.empty(129, np.uint32)
    thr[0] = _ONE
    thr[1:] = pk - run
    return thr, np.uint32((1 << 23) - run.max())


@functools.cache
def log2_table():
    """(thr, mlim) of _log2_thresholds, computed once per process; None when NumPy's
    log2 is not of that shape or its exp2 of -1 .. 126 is not EXP2."""
    exp2 = np.exp2(np.arange(-1, 127, dtype=np.float32))
    if exp2.tobytes() != EXP2.tobytes():
        return None
    return _log2_thresholds()


@njit(inline="always")
def _exponent(yb):
    """The float32 exponent of max(y, 1) for y of bit pattern yb (uint32), as uint64."""
    return (max(yb, _ONE) >> U(23)) - U(127)


@njit(inline="always")
def _floor_log2(yb, thr):
    """floor(np.log2(max(y, 1))) for y of bit pattern yb (uint32), as uint64."""
    e = _exponent(yb)
    return e + U(max(yb, _ONE) >= thr[e + U(1)])


@njit(cache=True)
def floor_log2_bits(yb, thr, mlim):
    """The exponents the kernel takes for the patterns yb (uint32 array) -> uint64 array:
    _floor_log2 where the mantissa field is >= mlim, the plain exponent elsewhere."""
    out = np.empty(yb.size, np.uint64)
    for i in range(yb.size):
        out[i] = _floor_log2(yb[i], thr) if (yb[i] & _MANT) >= mlim else _exponent(yb[i])
    return out


def _absmax_impl(gb, chunk):
    """max over the flat uint32 patterns gb of a float32 array of (pattern & 0x7FFFFFFF).

    That is the pattern of max|g| (non-negative floats order as their patterns), and it
    is >= 0x7F800000 iff some entry is NaN or inf. 0 for an empty array.
    """
    n = gb.size
    nch = (n + chunk - 1) // chunk
    part = np.zeros(nch + 1, np.uint32)
    for c in prange(nch):
        part[c] = abs_max_bits(gb[c * chunk:min(n, (c + 1) * chunk)])
    return part.max()


_absmax_par = njit(parallel=True, cache=True)(_absmax_impl)
_absmax_ser = njit(cache=True)(_absmax_impl)


@njit(inline="always")
def _sign(x):
    """np.sign of a float32 that is not NaN, as float32 (+0.0 for both zeros)."""
    return np.float32(np.int64(x > 0) - np.int64(x < 0))


@njit(inline="always")
def _entry(x, y, u, e, emax, alpha):
    """(code, value) float32 of one entry: g value x, y = |x| / alpha, uniform u,
    e = floor(log2(max(y, 1))) (uint64); emax (uint64) <= 126, alpha float32 > 0.

    The reference's steps, with EXP2 for np.exp2 (equal, by log2_table's check):
    y < 1 -> 1 with probability y, else 0; otherwise e = min(e, emax), up with
    probability y / 2^e - 1, magnitude e + 1 + up clipped to emax + 1;
    code = magnitude * np.sign(x) (float32: -0.0 for a negative x rounded to 0);
    value = sign(code) * 2^(magnitude - 1) * alpha, +0.0 for code 0 (as
    0 * 2^-1 * alpha is). Both sides of each choice are computed first so the
    loop needs no branches on the random u.
    """
    small = y < 1
    e = min(e, emax)
    t_big = y / EXP2[e + U(1)] - np.float32(1.0)
    up = u < (y if small else t_big)
    mag_big = min(e + U(1) + U(up), emax + U(1))
    mag = U(up) if small else mag_big
    s = _sign(x)
    sc = s if mag > U(0) else np.float32(0.0)
    return np.float32(mag) * s, sc * EXP2[mag] * alpha


@njit
def _block(g, b0, m, y, u, emax, alpha, thr, mlim, code, vals):
    """Entries b0 .. b0 + m - 1 (uint64) of the flat g into code, vals, with the uniforms
    u[:m]; y: a float32 scratch buffer of at least m entries.

    The vectorised pass takes the plain exponent of y; the few entries whose
    mantissa field reaches mlim (just below a power of two) are then redone with
    NumPy's log2 rounding (a threshold lookup the vectoriser cannot take).
    """
    yb = y.view(np.uint32)
    for t in range(m):
        y[t] = abs(g[b0 + t]) / alpha
    near = False
    for t in range(m):
        near |= (yb[t] & _MANT) >= mlim
        code[b0 + t], vals[b0 + t] = _entry(g[b0 + t], y[t], u[t], _exponent(yb[t]),
                                            emax, alpha)
    if near:
        for t in range(m):
            if (yb[t] & _MANT) >= mlim:
                code[b0 + t], vals[b0 + t] = _entry(g[b0 + t], y[t], u[t],
                                                    _floor_log2(yb[t], thr), emax, alpha)


def _log_quantize_impl(g, p, emax, alpha, thr, mlim, chunk, code, vals):
    """code, vals (float32 (n,)) of the flat float32 g (n,); entry i's uniform is float i
    of the PCG64 stream p. alpha: float32 > 0 with |g| / alpha finite; emax: int;
    (thr, mlim): log2_table()."""
    n = g.size
    nch = (n + chunk - 1) // chunk
    em = U(emax)
    for c in prange(nch):
        c1 = U(min(n, (c + 1) * chunk))
        u = np.empty(_UBLOCK, np.float32)
        y = np.empty(_UBLOCK, np.float32)
        for b0 in range(U(c * chunk), c1, U(_UBLOCK)):
            m = min(U(_UBLOCK), c1 - b0)
            fill_range(p, b0, b0 + m, u)
            _block(g, b0, m, y, u, em, alpha, thr, mlim, code, vals)


_log_quantize_par = njit(parallel=True, cache=True)(_log_quantize_impl)
_log_quantize_ser = njit(cache=True)(_log_quantize_impl)


def absmax_bits(gf):
    """The bit pattern (int) of max|gf| for the flat C float32 array gf; >= 0x7F800000
    iff gf has a NaN or inf (see _absmax_impl)."""
    f = _absmax_par if gf.size >= _PAR_MIN else _absmax_ser
    return int(f(gf.view(np.uint32), _CHUNK))


def log_quantize_flat(gf, p, emax, alpha, table):
    """(code, vals) float32 (n,) of the flat C float32 array gf (see _log_quantize_impl).

    p: a Stream's params; the caller advances the Generator by gf.size draws.
    table: log2_table().
    """
    code = np.empty(gf.size, np.float32)
    vals = np.empty(gf.size, np.float32)
    f = _log_quantize_par if gf.size >= _PAR_MIN else _log_quantize_ser
    f(gf, p, int(emax), np.float32(alpha), table[0], table[1], _CHUNK, code, vals)
    return code, vals


@njit(parallel=True, cache=True)
def _log_quantize_rows(g2, p, emax, alpha, offs, thr, mlim, code, vals):
    """Rows r of the C float32 (S, m) g2 with alpha[r] > 0, each as _log_quantize_impl of
    that row alone whose uniforms start at float offs[r] of the PCG64 stream p; rows with
    alpha[r] == 0 are left to the caller (its zeros). code, vals: float32 (S, m)."""
    S, m = g2.shape
    em = U(emax)
    for r in prange(S):
        a = alpha[r]
        if a == 0:
            continue
        u = np.empty(_UBLOCK, np.float32)
        y = np.empty(_UBLOCK, np.float32)
        o = offs[r]
        for b0 in range(U(0), U(m), U(_UBLOCK)):
            n = min(U(_UBLOCK), U(m) - b0)
            fill_range(p, o + b0, o + b0 + n, u)
            _block(g2[r], b0, n, y, u, em, a, thr, mlim, code[r], vals[r])


def log_quantize_rows(g2, p, emax, alpha, offs, table):
    """(code, vals) float32 (S, m) of the C float32 rows g2 (see _log_quantize_rows): rows
    with alpha 0 give zeros. alpha: float32 (S,); offs: uint64 (S,) stream offsets."""
    code = np.zeros(g2.shape, np.float32)
    vals = np.zeros(g2.shape, np.float32)
    _log_quantize_rows(g2, p, int(emax), alpha, offs, table[0], table[1], code, vals)
    return code, vals
