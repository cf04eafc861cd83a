"""Float-datapath arithmetics: FP8 (E4M3 forward / E5M2 backward) and the paper's FP134.

Both run every matmul in float32 on operands that a number format
(intsim.formats) has already rounded, so the layers compute them as the FP
layers do (one BLAS product each) and call these strategy hooks around the
products (``float_datapath = True``; docs/architecture.md):

- ``layer_state()``: the per-layer state a layer keeps as its buffer
  ``arith_state`` (None: none). FP134 tracks two scale exponents.
- ``forward_operands(x, W, state, training, rng, audit)``: the operands of
  y = x W^T (Conv2d: the input image and the (N, C k k) weight; quantizing
  is elementwise, so it commutes with im2col).
- ``forward_output(y, state, training, rng, audit)``: the layer output
  after its bias is added (FP134 quantizes it; FP8 returns it).
- ``backward_error(g, state, rng, audit, need_dx)``: the output gradient
  that both backward products read (dx = g' W', dW = g'^T x').
- ``bias_grad_quantized``: the bias gradient is summed from g' (True) or
  from the float g (False).
- ``quantized_update``: the optimizer quantizes the update (FP134's lptorch
  SGD, intsim.optim.QuantizedSGD); see :func:`intsim.optim.make_optimizer`.

The audit of a float datapath (:class:`FloatPassAudit`) counts quantized
values instead of accumulator tiles: per layer and pass, ``tiles`` is the
number of values a quantizer of that pass rounded, ``saturated`` those whose
rounded magnitude exceeded the format's max, ``flushed`` the nonzero ones
that became zero, ``max_abs`` the largest |value / scale| (format units).
The error tensor g is counted in each backward pass that reads it
(backward_input only when the input gradient is computed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from intsim.arith.kinds import _Kind, register_arith
from intsim.arith.qmatmul import PassAudit
from intsim.formats import QuantStats, amax_scale, get_format
from intsim.formats.tapered import TaperedFormat

_ROUNDINGS = ("nearest", "stochastic")
_SCALINGS = ("tensor", "channel", "none")
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


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _check_format(name, spec):
    try:
        return get_format(spec)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


class _FloatKind(_Kind):
    """What FP8 and FP134 share: a quantized float datapath without accumulator limit."""

    float_datapath = True
    quantizes_forward = True
    acc_limit = None
    fwd_tile = None
    ste_bound = None
    bias_in_accumulator = False
    pass_audit = FloatPassAudit

    @property
    def quantized(self):
        return True

    def per_sample_eval(self, training: bool) -> bool:
        return False

    def layer_state(self):
        return None


def _record(audit, passes, st):
    for p in passes:
        audit[p].record_stats(st)


# ---------------------------------------------------------------------- FP8
@register_arith
@dataclass(frozen=True)
class FP8(_FloatKind):
    """A generic FP8 training datapath (Micikevicius et al. 2022, "FP8 formats for
    deep learning"): weights and activations in E4M3, output gradients in E5M2,
    float32 products and accumulation.

    fwd_format / bwd_format: format names or lptorch digit strings
        (intsim.formats.get_format); "e4m3" / "e5m2".
    scaling: "tensor" (one amax scale per tensor, recomputed every call: s =
        max|t| / format max), "channel" (the weight per output row/channel,
        the rest per tensor) or "none" (the values themselves).
    pow2_scale: round the scales up to powers of two.
    grad_rounding: rounding of the output gradient ("nearest" or "stochastic",
        one uniform per element from the layer's Generator).
    bias_grad_quantized: sum the bias gradient from the E5M2 gradient
        (False: from the float32 one, as a fused bias-gradient epilogue).
    """

    fwd_format: str = "e4m3"
    bwd_format: str = "e5m2"
    scaling: str = "tensor"
    pow2_scale: bool = False
    grad_rounding: str = "nearest"
    bias_grad_quantized: bool = False

    name = "fp8"
    config_fields = ()

    def __post_init__(self):
        _check_format("fwd_format", self.fwd_format)
        _check_format("bwd_format", self.bwd_format)
        _check_choice("scaling", self.scaling, _SCALINGS)
        _check_choice("grad_rounding", self.grad_rounding, _ROUNDINGS)
        for f in ("pow2_scale", "bias_grad_quantized"):
            if not isinstance(getattr(self, f), bool):
                raise ValueError(f"{f} must be true or false, got {getattr(self, f)!r}")

    def _scale(self, t, fmt, axis=None):
        if self.scaling == "none":
            return None
        return amax_scale(t, fmt, axis=axis, pow2=self.pow2_scale)

    def forward_operands(self, x, W, state, training, rng, audit):
        """(Q_e4m3(x), Q_e4m3(W)) float32 like x and W (W: (N, K), per row with
        scaling "channel"); counted in the forward audit."""
        fmt = get_format(self.fwd_format)
        xq, st = fmt.quantize_stats(x, scale=self._scale(x, fmt))
        _record(audit, ("forward",), st)
        wax = 0 if self.scaling == "channel" else None
        wq, st = fmt.quantize_stats(W, scale=self._scale(W, fmt, wax))
        _record(audit, ("forward",), st)
        return xq, wq

    def forward_output(self, y, state, training, rng, audit):
        return y

    def backward_error(self, g, state, rng, audit, need_dx=True):
        """Q_e5m2(g) float32, g's shape; counted in both backward passes that read it."""
        fmt = get_format(self.bwd_format)
        gq, st = fmt.quantize_stats(g, rounding=self.grad_rounding, rng=rng,
                                    scale=self._scale(g, fmt))
        _record(audit, ("backward_input", "backward_weight") if need_dx else
                ("backward_weight",), st)
        return gq


# -------------------------------------------------------------------- FP134
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


@register_arith
@dataclass(frozen=True)
class FP134(_FloatKind):
    """The paper's FP134 baseline as the released code runs it (QuantizedCIL
    quant.py set_lptorch_quant, Linear_FP134/Conv_FP134 = lptorch QLayer;
    lptorch.optim.SGD(weight_quantize=False); docs/method.md "FP134 and FP8").

    A layer computes y = x W^T + b in float32 with float weights and inputs,
    then rounds its output with the activation quantizer; its backward rounds
    the output gradient with the error quantizer and runs the float products
    (dx = g' W, dW = g'^T x, db = sum g'). The optimizer (QuantizedSGD)
    rounds the weight gradient, the update, the momentum and the master
    weights. Every quantizer is lptorch's ``quant`` of a tapered format at a
    power-of-two scale 2^s whose exponent s is tracked (one step a call).

    act_format / err_format / grad_format / weight_format: format names or
        lptorch digit strings; '555555543210' (1-3-4 with subnormals) as the
        released code ('11111110' for its fp130_4).
    act_room / err_room / grad_room / weight_room: lptorch's "room", the free
        binades above the tracked max (1, 1, 2, 0).
    act_rounding / err_rounding / grad_rounding: nearest, stochastic, stochastic.
    master_format, master_rounding: lptorch fp_format(6, 9) (bias 31),
        stochastic: the update, the momentum, the master weights and (with
        quantize_hyper) lr, momentum and weight decay every step.
    track: tracked scales (lptorch's tracking=True); False computes each
        call's scale from its max (floor(log2 max|t|) + room).
    weight_quantize: the released runs pass weight_quantize=False to
        lptorch's SGD, so the weights stay the master weights (False). True
        rounds them with weight_format (per output channel for conv weights,
        per tensor else, room 0) after every update.
    hysteresis: with weight_quantize, lptorch's hysteresis update (a weight
        rounds toward its previous value; set_hysteresis_update(True)); False
        rounds to nearest.
    """

    act_format: str = "555555543210"
    err_format: str = "555555543210"
    grad_format: str = "555555543210"
    weight_format: str = "555555543210"
    act_room: int = 1
    err_room: int = 1
    grad_room: int = 2
    weight_room: int = 0
    act_rounding: str = "nearest"
    err_rounding: str = "stochastic"
    grad_rounding: str = "stochastic"
    master_format: str = "lptorch_master"
    master_rounding: str = "stochastic"
    quantize_hyper: bool = True
    track: bool = True
    weight_quantize: bool = False
    hysteresis: bool = True

    name = "fp134"
    config_fields = ()
    bias_grad_quantized = True
    quantized_update = True

    def __post_init__(self):
        for f in ("act_format", "err_format", "grad_format", "weight_format"):
            fmt = _check_format(f, getattr(self, f))
            if not isinstance(fmt, TaperedFormat):
                raise ValueError(f"{f} must be a tapered (lptorch custom_fp) format, "
                                 f"got {getattr(self, f)!r}")
        _check_format("master_format", self.master_format)
        for f in ("act_room", "err_room", "grad_room", "weight_room"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 8:
                raise ValueError(f"{f} must be an int in 0..8, got {v!r}")
        for f in ("act_rounding", "err_rounding", "grad_rounding", "master_rounding"):
            _check_choice(f, getattr(self, f), _ROUNDINGS)
        for f in ("quantize_hyper", "track", "weight_quantize", "hysteresis"):
            if not isinstance(getattr(self, f), bool):
                raise ValueError(f"{f} must be true or false, got {getattr(self, f)!r}")

    def layer_state(self):
        """[activation scale exponent, error scale exponent] int64, lptorch QBlock's
        scale1/scale2 buffers (0 at the start)."""
        return np.zeros(2, np.int64)

    def forward_operands(self, x, W, state, training, rng, audit):
        return x, W

    def _quant(self, t, fmt_name, room, rounding, state, i, update, rng, audit, passes):
        fmt = get_format(fmt_name)
        sca = int(state[i]) if self.track else lp_scale(t, room)
        q, nxt, st = lp_quantize(fmt, t, sca, room, rounding, rng)
        if update and self.track:
            state[i] = nxt
        _record(audit, passes, st)
        return q

    def forward_output(self, y, state, training, rng, audit):
        """The layer output rounded by the activation quantizer at the tracked scale
        (updated in training only; eval uses it as is, as QBlock's cloned scale)."""
        return self._quant(y, self.act_format, self.act_room, self.act_rounding, state, 0,
                           training, rng, audit, ("forward",))

    def backward_error(self, g, state, rng, audit, need_dx=True):
        """The output gradient rounded by the error quantizer (stochastic) at the
        tracked scale; counted in both backward passes that read it."""
        return self._quant(g, self.err_format, self.err_room, self.err_rounding, state, 1,
                           True, rng, audit,
                           ("backward_input", "backward_weight") if need_dx else
                           ("backward_weight",))
