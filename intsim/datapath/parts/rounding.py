"""Rounding parts: how a value between two grid points picks one.

A rounding maps magnitudes in grid units, ``k = |y| / step >= 0`` (float64),
to integers ``k'`` (float64 holding integers). The quantizers of every format
(intsim.formats) round through this one interface; the built-in roundings
also name the fused Numba kernels that implement them (``kernel``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intsim.datapath.parts.registry import Part, register_part


@dataclass(frozen=True)
class Rounding(Part):
    """Base of the rounding parts.

    ``draws``: the rounding takes one uniform in [0, 1) per value from the
    layer's Generator. ``kernel``: the name the fused quantizer kernels know
    ("nearest" or "stochastic"); None for a rounding only the NumPy path runs.
    """

    slot = "rounding"
    draws = False
    kernel = None

    def round_units(self, k, u=None):
        """k (float64 >= 0, grid units) -> rounded k' (float64 integers); u: the
        uniforms (k's shape) when ``draws``."""
        raise NotImplementedError


@register_part
@dataclass(frozen=True)
class Nearest(Rounding):
    """Round to the nearest grid point, ties to even."""

    name = "nearest"
    kernel = "nearest"

    def round_units(self, k, u=None):
        return np.rint(k)


@register_part
@dataclass(frozen=True)
class Stochastic(Rounding):
    """Round up with probability frac(k) (unbiased): k' = floor(k) + [u < k - floor(k)]."""

    name = "stochastic"
    draws = True
    kernel = "stochastic"

    def round_units(self, k, u=None):
        fl = np.floor(k)
        return fl + (u < (k - fl))
