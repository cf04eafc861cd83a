"""The audit of float datapaths and lptorch's tracked power-of-two scales.

The audit of a float datapath (:class:`FloatPassAudit`) counts quantized
values instead of accumulator tiles: per layer and pass, ``tiles`` is the
number of values a quantizer of that pass rounded, ``saturated`` those whose
rounded magnitude exceeded the format's max, ``flushed`` the nonzero ones
that became zero, ``max_abs`` the largest |value / scale| (format units).
The error tensor g is counted in each backward pass that reads it
(backward_input only when the input gradient is computed).

:func:`lp_scale` and :func:`lp_quantize` are lptorch's quantizer at a
power-of-two scale whose exponent is tracked (intsim.datapath.lptorch,
intsim.optim.QuantizedSGD).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from intsim.arith.qmatmul import PassAudit
from intsim.formats import QuantStats
#: tracked lptorch scale exponents stay in float64's range
SCALE_LIMIT = 1000


@dataclass
class FloatPassAudit(PassAudit):
    """PassAudit of a float datapath: ``tiles`` = values quantized, ``saturated`` =
    values above the format's max, ``flushed`` = nonzero values rounded to 0,
    ``max_abs`` = the largest |value / scale| (format units, a float)."""

    flushed: int = 0

    def record_stats(self, st: QuantStats) -> None:
        """Add one quantization's counts."""
        self.tiles += st.count
        self.saturated += st.saturated
        self.flushed += st.flushed
        self.max_abs = max(self.max_abs, float(st.max_abs))

    def add(self, other):
        flushed = other.get("flushed", 0) if isinstance(other, dict) else \
            getattr(other, "flushed", 0)
        super().add(other)
        self.flushed += int(flushed or 0)
        return self

    def reset(self):
        super().reset()
        self.flushed = 0
        return self

    def as_dict(self):
        """PassAudit.as_dict plus "flushed" (int); max_abs a float."""
        d = super().as_dict()
        d["flushed"] = int(self.flushed)
        d["max_abs"] = float(self.max_abs)
        return d


def lp_scale(t, room, channel_axis=None):
    """lptorch's untracked scale exponent: floor(log2 max|t|) + room (int; 0 + room
    for a zero tensor), per index of channel_axis (int64 array) or per tensor."""
    a = np.abs(np.asarray(t, dtype=np.float64))
    if channel_axis is None:
        m = float(a.max()) if a.size else 0.0
        return (math.floor(math.log2(m)) if m > 0 else 0) + int(room)
    other = tuple(i for i in range(a.ndim) if i != channel_axis)
    m = a.max(axis=other)
    with np.errstate(divide="ignore"):
        e = np.where(m > 0, np.floor(np.log2(np.where(m > 0, m, 1.0))), 0.0)
    return e.astype(np.int64) + int(room)


def lp_quantize(fmt, t, sca, room, rounding, rng, channel_axis=None, toward=None):
    """lptorch's custom_fp_quantize (or _hysteresis with ``toward``): t rounded to
    ``fmt`` at scale 2^sca, and the scale exponent tracking would move to.

    t: float32 array. sca: int (per tensor) or int64 (C,) (per index of
    channel_axis). rounding: "nearest" or "stochastic" (rng). toward: the
    previous values (t's shape) for the hysteresis rounding (rounds toward
    them; rounding is then ignored).
    Returns (q float32 like t, next sca (int or (C,) int64), QuantStats).
    Tracking, as lptorch: a value whose rounded magnitude reaches
    2^(sca + 1 - room) is an overflow (also a saturated one), one reaching
    2^(sca - room) keeps the scale; any overflow raises sca by 1, otherwise
    no value reaching 2^(sca - room) lowers it by 1 (per channel with
    channel_axis). sca is kept within +-SCALE_LIMIT.
    """
    if channel_axis is None:
        scale = 2.0 ** int(sca)
    else:
        shape = [1] * t.ndim
        shape[channel_axis] = -1
        scale = np.exp2(np.asarray(sca, np.float64)).reshape(shape)
    q, st, sat = fmt.quantize_detail(t, rounding=rounding, rng=rng, scale=scale, toward=toward)
    a = np.abs(q.astype(np.float64) / scale)          # format units, exact
    # before saturating, a saturated value's magnitude was >= 2 (the top binade
    # rounded up, or above it): an overflow whatever the room
    over = (a >= 2.0 ** (1 - room)) | sat
    keep = (a >= 2.0 ** (-room)) | over
    if channel_axis is None:
        nxt = int(sca) + (1 if over.any() else (0 if keep.any() else -1))
        nxt = max(-SCALE_LIMIT, min(SCALE_LIMIT, nxt))
    else:
        other = tuple(i for i in range(t.ndim) if i != channel_axis)
        o, k = over.any(axis=other), keep.any(axis=other)
        nxt = np.clip(np.asarray(sca) + np.where(o, 1, np.where(k, 0, -1)),
                      -SCALE_LIMIT, SCALE_LIMIT).astype(np.int64)
    return q, nxt, st
