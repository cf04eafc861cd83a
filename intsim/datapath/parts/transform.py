"""Transform parts: what a backward operand goes through before it is quantized.

A transform acts along one axis of a tensor; the datapaths apply it to both
operands of a product so that it cancels (orthogonal, up to the factor
``norm``): ``(g H)(H^T x) = n (g x)`` for a Hadamard block of size n.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from intsim.cost.tally import OpCounts, log2_int
from intsim.datapath.parts.registry import Part, register_part
from intsim.kernels import hadamard


@dataclass(frozen=True)
class Transform(Part):
    """Base of the transform parts. ``block(n)``: the block size used on an axis of
    length n (1: the transform does nothing there)."""

    slot = "transform"

    def block(self, n: int) -> int:
        raise NotImplementedError

    def apply(self, t, axis):
        """t transformed along ``axis`` (unnormalised; the caller divides the product
        by block(n))."""
        raise NotImplementedError

    def fused_plan(self, shape, axis):
        """(block, top_first) when intsim.kernels.quant.hadamard_quantize_items computes
        this transform of an array of ``shape`` along ``axis`` bit for bit (top_first:
        its butterfly stage order); None when only ``apply`` does."""
        return None

    def add_counts(self, n: int, vectors: int, fmt: str = "fp32") -> OpCounts:
        """The additions of transforming ``vectors`` vectors of length n, in ``fmt``: a
        block of b takes b log2 b adds, so a vector n log2 block(n)."""
        b = self.block(n)
        return OpCounts().add(f"had:{fmt}", vectors * n * log2_int(b) if b > 1 else 0)


@register_part
@dataclass(frozen=True)
class Identity(Transform):
    """No transform."""

    name = "none"

    def block(self, n: int) -> int:
        return 1

    def apply(self, t, axis):
        return t

    def fused_plan(self, shape, axis):
        return 1, False


@register_part
@dataclass(frozen=True)
class BlockHadamard(Transform):
    """Block-diagonal Walsh-Hadamard transform (unnormalised Sylvester blocks).

    size: the largest block size, a power of two; an axis takes the largest
    power of two that divides its length and is at most ``size``. None: the
    largest power of two dividing the length (the released HDQT code's choice).
    """

    size: Optional[int] = None
    name = "hadamard"

    def __post_init__(self):
        super().__post_init__()
        if self.size is not None:
            s = self.size
            if isinstance(s, bool) or not isinstance(s, int) or s < 1 or s & (s - 1):
                raise ValueError(f"hadamard size must be a power of two, got {s!r}")

    def block(self, n: int) -> int:
        if self.size is None:
            return hadamard.bp2(n)
        return min(self.size, hadamard.bp2(n))

    def fused_plan(self, shape, axis):
        n = shape[axis]
        b = self.block(n)
        if b > 1 and (self.size is None or b == hadamard.bp2(n)):
            return b, hadamard.top_stage_first(shape, axis)
        return b, False         # the capped blocks run as a last axis of their own (apply)

    def apply(self, t, axis):
        n = t.shape[axis]
        b = self.block(n)
        if b == 1:
            return t
        if self.size is None or b == hadamard.bp2(n):
            return hadamard.fwht(t, axis=axis)
        # blocks smaller than the largest power of two dividing n: a block axis of its own
        t2 = np.moveaxis(np.asarray(t), axis, -1)
        shp = t2.shape
        r = hadamard.fwht(t2.reshape(shp[:-1] + (n // b, b)), axis=-1).reshape(shp)
        return np.ascontiguousarray(np.moveaxis(r, -1, axis))
