"""Per-tensor max-scaled integer quantizers (docs/paper.md section 2).

Formula (per tensor, or per item of the first ``batch_dims`` axes):
    m = clip * max|x|
    signed:   L = 2^(bits-1) - 1, q in [-L, L];  unsigned: L = 2^bits - 1, q in [0, L]
    s = m / L                           (float64; 0 when m == 0)
    y = clip(x / s, qmin, L)            (computed in x's float dtype, s cast to it)
    nearest:     q = rint(y)            (round half to even)
    stochastic:  q = floor(y + u), u ~ U[0, 1) float32 from ``rng``
                 (rounds up with probability frac(y), so E[q] = y: unbiased)
An all-zero tensor (m == 0) gives q = 0 and s = 0. q * s approximates x.
The max|x| reduction and the scale/clip/round pass are fused Numba kernels
(intsim.kernels._quant) doing exactly these float operations; the uniforms
are the same rng.random(x.shape, dtype=float32) draws as the NumPy reference.
"""
import numpy as np

from intsim.formats._grid import ROUNDINGS   # the roundings the fused kernels implement
from intsim.errors import NonFiniteError
from intsim.kernels import _hquant as _hq
from intsim.kernels import _quant as _kq
from intsim.kernels._rng import Stream

__all__ = ["quantize", "quantize_f32", "quantize_items", "levels_used", "levels_used_items",
           "qrange"]

_F32_TINY = np.finfo(np.float32).tiny


def _check_bits(bits):
    if isinstance(bits, (bool, np.bool_)) or not isinstance(bits, (int, np.integer)):
        raise ValueError(f"bits must be an integer in 2..16, got {bits!r}")
    if not 2 <= int(bits) <= 16:
        raise ValueError(f"bits must be in 2..16, got {bits}")
    return int(bits)


def qrange(bits, signed):
    """(qmin, qmax) integer range of the quantizer: (-(2^(b-1)-1), 2^(b-1)-1) or (0, 2^b-1)."""
    bits = _check_bits(bits)
    if signed:
        L = (1 << (bits - 1)) - 1
        return -L, L
    return 0, (1 << bits) - 1


def _as_float(x, name="x"):
    x = np.asarray(x)
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.floating)
                                   or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"{name} must be a real float or integer array, got dtype {x.dtype}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    return x


def quantize_f32(x, bits, *, rounding="nearest", signed=None, clip=1.0, rng=None, batch_dims=0):
    """Quantize x; returns (q, scale) with q a float32 array of integer values.

    x: float32/float64 (other real dtypes are converted to float64), finite, any shape.
    bits: 2..16. rounding: "nearest" (half to even) or "stochastic" (needs ``rng``,
    a np.random.Generator; uniforms are drawn as float32 of x's shape).
    signed: None = signed iff the tensor has a negative entry; True/False forces it.
    clip: factor (> 0) on the max (0.975 for the paper's forward quantizer).
    batch_dims: the first batch_dims axes index independent tensors, each with its own
    max, signedness (when signed is None) and scale; scale is then a float64 array of
    shape x.shape[:batch_dims], else a Python float.
    q has x's shape, dtype float32; q * scale approximates x.
    """
    bits = _check_bits(bits)
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    if rounding == "stochastic" and not isinstance(rng, np.random.Generator):
        raise ValueError("stochastic rounding needs rng, a numpy.random.Generator")
    if signed not in (None, True, False):
        raise ValueError(f"signed must be None, True or False, got {signed!r}")
    clip = float(clip)
    if not (np.isfinite(clip) and clip > 0):
        raise ValueError(f"clip must be a positive finite number, got {clip}")
    x = _as_float(x)
    if isinstance(batch_dims, (bool, np.bool_)) or not isinstance(batch_dims, (int, np.integer)) \
            or not 0 <= batch_dims <= x.ndim:
        raise ValueError(f"batch_dims must be an integer in 0..{x.ndim}, got {batch_dims!r}")
    bshape = x.shape[:batch_dims]
    if x.size == 0:
        q = np.zeros(x.shape, np.float32)
        return (q, 0.0) if batch_dims == 0 else (q, np.zeros(bshape, np.float64))
    x = np.ascontiguousarray(x)
    if batch_dims == 0:
        return _quantize_one(x, bits, rounding, signed, clip, rng)
    rows = int(np.prod(bshape, dtype=np.int64))
    if x.dtype == np.float32:
        # (max|x|, -max|x| or 0) per item: the same scales and signs, faster on short items
        xmax, xmin = _kq.row_range_f32(x.reshape(rows, -1))
    else:
        xmax, xmin = _kq.row_range(x.reshape(rows, -1))
    s, s_div, lo, L, zero = _item_scales(xmax.reshape(bshape), xmin.reshape(bshape),
                                         bits, signed, clip)
    if x.dtype == np.float32 and np.any(s_div.astype(np.float32) < _F32_TINY):
        x = x.astype(np.float64)  # scale not representable in float32 (subnormal input)
    u, st = _uniforms(rng, x) if rounding == "stochastic" else (None, None)
    q = _kq.apply(x.reshape(rows, -1), None if u is None else u.reshape(rows, -1),
                  s_div.reshape(-1), lo.reshape(-1), L.reshape(-1),
                  ~zero.reshape(-1), stream=st).reshape(x.shape)
    if st is not None:
        st.consume(rng, x.size)
    if batch_dims == 0:
        return q, float(s)
    return q, np.where(zero, 0.0, s)


def _item_scales(xmax, xmin, bits, signed, clip):
    """Per-item (scale s, divisor, qmin, qmax, all-zero mask) float64 arrays from the
    items' float64 max and min (the module docstring's formula)."""
    m = clip * np.maximum(xmax, -xmin)
    if signed is None:
        sgn = xmin < 0
    else:
        sgn = np.full(xmin.shape, bool(signed))
    Ls = float((1 << (bits - 1)) - 1)
    L = np.where(sgn, Ls, float((1 << bits) - 1))
    s = m / L
    zero = ~(s > 0)
    return s, np.where(zero, 1.0, s), np.where(sgn, -Ls, 0.0), L, zero


def quantize_items(x, bits, *, rounding="nearest", signed=None, clip=1.0, rng=None):
    """quantize_f32 of a (A, S, M) float32 array whose items are along axis 1.

    Equals ``np.moveaxis(q, 0, 1)`` of ``quantize_f32(np.moveaxis(x, 1, 0), ...,
    batch_dims=1)`` bit for bit, draws included (the uniforms are taken in the
    item-major order (S, A, M)), without the two transposed copies; the layout
    of the K-major convolution. Returns (q (A, S, M) float32, scale (S,) float64).
    """
    bits = _check_bits(bits)
    x = np.asarray(x)
    if x.ndim != 3 or x.dtype != np.float32 or not x.flags.c_contiguous:
        raise ValueError(f"quantize_items needs a C-contiguous (A, S, M) float32 array, "
                         f"got {x.dtype} {x.shape}")
    def general():
        q, s = quantize_f32(np.moveaxis(x, 1, 0), bits, rounding=rounding, signed=signed,
                            clip=clip, rng=rng, batch_dims=1)
        return np.ascontiguousarray(np.moveaxis(q, 0, 1)), s

    st = Stream.of(rng) if rounding == "stochastic" else None
    if x.size == 0 or (rounding == "stochastic" and st is None):
        return general()
    xmax, xmin = _kq.item_range(x)
    s, s_div, lo, L, zero = _item_scales(xmax, xmin, bits, signed, clip)
    if np.any(s_div.astype(np.float32) < _F32_TINY):
        return general()    # float64 arithmetic (subnormal input)
    q = _kq.apply_items(x, st, s_div, lo, L, ~zero)
    if st is not None:
        st.consume(rng, x.size)
    return q, np.where(zero, 0.0, s)


def hadamard_quantize_items(x, along, block, top_first, bits, *, rounding="nearest",
                            signed=None, clip=1.0, rng=None):
    """quantize_items of x transformed in blocks of ``block`` along axis ``along``, in one pass.

    x: (A, S, M) float32, items along axis 1, any strides (a transposed view is
    read in place); along: 0 or 2; block: the Hadamard block (1: no transform),
    dividing x.shape[along]; top_first: the stage order of
    intsim.kernels.hadamard.fwht on a non-last axis (see intsim.kernels._hquant).
    Returns (q (A, S, M) float32, scale (S,) float64) equal bit for bit, draws
    included, to quantize_items of the transformed array, or None when the fused
    kernel cannot take the input (empty, a non-PCG64 stochastic Generator, or a
    scale below float32's normal range); then nothing is drawn.
    """
    bits = _check_bits(bits)
    x = np.asarray(x)
    if x.ndim != 3 or x.dtype != np.float32 or along not in (0, 2):
        raise ValueError(f"hadamard_quantize_items needs an (A, S, M) float32 array and "
                         f"along 0 or 2, got {x.dtype} {x.shape}, along={along!r}")
    if x.shape[along] % block:
        raise ValueError(f"block {block} does not divide axis {along} of length "
                         f"{x.shape[along]}")
    stochastic = rounding == "stochastic"
    st = Stream.of(rng) if stochastic else None
    if x.size == 0 or (stochastic and st is None):
        return None
    A, S, M = x.shape
    out = np.empty((A, S, M), np.float32)
    scales = np.zeros(S, np.float64)
    flags = np.zeros(S, np.uint8)
    sg = -1 if signed is None else int(bool(signed))
    _hq.hadamard_quantize_items(x, along == 0, int(block), bool(top_first),
                                st.params if st is not None else np.zeros(6, np.uint64),
                                stochastic, bits, sg, float(clip), out, scales, flags)
    if np.any(flags == _hq.NONFINITE):
        raise NonFiniteError("quantize: input contains NaN or inf")
    if np.any(flags == _hq.SUBNORMAL):
        return None
    if st is not None:
        st.consume(rng, x.size)
    return out, scales


def _quantize_one(x, bits, rounding, signed, clip, rng):
    """quantize_f32 of one whole C-contiguous tensor (batch_dims=0): the same float64
    operations on Python floats, without the per-item NumPy array bookkeeping."""
    xmax, xmin = _kq.row_range(x.reshape(1, -1))
    xmax, xmin = float(xmax[0]), float(xmin[0])
    m = clip * max(xmax, -xmin)       # max() keeps the first of equals, as np.maximum does
    sgn = xmin < 0 if signed is None else bool(signed)
    Ls = float((1 << (bits - 1)) - 1)
    L = Ls if sgn else float((1 << bits) - 1)
    s = m / L
    zero = not s > 0
    s_div = 1.0 if zero else s
    if x.dtype == np.float32 and np.float32(s_div) < _F32_TINY:
        x = x.astype(np.float64)  # scale not representable in float32 (subnormal input)
    u, st = _uniforms(rng, x) if rounding == "stochastic" else (None, None)
    q = _kq.apply(x.reshape(1, -1), None if u is None else u.reshape(1, -1),
                  np.array([s_div]), np.array([-Ls if sgn else 0.0]),
                  np.array([L]), np.array([not zero]), stream=st).reshape(x.shape)
    if st is not None:
        st.consume(rng, x.size)
    return q, float(s)


def skip_draws(rng, n: int) -> None:
    """Move ``rng`` on by the ``n`` float32 uniforms a stochastic rounding of ``n``
    values draws, without drawing them (a pass that is not computed keeps the
    other passes' draws where they were)."""
    n = int(n)
    if n <= 0:
        return
    st = Stream.of(rng)
    if st is None:
        rng.random(n, dtype=np.float32)
    else:
        st.consume(rng, n)


def _uniforms(rng, x):
    """The uniforms of a stochastic rounding of x: (None, Stream) for a PCG64 rng (the
    kernel draws rng.random(x.shape, dtype=float32)'s values itself), else (that array, None).

    Drawn for every entry (also of all-zero tensors) so seeded streams do not depend on
    data. Any other bit generator (a PCG64 subclass too) takes the plain NumPy
    draw, which is the reference the fused path is tested against.
    """
    st = Stream.of(rng)
    if st is None:
        return rng.random(x.shape, dtype=np.float32), None
    return None, st


def _int_dtype(bits, signed):
    qmin, qmax = qrange(bits, signed)
    for dt in (np.int8, np.int16, np.int32):
        if np.iinfo(dt).max >= qmax:
            return dt
    return np.int32  # pragma: no cover


def quantize(x, bits, *, rounding="nearest", signed=None, clip=1.0, rng=None):
    """Quantize x to ``bits``-bit integers with one max-based scale (docs/paper.md section 2).

    x: real array (any shape), finite. Returns (q, scale): q has x's shape and the
    smallest signed integer dtype holding the range (int8 for 4-bit), scale a float;
    q * scale approximates x. See the module docstring for the exact formula and
    quantize_f32 for the parameters. NaN/inf, bits outside 2..16, a bad rounding
    name or a missing rng for stochastic rounding raise ValueError.
    """
    q, s = quantize_f32(x, bits, rounding=rounding, signed=signed, clip=clip, rng=rng)
    x = np.asarray(x)
    sgn = bool(np.min(x) < 0) if (signed is None and x.size) else bool(signed)
    return q.astype(_int_dtype(bits, sgn)), s


def levels_used(q, bits, signed):
    """Fraction of the quantizer's levels that occur in q.

    q: integer-valued array (any dtype). Levels: 2^bits - 1 (signed, -L..L) or
    2^bits (unsigned, 0..2^bits-1). Values outside the range raise ValueError.
    """
    qmin, qmax = qrange(bits, signed)
    q = np.asarray(q)
    if q.size == 0:
        return 0.0
    seen, ok = _kq.levels_seen(q, qmin, qmax)
    if not ok:
        raise ValueError(f"levels_used: q has values outside [{qmin}, {qmax}]")
    return float(np.count_nonzero(seen)) / float(qmax - qmin + 1)


def levels_used_items(q, bits, signed):
    """levels_used of each item q[s] of q (S, ...), in one pass: float64 (S,).

    signed: one bool for every item, or a bool array (S,) (an item's levels are
    then -L..L or 0..2^bits-1 by its own flag). The same values as S calls of
    levels_used; values outside an item's range raise ValueError.
    """
    q = np.asarray(q)
    S = q.shape[0]
    flags = np.broadcast_to(np.asarray(signed, bool), (S,))
    if S == 0:
        return np.zeros(0)
    if q.size == 0:
        return np.zeros(S)
    (smin, smax), (umin, umax) = qrange(bits, True), qrange(bits, False)
    qmin = np.where(flags, smin, umin)
    n = np.where(flags, smax - smin + 1, umax - umin + 1)
    qf = q.reshape(S, -1)
    if qf.dtype.kind == "f" and not np.isfinite(qf).all():
        raise ValueError("levels_used: q has values outside its range (NaN or inf)")
    d = qf.astype(np.int64) - qmin[:, None]
    if ((d < 0) | (d >= n[:, None])).any():
        raise ValueError(f"levels_used: q has values outside the {bits}-bit range")
    width = int(n.max())
    seen = np.zeros((S, width), bool)
    seen[np.arange(S)[:, None], d] = True
    return np.count_nonzero(seen, axis=1).astype(np.float64) / n.astype(np.float64)
