"""Binary floating-point formats (FP8 E4M3/E5M2, FP16, bfloat16, lptorch's fp_format)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intsim.formats import _fast, _grid

SPECIALS = ("ieee", "fn", "none")
OVERFLOWS = ("saturate", "inf")


@dataclass(frozen=True)
class FloatFormat(_grid.Format):
    """A sign / exponent / mantissa binary float.

    exp_bits, man_bits: widths of the exponent and (explicit) mantissa fields.
    bias: exponent bias (None: 2^(exp_bits-1) - 1).
    subnormals: exponent code 0 holds the subnormals m 2^(1-bias-man_bits),
        m = 1 .. 2^man_bits - 1. False: exponent code 0 is only zero (flush to
        zero); values below the smallest normal round to 0 or to it.
    specials: which codes are not finite numbers.
        "ieee": the all-ones exponent is inf (mantissa 0) and NaN (E5M2, FP16, bf16);
        "fn":   only all-ones exponent and mantissa is NaN, no inf (OCP FP8 E4M3,
                "E4M3FN": max 448);
        "none": every code is a number (lptorch's fp_format).
    overflow: what a value whose rounded magnitude exceeds max_value becomes:
        "saturate" (+-max_value) or "inf" (+-inf if the format has inf, else NaN).
        Infinite inputs follow the same rule.
    name: a label (presets carry one).

    Quantization (intsim.formats._grid): |y| in the binade [2^E, 2^(E+1)),
    E >= emin = 1 - bias (smaller |y| take E = emin: the subnormal spacing),
    is rounded to a multiple of 2^(E - man_bits): nearest with ties to the
    even mantissa (IEEE round-half-even), or stochastically. The rounding is
    done with an unbounded exponent, then the overflow rule applies; so with
    "inf", values from max + ulp/2 up overflow (ties to even: E4M3's 464 goes
    to 448 because 480 has an odd mantissa; E5M2's 61440 and FP16's 65520
    overflow). Without subnormals, |y| < min_normal rounds to 0 or min_normal
    (nearest: ties to 0; stochastic: up with probability |y| / min_normal).
    """

    exp_bits: int
    man_bits: int
    bias: int | None = None
    subnormals: bool = True
    specials: str = "ieee"
    overflow: str = "saturate"
    name: str = ""

    def __post_init__(self):
        for f, lo, hi in (("exp_bits", 1, 11), ("man_bits", 0, 52)):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{f} must be an int in {lo}..{hi}, got {v!r}")
        if self.bias is None:
            object.__setattr__(self, "bias", (1 << (self.exp_bits - 1)) - 1)
        elif isinstance(self.bias, bool) or not isinstance(self.bias, int):
            raise ValueError(f"bias must be an int, got {self.bias!r}")
        if self.specials not in SPECIALS:
            raise ValueError(f"specials must be one of {SPECIALS}, got {self.specials!r}")
        if self.overflow not in OVERFLOWS:
            raise ValueError(f"overflow must be one of {OVERFLOWS}, got {self.overflow!r}")
        if self.specials == "fn" and self.man_bits < 1:
            raise ValueError('specials "fn" needs at least one mantissa bit')
        if self.specials == "ieee" and self.exp_bits < 2:
            raise ValueError('specials "ieee" needs at least two exponent bits')
        if not (self.emin - self.man_bits >= -1074 and self.emax <= 1023):
            raise ValueError("exponent range exceeds float64")

    # ----------------------------------------------------------- the numbers
    @property
    def emin(self) -> int:
        """Exponent of the smallest normal binade, 1 - bias."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite binade."""
        top = (1 << self.exp_bits) - 1
        return (top - 1 if self.specials == "ieee" else top) - self.bias

    @property
    def max_value(self) -> float:
        """Largest finite value."""
        mmax = (1 << self.man_bits) - (2 if self.specials == "fn" else 1)
        return float(np.ldexp(1.0 + mmax / (1 << self.man_bits), self.emax))

    @property
    def min_normal(self) -> float:
        return float(np.ldexp(1.0, self.emin))

    @property
    def min_positive(self) -> float:
        """Smallest positive value (the smallest subnormal, or min_normal without them)."""
        if self.subnormals and self.man_bits > 0:
            return float(np.ldexp(1.0, self.emin - self.man_bits))
        return self.min_normal

    @property
    def has_inf(self) -> bool:
        return self.specials == "ieee"

    @property
    def total_bits(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    def decode(self, codes) -> np.ndarray:
        """Values of bit patterns (sign | exponent | mantissa, integers in
        0 .. 2^total_bits - 1), float64; inf and NaN as the specials say, and the
        subnormal codes as 0 without subnormals. The reference the tests
        compare quantize against."""
        c = np.asarray(codes, dtype=np.int64)
        m_mask = (1 << self.man_bits) - 1
        e_all = (1 << self.exp_bits) - 1
        sign = np.where((c >> (self.exp_bits + self.man_bits)) & 1, -1.0, 1.0)
        e = (c >> self.man_bits) & e_all
        m = (c & m_mask).astype(np.float64)
        frac = m / (1 << self.man_bits)
        sub = np.ldexp(frac, self.emin) if self.subnormals else np.zeros_like(frac)
        val = np.where(e == 0, sub, np.ldexp(1.0 + frac, (e - self.bias).astype(np.int64)))
        if self.specials == "ieee":
            val = np.where(e == e_all, np.where(m == 0, np.inf, np.nan), val)
        elif self.specials == "fn":
            val = np.where((e == e_all) & (m == m_mask), np.nan, val)
        return sign * val

    def values(self) -> np.ndarray:
        """Every finite representable value, sorted ascending (float64; one zero)."""
        v = self.decode(np.arange(1 << self.total_bits, dtype=np.int64))
        v = v[np.isfinite(v)]
        return np.unique(v + 0.0)    # + 0.0 turns -0.0 into 0.0

    # ------------------------------------------------------------ quantizing
    def _quantize(self, x, rounding, rng, scale, want_stats):
        _grid.check_rounding(rounding, rng)
        x64, out = _grid.as_input(x)
        y, s = _grid.scaled(x64, scale)
        u = _grid.uniforms(rounding, rng, y.shape)
        if self.overflow == "saturate":
            ov = self.max_value
        else:
            ov = np.inf if self.has_inf else np.nan
        if _grid.FAST and not _grid.is_part(rounding):
            return _grid.run_fast(_fast.quantize, y, u, None, rounding, s, out, want_stats,
                                  _fast._NO_STEPS, int(self.emin), int(self.man_bits),
                                  bool(self.subnormals), float(self.min_normal),
                                  float(self.max_value), float(ov))
        with np.errstate(invalid="ignore", over="ignore"):
            a = np.abs(y)
            fin = np.isfinite(a)            # inf and NaN: qmag inf (finish handles NaN)
            af = np.where(fin, a, 0.0)
            E = np.maximum(_grid.binade(af), self.emin)
            step = np.ldexp(1.0, E - self.man_bits)
            qmag = _grid.round_grid(af, step, rounding, u)
            if not self.subnormals:
                mn = self.min_normal
                small = af < mn
                if rounding == "nearest":
                    up = af > mn / 2
                else:
                    up = u < af / mn
                qmag = np.where(small, np.where(up, mn, 0.0), qmag)
            qmag = np.where(fin, qmag, np.inf)
        return _grid.finish(y, qmag, self.max_value, ov, s, out, want_stats)

    def __str__(self):
        return self.name or f"FloatFormat(e{self.exp_bits}m{self.man_bits}, bias {self.bias})"
