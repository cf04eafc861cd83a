"""Accumulator parts: where a matmul's products are summed, and what that loses.

- :class:`IntAccumulator`: a signed integer register of ``bits`` bits, reset
  every ``tile`` products along the reduction; what happens beyond its range is
  ``mode`` (clamp, saturate, wrap; intsim.kernels.intmm); tile sums are added
  exactly. Operands must be integers (an integer format).
- :class:`FloatAccumulator`: every addition rounded to a float ``format``
  (nearest-even, the format's overflow rule), in a fixed ``order`` (naive,
  pairwise, kahan), ``tile`` products at a time; tile sums added in
  ``outer_format`` (intsim.kernels.floatacc).
- :class:`ExactAccumulator`: the float32 BLAS product (the float baseline:
  float32 sums in BLAS's order; exact for integer operands whose partial sums
  stay below 2^24).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np

from intsim.cost.tally import OpCounts
from intsim.datapath.fields import FormatName, format_of
from intsim.datapath.parts.registry import Part, register_part
from intsim.formats import FloatFormat
from intsim.kernels import accumulator as _acc
from intsim.kernels import intmm
from intsim.kernels.floatacc import ORDERS, FloatAccAudit, float_matmul_acc

AccMode = Literal[_acc.ACC_MODES]
Order = Literal[ORDERS]


def tiles(K: int, tile) -> int:
    """Tiles of a reduction of K (tile None: one)."""
    if K <= 0:
        return 0
    return 1 if tile is None else -(-K // min(tile, K))


def _check_tile(tile, name="tile"):
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise ValueError(f"{name} must be a positive int or none, got {tile!r}")


@dataclass(frozen=True)
class Accumulator(Part):
    """Base of the accumulator parts."""

    slot = "accumulator"
    #: the operands must hold integers (an integer format on both sides)
    needs_integers = False


@register_part
@dataclass(frozen=True)
class IntAccumulator(Accumulator):
    """A ``bits``-bit signed integer accumulator over tiles of ``tile`` products.

    bits: 2..32, or None for no limit; tile: products per tile (None: one tile
    over the whole reduction); mode: "clamp" (each tile sum clipped to
    +-(2^(bits-1) - 1)), "saturate" (every addition saturates), "wrap" (two's
    complement overflow) or "wide" (no limit, whatever bits says).
    """

    bits: Optional[int] = 8
    tile: Optional[int] = 32
    mode: AccMode = "clamp"

    name = "int"
    needs_integers = True

    def __post_init__(self):
        super().__post_init__()
        _acc.check_acc_bits(self.bits, "accumulator bits")
        _check_tile(self.tile)

    @property
    def limit(self) -> Optional[int]:
        """Effective bits (None: no limit)."""
        return _acc.acc_limit(self.bits, self.mode)

    @property
    def kernel_mode(self) -> str:
        return self.mode if self.limit is not None else "wide"

    def add_counts(self, M: int, N: int, K: int, tile=None) -> OpCounts:
        """The adds of an (M, K) @ (K, N) product: one per product at this accumulator's
        width (32 bits without a limit), and one per tile after the first at 32 bits
        (the wide sum of the tile results). tile: overrides self.tile."""
        t = self.tile if tile is None else tile
        nT = tiles(K, t)
        inner = f"add:int{self.limit}" if self.limit is not None else "add:int32"
        return OpCounts().add(inner, M * N * K).add("add:int32", M * N * max(nT - 1, 0))

    def matmul(self, a, b, audit=None, a_max=None, b_max=None, tile=None):
        """a (..., M, K) @ b (K, N) or (..., K, N), integer values in float arrays, through
        the accumulator (tile: overrides self.tile); exact integers (float32/float64)."""
        t = self.tile if tile is None else tile
        return intmm.matmul_acc(a, b, acc_bits=self.limit, tile=t, mode=self.kernel_mode,
                                audit=audit, a_max=a_max, b_max=b_max)


@register_part
@dataclass(frozen=True)
class FloatAccumulator(Accumulator):
    """Every addition rounded to ``format`` (nearest-even), in ``order``.

    format: a float format name (fp16, bf16, e5m2, fp32, ...); tile: products
    summed in ``format`` before the tile sum joins the outer sum (None: one tile);
    outer_format: the format of the outer sum (None: ``format``); order:
    "naive" (one add after another), "pairwise" (a fixed tree) or "kahan"
    (compensated). Products are exact (float64) and rounded to ``format`` before
    they are added.
    """

    format: FormatName = "fp32"
    tile: Optional[int] = None
    outer_format: Optional[FormatName] = None
    order: Order = "naive"

    name = "float"

    def __post_init__(self):
        super().__post_init__()
        for f in ("format", "outer_format"):
            v = getattr(self, f)
            if v is None:
                continue
            if not isinstance(format_of(v), FloatFormat):
                raise ValueError(f"accumulator {f} must be a float format, got {v!r}")
        _check_tile(self.tile)

    def add_counts(self, M: int, N: int, K: int, tile=None) -> OpCounts:
        """The adds of an (M, K) @ (K, N) product in ``format``: per tile of t products,
        t (naive), t - 1 (pairwise) or 4 t (Kahan: the add and three compensation
        steps); one per tile after the first in ``outer_format``."""
        t = self.tile if tile is None else tile
        nT = tiles(K, t)
        per = {"naive": M * N * K, "pairwise": M * N * (K - nT), "kahan": 4 * M * N * K}
        outer = self.outer_format or self.format
        return (OpCounts().add(f"add:{self.format}", per[self.order])
                .add(f"add:{outer}", M * N * max(nT - 1, 0)))

    def matmul(self, a, b, audit=None, a_max=None, b_max=None, tile=None):
        """a (M, K) @ b (K, N), every add rounded;
        float32 result. ``audit`` (a pass audit) gains the accumulator's counts."""
        fmt = format_of(self.format)
        outer = None if self.outer_format is None else format_of(self.outer_format)
        t = self.tile if tile is None else tile
        sub = FloatAccAudit() if audit is not None else None
        out = float_matmul_acc(a, b, fmt=fmt, order=self.order, tile=t, outer_fmt=outer,
                               audit=sub)
        if audit is not None:
            audit.record_float_acc(sub)
        return np.asarray(out, dtype=np.float32)


@register_part
@dataclass(frozen=True)
class ExactAccumulator(Accumulator):
    """The float32 BLAS product (no accumulator simulated)."""

    name = "exact"

    def add_counts(self, M: int, N: int, K: int, tile=None) -> OpCounts:
        """One float32 add per product."""
        return OpCounts().add("add:fp32", M * N * K)

    def matmul(self, a, b, audit=None, a_max=None, b_max=None, tile=None):
        return np.matmul(a, b)
