"""OCP MX block formats (OCP Microscaling Formats (MX) Specification v1.0).

An MX block is k = 32 elements P_i of a narrow element format sharing one
scale X = 2^e stored as E8M0 (an 8-bit exponent, bias 127: e in -127..127,
code 0xFF is NaN; no zero, no inf). The value of element i is X * P_i.

| name | element | element max | emax_elem | smallest positive element |
|---|---|---|---|---|
| MXFP8_E4M3 | FP8 E4M3 (OCP, no inf, NaN S.1111.111) | 448 | 8 | 2^-9 |
| MXFP8_E5M2 | FP8 E5M2 (IEEE-style inf/NaN) | 57344 | 15 | 2^-16 |
| MXFP6_E3M2 | FP6 E3M2 (no inf/NaN) | 28 | 4 | 2^-4 |
| MXFP6_E2M3 | FP6 E2M3 (no inf/NaN) | 7.5 | 2 | 2^-3 |
| MXFP4_E2M1 | FP4 E2M1 (no inf/NaN) | 6 | 2 | 2^-1 |
| MXINT8 | int8 with an implicit scale 2^-6: k / 64, k in -127..127 | 127/64 | 0 | 2^-6 |

Conversion (the spec's section 6.3, "Conversion from vector of FP32 to MX"),
per block of ``block_size`` consecutive elements along ``axis``:

    shared_exp = floor(log2(max_i |V_i|)) - emax_elem
    X = 2^shared_exp
    P_i = V_i / X rounded to the element format, saturating

- emax_elem is the exponent of the element format's largest normal value
  (floor(log2(element max)), the table above).
- The exponent is clamped to E8M0's range [-127, 127]. A block of zeros has
  no log2: it gets -127 (the smallest scale; its elements are zeros of the
  input's signs). Clamping below (tiny blocks, e.g. float32 subnormals)
  shrinks the elements, which may then round to 0 (counted as flushed);
  clamping above can only happen for float64 inputs beyond float32's range
  (then the elements saturate; for float32 inputs the exponent is at most
  127 - emax_elem; the MX reference code, microsoft/microxcaling, makes
  such a scale NaN instead).
- A block containing NaN or +-inf gets the NaN scale (E8M0 code 0xFF; the
  exponent array of :meth:`MXFormat.encode` holds 128 there, i.e. code - 127):
  max |V_i| is NaN or inf, floor(log2) of it is not a number E8M0 can hold,
  and E8M0 has no inf. Every value of such a block is NaN (the spec: a NaN
  scale makes every value of its block NaN, whatever the elements hold), as
  in the MX reference code (microsoft/microxcaling).
- V_i / X is exact (a division by a power of two, in float64). It is rounded
  as the element's FloatFormat / IntFormat rounds (intsim.formats._grid):
  nearest with ties to the even mantissa (ties to the even integer for
  MXINT8), or stochastically (one float64 uniform per element of x, in x's
  C order, drawn from the Generator passed in, whatever the data). A
  magnitude that rounds above the element max becomes +-max (the spec's
  conversion clamps normal numbers to the element's largest value, keeping
  the sign).
  Since the largest |V_i / X| lies in [2^emax_elem, 2^(emax_elem+1)), only
  elements in that top binade can saturate (E2M1: 7 <= |V_i / X| < 8, which
  rounds to 8; MXINT8: k rounding to 128).
- A ragged last block (the axis length not a multiple of block_size) is a
  shorter block: its scale comes from its own elements only, as if it were
  padded with zeros.
- MXINT8: the spec's element is an 8-bit two's complement integer with an
  implicit scale 2^-6, whose code 0x80 is -2. This conversion uses the
  symmetric range k / 64, k in -127..127 (saturating at +-127/64 in both
  signs; as the MX reference code): -2 is never produced. Its zero is +0
  (an integer has no -0), while the float elements keep the sign of zero.

The result X * P_i is exact in float64 and, for float32 inputs, in float32
(its binade is at most that of the block's max, its smallest magnitude
2^-143 is a float32 subnormal).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intsim.formats import _grid
from intsim.formats.floating import FloatFormat
from intsim.formats.integer import IntFormat

#: E8M0's exponent range and the exponent that stands for its NaN code 0xFF
SCALE_EMIN, SCALE_EMAX, SCALE_NAN = -127, 127, 128


def _check_axis(axis, ndim):
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"axis must be an int, got {axis!r}")
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ValueError(f"axis {axis} is out of range for an array of {ndim} dims")
    return int(axis) % max(ndim, 1)


@dataclass(frozen=True)
class MXFormat(_grid.Format):
    """An OCP MX block format: ``element`` values sharing one E8M0 scale per block.

    element: the element format, a FloatFormat (saturating) or an IntFormat.
    element_exp: the element's implicit scale exponent: an element's value is
        its format's value times 2^element_exp (MXINT8: IntFormat(8), -6).
    block_size: elements per block along the quantized axis (the spec: 32).
    name: a label (the presets carry one).

    The conversion rule (shared exponent, NaN/inf, zeros, ragged blocks) is
    in the module docstring. ``quantize(x, axis=...)`` returns X * P_i in x's
    float dtype; ``encode`` returns the elements and the block exponents.
    ``max_value`` is element max * 2^127, ``min_positive`` the smallest
    positive element * 2^-127; ``values()`` are the element values (an MX
    value is one of them times its block's 2^e).
    """

    element: FloatFormat | IntFormat
    element_exp: int = 0
    block_size: int = 32
    name: str = ""

    def __post_init__(self):
        if not isinstance(self.element, (FloatFormat, IntFormat)):
            raise ValueError(f"element must be a FloatFormat or IntFormat, got {self.element!r}")
        if isinstance(self.element, FloatFormat) and self.element.overflow != "saturate":
            raise ValueError("an MX float element must saturate (overflow='saturate')")
        if isinstance(self.element, IntFormat) and not self.element.signed:
            raise ValueError("an MX integer element must be signed")
        for f, lo, hi in (("element_exp", -64, 64), ("block_size", 1, 1 << 20)):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{f} must be an int in {lo}..{hi}, got {v!r}")

    # ----------------------------------------------------------- the numbers
    @property
    def element_max(self) -> float:
        """Largest element value (448 for E4M3, 127/64 for MXINT8)."""
        return float(np.ldexp(self.element.max_value, self.element_exp))

    @property
    def emax_elem(self) -> int:
        """Exponent of the element format's largest normal value, floor(log2(element_max))."""
        return int(np.frexp(self.element_max)[1]) - 1

    @property
    def max_value(self) -> float:
        """Largest value: element max * 2^127."""
        return float(np.ldexp(self.element_max, SCALE_EMAX))

    @property
    def min_positive(self) -> float:
        """Smallest positive value: the smallest positive element * 2^-127."""
        return float(np.ldexp(self.element.min_positive, self.element_exp + SCALE_EMIN))

    def values(self) -> np.ndarray:
        """Every element value, sorted ascending (float64, one zero): the grid x / X is
        rounded to. Not every value of the format: that is one of these times 2^e,
        e in -127..127, with e set per block."""
        return np.ldexp(self.element.values(), self.element_exp)

    # ------------------------------------------------------------ quantizing
    def quantize(self, x, rounding="nearest", rng=None, scale=None, *, axis=-1):
        """x (any shape) -> X * P, the MX conversion of x in blocks of block_size along
        ``axis`` (keyword only), in x's float dtype (float64 for other dtypes).
        rounding "nearest" (ties to even) or "stochastic" (rng: a np.random.Generator,
        one uniform per element). scale must be None: MX computes its own scales."""
        return self._run(x, axis, rounding, rng, scale, False)[0]

    def quantize_stats(self, x, rounding="nearest", rng=None, scale=None, *, axis=-1):
        """(quantize(...), QuantStats): count = finite inputs; flushed = nonzero finite
        inputs whose element became 0; saturated = elements whose rounded |x / X|
        exceeded the element max, plus the infinite inputs; max_abs = the largest
        |x / X| (element units) over the blocks with a finite scale. The finite
        values of a NaN-scale block become NaN and count only in count."""
        return self._run(x, axis, rounding, rng, scale, True)[:2]

    def encode(self, x, axis=-1, rounding="nearest", rng=None):
        """(elements, exponents) of the MX conversion of x along axis.

        elements: float64, x's shape: the element values P (NaN in a NaN-scale
        block). exponents: int64, x's shape with ``axis`` of length
        ceil(n / block_size) (block j covers indices j*block_size .. along axis):
        the shared exponent e of each block (X = 2^e), -127..127, or 128 for the
        NaN scale (E8M0 code e + 127 = 0xFF). x = 0-d is one block of one."""
        _, _, elems, exps = self._run(x, axis, rounding, rng, None, False)
        return elems, exps

    def decode(self, elements, exponents, axis=-1, dtype=np.float64):
        """X * P from encode()'s (elements, exponents) (NaN where the exponent is 128)."""
        p = np.asarray(elements, dtype=np.float64)
        e = np.asarray(exponents, dtype=np.int64)
        if p.ndim == 0:
            return np.asarray(self.decode(p.reshape(1), e.reshape(1), 0, dtype)[0])
        ax = _check_axis(axis, p.ndim)
        n = p.shape[ax]
        ef = np.moveaxis(np.repeat(np.moveaxis(e, ax, -1), self.block_size, axis=-1)[..., :n],
                         -1, ax)
        v = np.where(ef == SCALE_NAN, np.nan, np.ldexp(p, np.clip(ef, SCALE_EMIN, SCALE_EMAX)))
        return v.astype(dtype, copy=False)

    def _quantize(self, x, rounding, rng, scale, want_stats, axis=-1):
        """The _grid.Format hook: (values, QuantStats or None, saturated mask)."""
        q, st, _, _, over = self._run(x, axis, rounding, rng, scale, want_stats, True)
        return q, st, over

    def _block_exponents(self, a, ax):
        """Shared exponent of each block of |x| (float64, ax normalised), moved to the
        last axis: int64 (..., nblocks), SCALE_NAN for a NaN or inf block."""
        am = np.moveaxis(a, ax, -1)
        n = am.shape[-1]
        if n == 0:
            return np.zeros(am.shape, np.int64)
        amax = np.maximum.reduceat(am, np.arange(0, n, self.block_size), axis=-1)
        fin = np.isfinite(amax)              # NaN propagates through maximum; inf: not finite
        pos = fin & (amax > 0)
        e = np.where(pos, _grid.binade(np.where(pos, amax, 1.0)) - self.emax_elem, SCALE_EMIN)
        e = np.clip(e, SCALE_EMIN, SCALE_EMAX)
        return np.where(fin, e, SCALE_NAN).astype(np.int64)

    def _run(self, x, axis, rounding, rng, scale, want_stats, want_over=False):
        """(values in x's dtype, QuantStats or None, elements, exponents[, over])."""
        if scale is not None:
            raise ValueError(f"{self}: MX formats compute their own per-block scales; "
                             "scale must be None")
        _grid.check_rounding(rounding, rng)
        x64, out = _grid.as_input(x)
        shape = x64.shape
        if x64.ndim == 0:
            x64 = x64.reshape(1)
        ax = _check_axis(axis, x64.ndim)
        n = x64.shape[ax]
        eb = self._block_exponents(np.abs(x64), ax)                        # (..., nb)
        ef = np.moveaxis(np.repeat(eb, self.block_size, axis=-1)[..., :n], -1, ax)
        nanblk = ef == SCALE_NAN
        e_el = np.clip(ef, SCALE_EMIN, SCALE_EMAX) + self.element_exp
        y = np.where(nanblk, np.nan, np.ldexp(x64, -e_el))     # x / X in the element format's units
        # the element's own rounding (nearest-even or stochastic, saturating); one
        # uniform per element of y, which has x's shape and order
        qe, _, over = self.element._quantize(y, rounding, rng, None, False)
        if isinstance(self.element, IntFormat):
            qe = qe + 0.0                    # two's complement has no -0: -0.0 -> 0.0
        elems = np.ldexp(qe, self.element_exp)
        q = np.ldexp(qe, e_el).astype(out, copy=False)                     # NaN stays NaN
        stats = None
        if want_stats:
            fin = np.isfinite(x64)
            ok = fin & ~nanblk
            ay = np.abs(y[ok])
            stats = _grid.QuantStats(
                count=int(fin.sum()),
                flushed=int(np.count_nonzero(ok & (x64 != 0) & (qe == 0))),
                saturated=int(np.count_nonzero(over & ok)) + int(np.count_nonzero(np.isinf(x64))),
                max_abs=float(np.ldexp(ay.max(), self.element_exp)) if ay.size else 0.0)
        exps = np.moveaxis(eb, -1, ax)
        over = over & ~nanblk
        if len(shape) == 0:                  # 0-d x: one block of one
            q, elems, over = q.reshape(()), elems.reshape(()), over.reshape(())
        res = (q, stats, elems, exps)
        return res + (over,) if want_over else res

    def __str__(self):
        return self.name or f"MXFormat({self.element}, 2^{self.element_exp}, k={self.block_size})"


#: the spec's element formats
E4M3_ELEM = FloatFormat(4, 3, specials="fn", overflow="saturate", name="E4M3")
E5M2_ELEM = FloatFormat(5, 2, specials="ieee", overflow="saturate", name="E5M2")
E3M2_ELEM = FloatFormat(3, 2, specials="none", overflow="saturate", name="E3M2")
E2M3_ELEM = FloatFormat(2, 3, specials="none", overflow="saturate", name="E2M3")
E2M1_ELEM = FloatFormat(2, 1, specials="none", overflow="saturate", name="E2M1")
INT8_ELEM = IntFormat(8, signed=True, symmetric=True)

MXFP8_E4M3 = MXFormat(E4M3_ELEM, name="MXFP8_E4M3")
MXFP8_E5M2 = MXFormat(E5M2_ELEM, name="MXFP8_E5M2")
MXFP6_E3M2 = MXFormat(E3M2_ELEM, name="MXFP6_E3M2")
MXFP6_E2M3 = MXFormat(E2M3_ELEM, name="MXFP6_E2M3")
MXFP4_E2M1 = MXFormat(E2M1_ELEM, name="MXFP4_E2M1")
MXINT8 = MXFormat(INT8_ELEM, element_exp=-6, name="MXINT8")

MX_FORMATS = (MXFP8_E4M3, MXFP8_E5M2, MXFP6_E3M2, MXFP6_E2M3, MXFP4_E2M1, MXINT8)
