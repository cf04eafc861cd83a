"""Integer number formats: the grid every max-scaled integer quantizer uses."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intsim.formats import _grid


@dataclass(frozen=True)
class IntFormat(_grid.Format):
    """A ``bits``-bit integer format.

    signed and symmetric (the default, intsim's quantizers): -(2^(b-1)-1) ..
    2^(b-1)-1; signed, not symmetric: two's complement -2^(b-1) .. 2^(b-1)-1;
    unsigned: 0 .. 2^b - 1. Quantization (see intsim.formats._grid): y = x /
    scale, rounded to an integer (nearest: half to even; stochastic: up with
    probability frac(y)), then clamped to the range (always saturating).
    Values flushed to zero are nonzero inputs that round to 0; saturated ones
    are those whose rounded value left the range.

    With scale = clip * max|x| / qmax this is intsim.kernels.quant's
    quantizer (for float64 input bit for bit, see tests/test_formats.py).
    """

    bits: int
    signed: bool = True
    symmetric: bool = True

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 1 <= self.bits <= 32:
            raise ValueError(f"bits must be an int in 1..32, got {self.bits!r}")
        if self.signed and self.symmetric and self.bits < 2:
            raise ValueError("a symmetric signed format needs at least 2 bits")

    @property
    def qmin(self) -> int:
        """Smallest value (an int)."""
        if not self.signed:
            return 0
        return -(1 << (self.bits - 1)) + (1 if self.symmetric else 0)

    @property
    def qmax(self) -> int:
        """Largest value (an int)."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def max_value(self) -> float:
        return float(self.qmax)

    @property
    def min_positive(self) -> float:
        """Smallest positive value (1)."""
        return 1.0

    def values(self) -> np.ndarray:
        """Every representable value, sorted ascending (float64, qmax - qmin + 1 of them)."""
        return np.arange(self.qmin, self.qmax + 1, dtype=np.float64)

    def _quantize(self, x, rounding, rng, scale, want_stats):
        _grid.check_rounding(rounding, rng)
        x64, out = _grid.as_input(x)
        y, s = _grid.scaled(x64, scale)
        u = _grid.uniforms(rounding, rng, y.shape)
        with np.errstate(invalid="ignore"):
            # the magnitude is rounded, so stochastic rounding is unbiased in both
            # signs (y = -2.3 goes to -3 with probability 0.3)
            r = np.sign(y) * _grid.round_grid(np.abs(y), 1.0, rounding,
                                              None if u is None else u)
        nan = np.isnan(y)
        over = (r > self.qmax) | (r < self.qmin)
        q = np.where(nan, np.nan, np.clip(r, self.qmin, self.qmax))
        stats = None
        if want_stats:
            fin = np.isfinite(y)
            ay = np.abs(y[fin])
            stats = _grid.QuantStats(count=int(fin.sum()),
                                     flushed=int(np.count_nonzero((y != 0) & (q == 0) & ~nan
                                                                   & ~over)),
                                     saturated=int(np.count_nonzero(over & ~nan)),
                                     max_abs=float(ay.max()) if ay.size else 0.0)
        if s is not None:
            q = q * s
        return q.astype(out, copy=False), stats, over & ~nan
