"""Matmul with a low-precision float accumulator: every addition rounded to a FloatFormat.

``float_matmul_acc(a, b, fmt=...)`` computes C = a @ b for a (M, K), b (K, N)
as a float accumulator of format ``fmt`` would, one output element at a time:

  products   p_k = a[i, k] * b[k, j] computed in float64, then x_k = round_fmt(p_k).
             Exact for float32 (or narrower) values: 24 + 24 significant bits
             fit float64's 53. A product of float64 values needing more bits
             is rounded to float64 first (two roundings).
  additions  every sum of two values is rounded once to fmt from the exact sum
             (round to nearest, ties to the even mantissa; subnormals as
             fmt.subnormals says; a rounded magnitude above fmt.max_value
             becomes +-max_value with overflow "saturate", else +-inf, or NaN
             for a format without inf; a NaN sum, inf - inf, becomes the
             positive NaN, as FloatFormat.quantize makes of NaN). The exact sum is carried as a float64
             pair (TwoSum), so there is no double rounding through float64 for
             any man_bits <= 52: Kahan's compensation steps are rounded the
             same way.

Orders over the k of one block (K is cut into blocks of ``tile`` consecutive k,
the last may be shorter; tile=None: one block), each starting from 0.0:
  "naive"     s = 0; for k: s = round(s + x_k)                          (n adds)
  "pairwise"  pw(x_0 .. x_{n-1}) = x_0 if n == 1, else
              round(pw(x_0 .. x_{h-1}) + pw(x_h .. x_{n-1})) with h the largest
              power of two below n (h < n <= 2h): perfect binary trees over
              aligned power-of-two runs, e.g. n = 7 gives
              ((x0+x1)+(x2+x3)) + ((x4+x5)+x6)                         (n - 1 adds)
  "kahan"     s = c = 0; for k: y = round(x_k - c); t = round(s + y);
              c = round(round(t - s) - y); s = t; the block sum is s     (n audited adds)
Block sums then pass to the outer accumulator, format ``outer_fmt`` (None: fmt):
S = 0; for each block in order: S = round_outer(S + round_outer(block sum)).
The result is S: values of the outer format, float32 when every value of that
format is a float32 (man_bits <= 23, emax <= 127, emin - man_bits >= -149), else
float64.

The fast path is the Numba kernel ``_floatacc.float_mm`` (rows in parallel, each
output summed by one thread in the order above, so the result does not depend on
the thread count); :func:`float_matmul_acc_ref` is the plain NumPy reference
(FloatFormat.quantize for every rounding) it equals bit for bit, audit included.
"""
from dataclasses import dataclass, fields, replace

import numpy as np

from intsim.formats import FloatFormat, get_format
from intsim.kernels import _floatacc as _kf

__all__ = ["FloatAccAudit", "float_matmul_acc", "float_matmul_acc_ref", "ORDERS"]

ORDERS = ("naive", "pairwise", "kahan")
_ORDER_CODE = {"naive": _kf.NAIVE, "pairwise": _kf.PAIRWISE, "kahan": _kf.KAHAN}


@dataclass
class FloatAccAudit:
    """Counters of the accumulator additions, added to by every matmul given this object.

    An audited add is s + x -> r = round(s + x) with s the running sum (naive),
    the left operand (pairwise: the sum of the earlier k) or the Kahan sum s
    (its add t = round(s + y); the three compensation roundings are not
    audited), x the addend.
      adds       audited adds performed (inner: M N K for naive and kahan,
                 M N (K - blocks) for pairwise).
      swamped    adds with finite s, x whose result is not the exact sum
                 (r != s + x in exact arithmetic, overflows included): the
                 addend was partly or wholly lost to rounding. Exact adds
                 (e.g. 0 + x) are not swamped.
      absorbed   the subset with r == s and x != 0: the addend wholly lost.
      overflows  adds with finite s, x whose rounded magnitude exceeded
                 fmt.max_value (the result saturated or became inf/NaN).
      max_abs    largest |r| over the adds with finite s, x (inf after an
                 overflow to inf; 0.0 when there were none).
      prod_overflows  products whose rounding to fmt exceeded its max.
    Adds with an inf/NaN operand (after an overflow to inf, or an infinite
    product) count in adds only. The outer_* fields are the same for the outer
    accumulator (outer_adds = M N blocks); the conversion of a block sum to
    outer_fmt is not audited (exact when outer_fmt holds every fmt value).
    """
    adds: int = 0
    swamped: int = 0
    absorbed: int = 0
    overflows: int = 0
    max_abs: float = 0.0
    prod_overflows: int = 0
    outer_adds: int = 0
    outer_swamped: int = 0
    outer_absorbed: int = 0
    outer_overflows: int = 0
    outer_max_abs: float = 0.0

    _MAX = ("max_abs", "outer_max_abs")

    @property
    def frac_swamped(self):
        """swamped / adds (0.0 when no adds were counted)."""
        return self.swamped / self.adds if self.adds else 0.0

    def add(self, other):
        """Add another FloatAccAudit's (or an as_dict() dict's) counters into this one
        (max_abs fields: the larger); returns self."""
        if isinstance(other, dict):
            other = FloatAccAudit(**{f.name: other[f.name] for f in fields(self)})
        if not isinstance(other, FloatAccAudit):
            raise ValueError(f"FloatAccAudit.add needs a FloatAccAudit or dict, "
                             f"got {type(other).__name__}")
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name in self._MAX:
                setattr(self, f.name, max(float(mine), float(theirs)))
            else:
                setattr(self, f.name, int(mine) + int(theirs))
        return self

    def reset(self):
        """Zero all counters; returns self."""
        for f in fields(self):
            setattr(self, f.name, 0.0 if f.name in self._MAX else 0)
        return self

    def as_dict(self):
        """Every field (ints; the max_abs fields floats) and frac_swamped (float)."""
        d = {f.name: (float(getattr(self, f.name)) if f.name in self._MAX
                      else int(getattr(self, f.name))) for f in fields(self)}
        d["frac_swamped"] = float(self.frac_swamped)
        return d


# ------------------------------------------------------------------ checks
def _check_format(fmt, name):
    if isinstance(fmt, str):
        fmt = get_format(fmt)
    if not isinstance(fmt, FloatFormat):
        raise ValueError(f"{name} must be a FloatFormat (or a preset name of one), "
                         f"got {fmt!r}")
    return fmt


def _check(a, b, fmt, order, tile, outer_fmt, audit):
    fmt = _check_format(fmt, "fmt")
    outer = fmt if outer_fmt is None else _check_format(outer_fmt, "outer_fmt")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if tile is not None:
        if isinstance(tile, (bool, np.bool_)) or not isinstance(tile, (int, np.integer)) \
                or tile < 1:
            raise ValueError(f"tile must be a positive integer or None, got {tile!r}")
        tile = int(tile)
    if audit is not None and not isinstance(audit, FloatAccAudit):
        raise ValueError(f"audit must be a FloatAccAudit or None, got {type(audit).__name__}")
    arrs = []
    for name, x in (("a", a), ("b", b)):
        x = np.asarray(x)
        if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.floating)
                                       or np.issubdtype(x.dtype, np.integer)):
            raise ValueError(f"{name} must be a real float array, got dtype {x.dtype}")
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {x.shape}")
        x = np.ascontiguousarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} holds NaN or inf values")
        arrs.append(x)
    a, b = arrs
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"shape mismatch: a {a.shape} and b {b.shape} "
                         f"(K {a.shape[1]} != {b.shape[0]})")
    return a, b, fmt, outer, tile


def _out_dtype(fmt):
    fits = fmt.man_bits <= 23 and fmt.emax <= 127 and fmt.emin - fmt.man_bits >= -149
    return np.dtype(np.float32) if fits else np.dtype(np.float64)


def _params(fmt):
    """The kernels' format tuple (_floatacc.params)."""
    if fmt.overflow == "saturate":
        ov = fmt.max_value
    else:
        ov = np.inf if fmt.has_inf else np.nan
    return _kf.params(int(fmt.man_bits), int(fmt.emin), bool(fmt.subnormals),
                      float(fmt.min_normal), float(fmt.max_value), float(ov))


def _blocks(K, tile):
    """(block length T, number of blocks)."""
    if K == 0:
        return 1, 0
    T = K if tile is None else min(tile, K)
    return T, -(-K // T)


def _inner_adds(order, K, T, nB):
    """Audited inner adds per output element."""
    return K - nB if order == "pairwise" else K


# ------------------------------------------------------------------ the API
def _prepare(a, b, fmt, order, tile, outer_fmt, audit):
    """The checked arguments and the shapes both paths start from: (a, b, fmt, outer,
    tile, M, K, N, output dtype, block length T, number of blocks)."""
    a, b, fmt, outer, tile = _check(a, b, fmt, order, tile, outer_fmt, audit)
    M, K = a.shape
    T, nB = _blocks(K, tile)
    return a, b, fmt, outer, tile, M, K, b.shape[1], _out_dtype(outer), T, nB


def float_matmul_acc(a, b, *, fmt, order="naive", tile=None, outer_fmt=None, audit=None):
    """C = a @ b with every addition rounded to the float format ``fmt`` (module docstring).

    a: (M, K), b: (K, N) real arrays (float32 or float64 values; other real dtypes
    are converted to float64), no NaN or inf (ValueError). Products are computed
    in float64 (exact for float32 values) and rounded to fmt before being added.
    fmt, outer_fmt: FloatFormat (or a preset name such as "fp16", "bf16", "e5m2");
    outer_fmt None = fmt. order: "naive" | "pairwise" | "kahan". tile: k per block
    (positive int; None: one block over K; the last block may be shorter).
    audit: a FloatAccAudit whose counters are increased.
    Returns (M, N) float32 (when the outer format's values all fit float32) or
    float64, in the outer format's units (plain numbers, no scale).
    """
    a, b, fmt, outer, tile, M, K, N, odt, T, nB = _prepare(a, b, fmt, order, tile, outer_fmt,
                                                           audit)
    if nB == 0 or M == 0 or N == 0:
        return np.zeros((M, N), odt)
    out = np.empty((M, N), np.float64)
    cnt = np.zeros((M, _kf.NCOUNT), np.int64)
    mx = np.zeros((M, 2), np.float64)
    _kf.float_mm(a, b, T, _ORDER_CODE[order], _params(fmt), _params(outer), out, cnt, mx)
    if audit is not None:
        c = cnt.sum(axis=0)
        m = mx.max(axis=0)
        audit.add(FloatAccAudit(
            adds=M * N * _inner_adds(order, K, T, nB), swamped=int(c[0]), absorbed=int(c[1]),
            overflows=int(c[2]), max_abs=float(m[0]), prod_overflows=int(c[3]),
            outer_adds=M * N * nB, outer_swamped=int(c[4]), outer_absorbed=int(c[5]),
            outer_overflows=int(c[6]), outer_max_abs=float(m[1])))
    return out.astype(odt)


# ------------------------------------------------------------------ reference
class _RefFormat:
    """A format's rounding for the reference: FloatFormat.quantize on float64 arrays."""

    def __init__(self, fmt):
        self.fmt = fmt
        self.unbounded = replace(fmt, overflow="inf")   # overflow shows as inf / NaN

    def round(self, v):
        """(v rounded to the format, bool mask of rounded magnitudes above the max)."""
        r = self.fmt.quantize(v)
        over = ~np.isfinite(self.unbounded.quantize(v)) & ~np.isnan(v)
        return r, over

    def add(self, s, x, tally=None):
        """round(s + x) elementwise from the exact sum; tally: a dict of the audit counts
        (swamped, absorbed, overflows, max_abs) to increase, or None."""
        fmt = self.fmt
        with np.errstate(all="ignore"):
            hi = s + x
            z = hi - s
            lo = (s - (hi - z)) + (x - z)        # TwoSum: s + x == hi + lo exactly
            fin_hi = np.isfinite(hi)
            lo = np.where(fin_hi, lo, 0.0)
            ah = np.where(fin_hi, np.abs(hi), 0.0)
            E = np.maximum(np.frexp(ah)[1].astype(np.int64) - 1, fmt.emin)
            k = ah / np.ldexp(1.0, E - fmt.man_bits)
            tie = (lo != 0) & (k - np.floor(k) == 0.5)
            # a float64 sum on a tie of the format whose exact value is not: step it
            # one float64 ulp toward the exact value, which then rounds to that side
            hi_r = np.where(tie, np.nextafter(hi, np.copysign(np.inf, lo)), hi)
        r, over = self.round(hi_r)
        if tally is not None:
            fin = np.isfinite(s) & np.isfinite(x)
            tally["swamped"] += int(np.count_nonzero(fin & (over | (r != hi) | (lo != 0))))
            tally["absorbed"] += int(np.count_nonzero(fin & (r == s) & (x != 0)))
            tally["overflows"] += int(np.count_nonzero(fin & over))
            ar = np.abs(r[fin])
            ar = ar[~np.isnan(ar)]
            if ar.size:
                tally["max_abs"] = max(tally["max_abs"], float(ar.max()))
        return r


def _pairwise_ref(F, X, k0, k1, tally):
    n = k1 - k0
    if n == 1:
        return X[:, k0]
    h = 1 << ((n - 1).bit_length() - 1)
    left = _pairwise_ref(F, X, k0, k0 + h, tally)
    right = _pairwise_ref(F, X, k0 + h, k1, tally)
    return F.add(left, right, tally)


def float_matmul_acc_ref(a, b, *, fmt, order="naive", tile=None, outer_fmt=None, audit=None):
    """The plain reference of :func:`float_matmul_acc` (same arguments and result, bit
    for bit): a Python loop over k doing one rounded add at a time, vectorised only
    over the (M, N) independent output elements, every rounding through
    FloatFormat.quantize on float64 arrays. Slow: small shapes (tests) only."""
    a, b, fmt, outer, tile, M, K, N, odt, T, nB = _prepare(a, b, fmt, order, tile, outer_fmt,
                                                           audit)
    if nB == 0 or M == 0 or N == 0:
        return np.zeros((M, N), odt)
    Fi, Fo = _RefFormat(fmt), _RefFormat(outer)
    with np.errstate(over="ignore"):
        P = a[:, :, None] * b[None, :, :]                      # (M, K, N) float64 products
    X, pover = Fi.round(P)
    ti = dict(swamped=0, absorbed=0, overflows=0, max_abs=0.0)
    to = dict(ti)
    S = np.zeros((M, N))
    for k0 in range(0, K, T):
        k1 = min(K, k0 + T)
        if order == "pairwise":
            acc = _pairwise_ref(Fi, X, k0, k1, ti)
        elif order == "kahan":
            acc = np.zeros((M, N))
            c = np.zeros((M, N))
            for k in range(k0, k1):
                y = Fi.add(X[:, k], -c)
                t = Fi.add(acc, y, ti)
                c = Fi.add(Fi.add(t, -acc), -y)
                acc = t
        else:
            acc = np.zeros((M, N))
            for k in range(k0, k1):
                acc = Fi.add(acc, X[:, k], ti)
        S = Fo.add(S, Fo.round(acc)[0], to)
    if audit is not None:
        audit.add(FloatAccAudit(
            adds=M * N * _inner_adds(order, K, T, nB), swamped=ti["swamped"],
            absorbed=ti["absorbed"], overflows=ti["overflows"], max_abs=ti["max_abs"],
            prod_overflows=int(np.count_nonzero(pover)), outer_adds=M * N * nB,
            outer_swamped=to["swamped"], outer_absorbed=to["absorbed"],
            outer_overflows=to["overflows"], outer_max_abs=to["max_abs"]))
    return S.astype(odt)
