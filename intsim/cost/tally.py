"""Operation counts: the op classes and the shared counting rules.

An :class:`OpCounts` maps an op class to how many times it ran:

- ``mul:<a>*<b>``: multiplies of an operand in format a by one in format b
  (format names as intsim.datapath.fields.format_of takes them: ``int4``,
  ``e4m3``, ``fp32``, ``mxfp4_e2m1``; ``log4`` for LUQ's logarithmic gradient);
- ``add:<fmt>``: additions in an accumulator of that format (one per product,
  as a MAC; tile sums join the outer sum with one add per tile after the first);
- ``had:<fmt>``: additions of a Hadamard transform (n log2 b for a vector of n
  in blocks of b);
- ``quant:absmax`` (one comparison per element of a max reduction),
  ``quant:scale`` (one multiply by the scale per element), ``quant:round`` (one
  rounding per element), ``rng:bits`` (random bits: 32 per uniform, the
  Generator's draw for one stochastic rounding);
- ``opt:update``: parameter elements an optimizer step updated;
- ``mem:read`` / ``mem:write``: bytes of the operands a product reads and of
  the float32 result it writes, at their stored widths.

Counts come from the shapes a layer saw and the datapath's settings, never from
inside the kernels (intsim.cost.counts).
"""
from __future__ import annotations

import math
from collections import Counter

#: random bits drawn for one stochastic rounding (a float32 uniform from a 32-bit draw)
RNG_BITS_PER_DRAW = 32
#: bytes of a float32 result
F32_BYTES = 4


class OpCounts(Counter):
    """{op class: count}; adds like a Counter (``a + b``, ``a.scaled(n)``)."""

    def add(self, op: str, n) -> "OpCounts":
        n = int(n)
        if n:
            self[op] += n
        return self

    def scaled(self, n: int) -> "OpCounts":
        return OpCounts({k: v * int(n) for k, v in self.items()})

    def plain(self) -> dict:
        return {k: int(v) for k, v in sorted(self.items()) if v}


def format_bits(name: str | None) -> int:
    """Stored bits of one value of a format name (None: float32); an MX element's bits."""
    if name is None:
        return 32
    if name.startswith("log") and name[3:].isdigit():
        return int(name[3:])
    from intsim.datapath.fields import format_of
    fmt = format_of(name)
    el = getattr(fmt, "element", fmt)
    for attr in ("bits", "total_bits"):
        v = getattr(el, attr, None)
        if isinstance(v, int):
            return v
    return 8        # lptorch's tapered formats are 8-bit codes


def quantizer(c: OpCounts, elements: int, items: int = 1, draws: bool = False,
              max_reduction: bool = True) -> OpCounts:
    """A max-scaled quantizer of ``elements`` values in ``items`` groups with their own
    scale: one comparison (max reduction), one scale multiply and one rounding per
    element, 32 random bits per element when the rounding draws."""
    if max_reduction:
        c.add("quant:absmax", elements)
    c.add("quant:scale", elements)
    c.add("quant:round", elements)
    if draws:
        c.add("rng:bits", RNG_BITS_PER_DRAW * elements)
    return c


def product(c: OpCounts, M: int, K: int, N: int, fa: str, fb: str, adds: OpCounts,
            bits_a: int | None = None, bits_b: int | None = None) -> OpCounts:
    """An (M, K) @ (K, N) product of formats fa, fb: M K N multiplies, the accumulator's
    adds, and the memory traffic (both operands read once at their widths, the float32
    result written once)."""
    c.add(f"mul:{fa}*{fb}", M * K * N)
    c.update(adds)
    ba = format_bits(fa) if bits_a is None else bits_a
    bb = format_bits(fb) if bits_b is None else bits_b
    c.add("mem:read", math.ceil(M * K * ba / 8) + math.ceil(K * N * bb / 8))
    c.add("mem:write", M * N * F32_BYTES)
    return c


def log2_int(n: int) -> int:
    return int(n).bit_length() - 1
