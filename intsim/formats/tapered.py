"""Tapered floats: the mantissa width depends on the exponent (lptorch's custom_fp_format).

The format the paper's FP134 baseline uses (QuantizedCIL quant.py,
set_lptorch_quant) is lptorch's ``custom_fp_format`` with the digit string
'555555543210': one digit per binade, from the top binade down, giving the
number of mantissa bits of that binade counting the implicit leading one.
How lptorch's custom_fp_quantize kernel interprets it, in intsim's words
(at scale 2^0; lptorch's integer ``scale`` s multiplies everything by 2^s):

- binade d = 0, 1, ..., n-1 covers |y| in [2^-d, 2^(1-d)); with w = man[d]
  its values are k 2^(1-d-w), k = 2^(w-1) .. 2^w (w - 1 explicit fraction
  bits). '5' is 4 fraction bits, '1' one value per binade (a power of two),
  '0' only the binade's top edge 2^(1-d) (and 0 below it);
- below the last binade the spacing of the last binade continues down to 0
  (subnormal-like): |y| < 2^(1-n) rounds to a multiple of 2^(2-n-man[n-1]);
- the max is 2 - 2^(1-man[0]) (top binade, all mantissa bits set); larger
  values saturate there (lptorch clamps, it has no inf).

So '555555543210' is a 1-3-4 float (sign, 3 exponent bits, 4 fraction
bits) with subnormals: seven binades with 4 fraction bits, then the
subnormal binades with 3, 2, 1 and 0 fraction bits, and the '0' binade that
only rounds to 0 or to the smallest subnormal 2^-10. '11111110' (the
released code's fp130_4) is a 1-3-0 logarithmic format.

Rounding: nearest rounds k to the nearest integer with ties to even (CUDA's
rintf; so the '0' binade's bottom edge 2^(1-n), the midpoint between 0 and
2^(2-n), goes to 0), stochastic
rounds k up with probability frac(k). As in lptorch, the rounding happens in
the binade of the input. A '0' is accepted only as the last digit: in the
middle, lptorch's rintf(0.5) = 0 would send that binade's bottom edge to 0
although a binade below represents it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intsim.formats import _fast, _grid


@dataclass(frozen=True)
class TaperedFormat(_grid.Format):
    """A tapered float: ``man[d]`` mantissa bits (implicit one included) in binade
    [2^-d, 2^(1-d)), d = 0 .. len(man)-1, saturating at 2 - 2^(1-man[0]).

    Build one from lptorch's digit string with :meth:`from_string`
    ('555555543210'). A scale 2^s (quantize's ``scale``) puts the top binade at
    [2^s, 2^(s+1)), which is lptorch's integer scale s.
    """

    man: tuple
    name: str = ""

    def __post_init__(self):
        man = tuple(self.man)
        if not man:
            raise ValueError("man needs at least one binade")
        for w in man:
            if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or not 0 <= int(w) <= 24:
                raise ValueError(f"mantissa widths must be ints in 0..24, got {man!r}")
        man = tuple(int(w) for w in man)
        if man[0] < 1:
            raise ValueError("the top binade needs at least one mantissa bit")
        if any(w == 0 for w in man[:-1]):
            raise ValueError(f"a 0 mantissa width is only allowed in the last binade, got {man!r}")
        object.__setattr__(self, "man", man)

    @classmethod
    def from_string(cls, digits: str, name: str = "") -> "TaperedFormat":
        """lptorch's custom_fp_format digit string, e.g. '555555543210'."""
        if not isinstance(digits, str) or not digits.isdigit():
            raise ValueError(f"a tapered format is a string of digits, got {digits!r}")
        return cls(tuple(int(c) for c in digits), name=name or digits)

    @property
    def binades(self) -> int:
        return len(self.man)

    @property
    def steps(self) -> np.ndarray:
        """Spacing 2^(1-d-man[d]) of the values in binade d (float64, (n,))."""
        d = np.arange(self.binades)
        return np.ldexp(1.0, 1 - d - np.asarray(self.man))

    @property
    def max_value(self) -> float:
        return float(2.0 - np.ldexp(1.0, 1 - self.man[0]))

    @property
    def min_positive(self) -> float:
        """Smallest positive value: the last binade's spacing (its top edge for a '0')."""
        return float(np.ldexp(1.0, 2 - self.binades - self.man[-1]))

    def values(self) -> np.ndarray:
        """Every representable value, sorted ascending (float64, one zero)."""
        pos = [np.zeros(1)]
        n = self.binades
        for d, w in enumerate(self.man):
            if w >= 1:
                k = np.arange(1 << (w - 1), 1 << w, dtype=np.float64)
                pos.append(np.ldexp(k, 1 - d - w))
        w = self.man[-1]
        if w >= 2:       # below the last binade: its spacing down to 0
            k = np.arange(1, 1 << (w - 1), dtype=np.float64)
            pos.append(np.ldexp(k, 2 - n - w))
        p = np.unique(np.concatenate(pos))
        return np.concatenate([-p[::-1][:-1], p])

    def quantize_detail(self, x, rounding="nearest", rng=None, scale=None, toward=None):
        """(q, QuantStats, over): quantize_stats plus the bool mask (x's shape) of the
        values whose rounded magnitude exceeded the max before saturating.

        toward: an array like x of previous values: round each x toward its
        previous value instead (lptorch's custom_fp_hysteresis: the mantissa is
        rounded up (ceil of the signed value) where toward > x and down (floor)
        elsewhere, so a weight changes only when its master value moves past a
        whole step); rounding and rng are then not used.
        """
        return self._quantize(x, rounding, rng, scale, True, toward)

    def _quantize(self, x, rounding, rng, scale, want_stats, toward=None):
        if toward is None:
            _grid.check_rounding(rounding, rng)
        x64, out = _grid.as_input(x)
        y, s = _grid.scaled(x64, scale)
        up = None
        if toward is not None:
            t64 = np.asarray(toward, dtype=np.float64)
            if t64.shape != x64.shape:
                raise ValueError(f"toward has shape {t64.shape}, x {x64.shape}")
            rounding = "directed"
            up = (t64 > x64) == (y >= 0)     # ceil of the signed value = larger magnitude if y >= 0
        u = _grid.uniforms(rounding, rng, y.shape)
        if _grid.FAST and not _grid.is_part(rounding):
            mv = float(self.max_value)
            return _grid.run_fast(_fast.quantize, y, u, up, rounding, s, out, want_stats,
                                  np.asarray(self.steps, np.float64), 0, 0, True, 0.0, mv, mv)
        with np.errstate(invalid="ignore", over="ignore"):
            a = np.abs(y)
            fin = np.isfinite(a)
            af = np.where(fin, a, 0.0)
            d = np.clip(-_grid.binade(af), 0, self.binades - 1)   # above the top: d = 0
            qmag = _grid.round_grid(af, self.steps[d], rounding, u, up)
            qmag = np.where(fin, qmag, np.inf)
        return _grid.finish(y, qmag, self.max_value, self.max_value, s, out, want_stats)

    def __str__(self):
        return self.name or "".join(str(w) for w in self.man)
