"""LUQ baseline quantizers (docs/paper.md sec 7; Chmiel et al., ICLR 2023).

- sawb_quantize: uniform fake-quantization with the SAWB clip
  clip = 12.1 sqrt(mean(x^2)) - 12.2 mean(|x|), s = 2 clip / (Qp - Qn),
  q = round(clip(x / s, Qn, Qp)) (half to even); signed [-(2^(b-1)-1), 2^(b-1)-1],
  unsigned [0, 2^b - 1].
- log_quantize: the 4-bit logarithmic unbiased gradient quantizer: alpha =
  max|g| / 2^(2^(bits-1)-2); |g| < alpha -> +-alpha with probability |g|/alpha
  else 0; otherwise stochastic rounding between the neighbouring powers of two
  alpha 2^e, alpha 2^(e+1) (unbiased). It runs fused Numba kernels
  (intsim.kernels._luq) equal bit for bit to the NumPy log_quantize_ref.
"""
import numpy as np

from intsim.errors import NonFiniteError
from intsim.kernels import _floatbits, _luq
from intsim.kernels._rng import Stream, random_f32


def _finite(x, what):
    if not np.isfinite(x).all():
        raise NonFiniteError(f"{what}: input contains NaN or inf")


def sawb_quantize(x, bits, signed=None):
    """x: float array -> (q float32 integer values, scale float).

    signed=None: signed iff x has a negative entry. A clip above max|x| is
    kept, as the authors' UniformQuantizeSawb keeps it (post-ReLU inputs often
    give one: the top codes then stay unused). Only a degenerate clip <= 0
    (e.g. a near-constant tensor, where the authors' scale would be <= 1e-10)
    falls back to the max|x| scale; all zeros give q = 0, scale 0.
    """
    x = np.asarray(x)
    xf = x.astype(np.float64, copy=False) if x.dtype != np.float32 else x
    if xf.size == 0:
        return np.zeros(x.shape, np.float32), 0.0
    a = np.abs(xf)
    mean_sq = float(np.mean(np.square(a, dtype=np.float64)))
    mean_abs = float(np.mean(a, dtype=np.float64))
    if not (np.isfinite(mean_sq) and np.isfinite(mean_abs)):
        raise NonFiniteError("sawb_quantize: input contains NaN or inf")
    if signed is None:
        signed = bool(xf.min() < 0)
    if signed:
        qn, qp = -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    else:
        qn, qp = 0, 2 ** bits - 1
    clip = 12.1 * np.sqrt(mean_sq) - 12.2 * mean_abs
    if not clip > 0:
        clip = float(a.max())
    if clip == 0:
        return np.zeros(x.shape, np.float32), 0.0
    s = 2.0 * clip / (qp - qn)
    y = xf / xf.dtype.type(s)
    np.clip(y, qn, qp, out=y)
    np.rint(y, out=y)
    return y.astype(np.float32, copy=False), float(s)


#: NumPy's buffer for a reduction that casts (its float64 mean of float32 data sums in
#: chunks of this many entries); an item no larger is one chunk, so the mean of each row
#: of a float64 copy is the item's own mean bit for bit
_CAST_BUFFER = 8192


def sawb_quantize_items(x, bits):
    """sawb_quantize of each item x[s] of x (S, ...) (signed per item), in one call: the
    same values and scales as S calls. Returns (q float32 of x's shape, scales (S,))."""
    x = np.asarray(x)
    S = x.shape[0]
    x2 = x.reshape(S, -1)
    m = x2.shape[1]
    if m == 0 or m > _CAST_BUFFER or x.dtype != np.float32:
        outs = [sawb_quantize(x[s], bits) for s in range(S)]
        return (np.stack([o[0] for o in outs]).reshape(x.shape) if S else
                np.zeros(x.shape, np.float32), np.array([o[1] for o in outs], np.float64))
    a = np.abs(x2)
    mean_sq = np.mean(np.square(a, dtype=np.float64), axis=1)
    mean_abs = np.mean(a.astype(np.float64), axis=1)
    if not (np.isfinite(mean_sq).all() and np.isfinite(mean_abs).all()):
        raise NonFiniteError("sawb_quantize: input contains NaN or inf")
    signed = x2.min(axis=1) < 0
    qn = np.where(signed, -(2 ** (bits - 1) - 1), 0)
    qp = np.where(signed, 2 ** (bits - 1) - 1, 2 ** bits - 1)
    clip = 12.1 * np.sqrt(mean_sq) - 12.2 * mean_abs
    clip = np.where(clip > 0, clip, a.max(axis=1).astype(np.float64))
    s = np.where(clip == 0, 0.0, 2.0 * clip / (qp - qn))
    y = x2 / np.where(s == 0, 1.0, s).astype(np.float32)[:, None]
    np.clip(y, qn[:, None].astype(np.float32), qp[:, None].astype(np.float32), out=y)
    np.rint(y, out=y)
    y[s == 0] = 0
    return y.reshape(x.shape), s


def log_quantize(g, bits, rng):
    """Logarithmic unbiased quantization of a gradient tensor.

    g: float array; bits: total bits (sign + bits-1 exponent bits, so
    2^(bits-1) - 1 nonzero magnitudes alpha * 2^0 .. 2^emax, emax = 2^(bits-1) - 2).
    rng: np.random.Generator. Returns (codes float32 in {0, +-1 .. +-(emax+1)},
    values float32 = sign * alpha * 2^(|code|-1) (0 for code 0), alpha float).

    Equals log_quantize_ref bit for bit (codes, values, alpha and the Generator's
    state after); for a PCG64 Generator and int bits in 2..8 it runs the fused Numba
    kernels of intsim.kernels._luq, drawing the uniforms inside them.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError("log_quantize needs rng, a numpy.random.Generator")
    g = np.asarray(g, dtype=np.float32)
    st = Stream.of(rng)
    table = _luq.log2_table()
    if (type(bits) is not int or not 2 <= bits <= 8 or st is None or table is None
            or g.ndim == 0):
        return log_quantize_ref(g, bits, rng)
    gf = np.ascontiguousarray(g).reshape(-1)
    mb = _luq.absmax_bits(gf)
    if mb >= _floatbits.NONFINITE:
        raise NonFiniteError("log_quantize: input contains NaN or inf")
    if mb == 0:
        z = np.zeros(g.shape, np.float32)
        return z, z.copy(), 0.0
    emax = 2 ** (bits - 1) - 2
    gmax = float(np.uint32(mb).view(np.float32))
    alpha = gmax / 2.0 ** emax
    _alpha_representable(alpha, gmax, emax)
    code, vals = _luq.log_quantize_flat(gf, st.params, emax, alpha, table)
    st.consume(rng, gf.size)
    return code.reshape(g.shape), vals.reshape(g.shape), alpha


def log_quantize_items(g, bits, rng):
    """log_quantize of each item g[s] of g (S, ...) in order, in one call: the same codes,
    values and draws (an all-zero item draws nothing) as S calls. Returns (codes, values
    float32 of g's shape, alphas (S,) float64)."""
    g = np.asarray(g, dtype=np.float32)
    S = g.shape[0]
    st = Stream.of(rng) if isinstance(rng, np.random.Generator) else None
    table = _luq.log2_table()
    if (type(bits) is not int or not 2 <= bits <= 8 or st is None or table is None
            or g.ndim < 2 or S == 0):
        outs = [log_quantize(g[s], bits, rng) for s in range(S)]
        return (np.stack([o[0] for o in outs]).reshape(g.shape),
                np.stack([o[1] for o in outs]).reshape(g.shape),
                np.array([o[2] for o in outs], np.float64))
    g2 = np.ascontiguousarray(g).reshape(S, -1)
    mb, _ = _floatbits.rows_abs_max_bits(g2)
    emax = 2 ** (bits - 1) - 2
    gmax = mb.view(np.float32).astype(np.float64)
    alpha = gmax / 2.0 ** emax
    nonfinite = mb >= _floatbits.NONFINITE
    under = (gmax > 0) & (alpha.astype(np.float32) == 0)
    if nonfinite.any() or under.any():      # the first such item's error, as S calls
        s = int(np.argmax(nonfinite | under))
        if nonfinite[s]:
            raise NonFiniteError("log_quantize: input contains NaN or inf")
        _alpha_representable(alpha[s], gmax[s], emax)
    m = g2.shape[1]
    nonzero = gmax > 0
    offs = (np.cumsum(nonzero) - nonzero).astype(np.uint64) * np.uint64(m)
    code, vals = _luq.log_quantize_rows(g2, st.params, emax, alpha.astype(np.float32), offs,
                                        table)
    st.consume(rng, int(nonzero.sum()) * m)
    return code.reshape(g.shape), vals.reshape(g.shape), np.where(nonzero, alpha, 0.0)


def _alpha_representable(alpha, gmax, emax):
    """NonFiniteError when alpha = max|g| / 2^emax rounds to 0 in float32 (max|g| below
    about 2^-149 * 2^emax, e.g. 4.5e-44 at 4 bits): the quantizer divides |g| by alpha,
    and the released code's gradient then holds NaN (inf * 0), so training diverges."""
    if np.float32(alpha) == 0:
        raise NonFiniteError(f"log_quantize: alpha = max|g| / 2^{emax} underflows to 0 in "
                             f"float32 (max|g| = {gmax:.3g}); the quantized gradient is NaN")


def log_quantize_ref(g, bits, rng):
    """The plain NumPy log_quantize (same arguments and results): the reference the
    fused kernels are tested against, and the path of any other generator or bits."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError("log_quantize needs rng, a numpy.random.Generator")
    g = np.asarray(g, dtype=np.float32)
    _finite(g, "log_quantize")
    emax = 2 ** (bits - 1) - 2
    gmax = float(np.abs(g).max()) if g.size else 0.0
    if gmax == 0:
        z = np.zeros(g.shape, np.float32)
        return z, z.copy(), 0.0
    alpha = gmax / 2.0 ** emax
    _alpha_representable(alpha, gmax, emax)
    y = np.abs(g) / np.float32(alpha)                   # in [0, 2^emax]
    u = random_f32(rng, g.shape)   # rng.random(g.shape, dtype=float32), drawn in parallel
    e = np.floor(np.log2(np.maximum(y, np.float32(1.0))))
    np.minimum(e, emax, out=e)
    lo = np.exp2(e)        # 2^e <= y for y >= 1, or just above where log2 rounds up
    # y >= 1: up with prob (y - lo)/lo; y < 1: to 1 with prob y, else 0
    small = y < 1
    up = u < np.where(small, y, y / lo - 1)
    code = np.where(small, np.where(up, 1.0, 0.0), e + 1 + up).astype(np.float32)
    np.minimum(code, emax + 1, out=code)
    code *= np.sign(g)
    vals = np.sign(code) * np.exp2(np.abs(code) - 1) * np.float32(alpha)
    vals[code == 0] = 0
    return code, vals.astype(np.float32), alpha
