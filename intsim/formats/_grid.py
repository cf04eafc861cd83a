"""What every number format shares: rounding on a grid, scales, and the counts.

A format quantizes x (any shape) in four steps, all in float64:

    y = x / scale                      (scale: None = 1, a float, or an array
                                        broadcasting against x, e.g. (C, 1, 1, 1))
    k = |y| / step(|y|)                (step: a power of two, the spacing of the
                                        format's values around |y|)
    nearest:     k' = rint(k)          (half to even: the neighbour whose
                                        mantissa integer k' is even)
    stochastic:  k' = floor(k) + [u < k - floor(k)],  u = rng.random(x.shape)
    q = sign(y) k' step, then the format's overflow rule above its max,
    result = q * scale                 (cast to x's float dtype)

Dividing by a power of two is exact in float64, so k and k - floor(k) are
exact: stochastic rounding goes up with probability exactly frac(k) (up to
the 2^-53 granularity of the uniforms) and is unbiased. One uniform is drawn
per element (zeros included), so a seeded stream does not depend on the data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROUNDINGS = ("nearest", "stochastic")


@dataclass
class QuantStats:
    """Counts of one quantization.

    count: finite values quantized; flushed: nonzero values that became 0
    (underflow); saturated: values whose rounded magnitude exceeded the
    format's max (overflow: clamped to +-max, or made inf/NaN when the format
    does not saturate; infinite inputs count here too); max_abs: the largest
    finite |x / scale| seen (format units; 0.0 when there is none).
    """

    count: int = 0
    flushed: int = 0
    saturated: int = 0
    max_abs: float = 0.0

    def add(self, other: "QuantStats") -> "QuantStats":
        """Add another QuantStats' counts into this one; returns self."""
        self.count += other.count
        self.flushed += other.flushed
        self.saturated += other.saturated
        self.max_abs = max(self.max_abs, other.max_abs)
        return self


def is_part(rounding) -> bool:
    """A rounding part (intsim.datapath.parts.Rounding) rather than a built-in name."""
    return not isinstance(rounding, str) and hasattr(rounding, "round_units")


def check_rounding(rounding, rng):
    if is_part(rounding):
        if rounding.draws and not isinstance(rng, np.random.Generator):
            raise ValueError(f"rounding {rounding.name!r} needs rng, a numpy.random.Generator")
        return
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    if rounding == "stochastic" and not isinstance(rng, np.random.Generator):
        raise ValueError("stochastic rounding needs rng, a numpy.random.Generator")


def as_input(x):
    """(x as float64 array, output dtype): float32/float64 keep their dtype, other
    real dtypes give float64."""
    x = np.asarray(x)
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.floating)
                                   or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"x must be a real float or integer array, got dtype {x.dtype}")
    out = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    return x.astype(np.float64, copy=False), out


def scaled(x64, scale):
    """x / scale in float64; scale None, a positive float or a positive array that
    broadcasts against x (ValueError otherwise). Returns (y, scale array or None)."""
    if scale is None:
        return x64, None
    s = np.asarray(scale, dtype=np.float64)
    if not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise ValueError("scale must be positive and finite")
    try:
        np.broadcast_shapes(s.shape, x64.shape)
    except ValueError:
        raise ValueError(f"scale of shape {s.shape} does not broadcast against x "
                         f"{x64.shape}") from None
    if np.broadcast_shapes(s.shape, x64.shape) != x64.shape:
        raise ValueError(f"scale of shape {s.shape} would change x's shape {x64.shape}")
    return x64 / s, s


def round_grid(a, step, rounding, u, up=None):
    """Round magnitudes a >= 0 (float64) to multiples of step (powers of two, same
    shape or broadcasting): nearest-even, stochastic with uniforms u, or, for
    rounding "directed", up (ceil) where the bool array ``up`` is set and down
    (floor) elsewhere."""
    k = a / step
    if is_part(rounding):
        return rounding.round_units(k, u) * step
    if rounding == "nearest":
        kr = np.rint(k)
    elif rounding == "directed":
        kr = np.where(up, np.ceil(k), np.floor(k))
    else:
        fl = np.floor(k)
        kr = fl + (u < (k - fl))
    return kr * step


def binade(a):
    """E = floor(log2 a) for a > 0 (exact, via frexp); a == 0 gives -1 (unused)."""
    _, ex = np.frexp(a)
    return ex.astype(np.int64) - 1


def finish(y, qmag, max_value, overflow_value, scale, out_dtype, want_stats):
    """(sign(y) qmag with the overflow rule, scaled back; QuantStats if asked, else
    None; the bool mask of the values above max_value).

    qmag: rounded magnitudes (may exceed max_value); overflow_value: what a
    magnitude above max_value becomes (max_value: saturate; inf or NaN).
    NaN inputs stay NaN and are not counted.
    """
    nan = np.isnan(y)
    over = qmag > max_value
    q = np.where(over, overflow_value, qmag)
    q = np.where(nan, np.nan, np.copysign(q, y))
    stats = None
    if want_stats:
        fin = np.isfinite(y)
        ay = np.abs(y[fin])
        stats = QuantStats(count=int(fin.sum()),
                           flushed=int(np.count_nonzero((y != 0) & (q == 0) & ~nan)),
                           saturated=int(np.count_nonzero(over & ~nan)),
                           max_abs=float(ay.max()) if ay.size else 0.0)
    if scale is not None:
        q = q * scale
    return q.astype(out_dtype, copy=False), stats, over & ~nan


#: the rounding codes of intsim.formats._fast
_MODES = {"nearest": 0, "stochastic": 1, "directed": 2}
#: False: every format quantizes through the NumPy reference path (tests compare)
FAST = True


def run_fast(kernel, y, u, up, rounding, scale, out_dtype, want_stats, *params):
    """A format's quantization through its Numba kernel (intsim.formats._fast):
    the same (q, QuantStats or None, over mask) as the NumPy path and finish()."""
    yf = np.ascontiguousarray(y, dtype=np.float64).ravel()
    uf = np.empty(0) if u is None else np.ascontiguousarray(u, dtype=np.float64).ravel()
    upf = np.empty(0, np.bool_) if up is None else np.ascontiguousarray(up, np.bool_).ravel()
    q, over, count, flushed, saturated, mx = kernel(yf, uf, upf, _MODES[rounding], *params)
    q = q.reshape(np.shape(y))
    over = over.reshape(np.shape(y))
    stats = QuantStats(count=int(count), flushed=int(flushed), saturated=int(saturated),
                       max_abs=float(mx)) if want_stats else None
    if scale is not None:
        q = q * scale
    return q.astype(out_dtype, copy=False), stats, over


def uniforms(rounding, rng, shape):
    """The uniforms of a stochastic rounding (one float64 per element), else None."""
    if is_part(rounding):
        return rng.random(shape) if rounding.draws else None
    if rounding != "stochastic":
        return None
    return rng.random(shape)


class Format:
    """What every number format shares: quantize / quantize_stats over the
    subclass's ``_quantize(x, rounding, rng, scale, want_stats) -> (y, stats, ...)``."""

    def quantize(self, x, rounding="nearest", rng=None, scale=None):
        """x (any shape) -> scale * (x / scale rounded to this format), in x's float
        dtype (float64 for other dtypes). scale: None, a positive float or an array
        broadcasting against x (per channel, e.g. shape (C, 1)). rounding "nearest"
        (ties as the format documents) or "stochastic" (rng: a np.random.Generator;
        one uniform per element)."""
        return self._quantize(x, rounding, rng, scale, False)[0]

    def quantize_stats(self, x, rounding="nearest", rng=None, scale=None):
        """(quantize(...), QuantStats of the call: values flushed to zero and saturated)."""
        return self._quantize(x, rounding, rng, scale, True)[:2]

