"""The paper's FP134 baseline: lptorch's tapered floats at tracked scales.

Every matmul runs in float32 on float weights and inputs; the layer output
and the output gradient are rounded by lptorch quantizers whose power-of-two
scale exponents are tracked per layer (the buffer ``arith_state``), and the
optimizer (intsim.optim.QuantizedSGD) rounds the update.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from intsim.arith.lptorch import FloatPassAudit, lp_quantize, lp_scale
from intsim.cost.tally import OpCounts, product, quantizer
from intsim.datapath.base import Datapath, register_datapath
from intsim.datapath.exact import ExactDatapath
from intsim.datapath.parts import ExactAccumulator
from intsim.datapath.fields import FormatName
from intsim.formats import ROUNDINGS, get_format
from intsim.formats.tapered import TaperedFormat
from intsim.kernels.im2col import im2col_km

RoundingName = Literal[ROUNDINGS]


def _check_format(name, spec):
    try:
        return get_format(spec)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


def _record(audit, passes, st):
    for p in passes:
        audit[p].record_stats(st)


@register_datapath
@dataclass(frozen=True)
class LptorchDatapath(Datapath):
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
    shared_group_lr: lptorch's SGD takes the first parameter group's lr for every
        group (its ``if lr is None`` runs once per step), so a group given lr 0, the
        released BiC's bias layers in its first stage, trains at the base lr. False:
        such a group does not move.
    reset_classifier_bias: the released ``place_quant`` puts the old classifier
        bias on the QLayer wrapper, where nothing reads it, so a growing classifier
        with a bias runs a freshly initialised bias every task (PyTorch's default
        init). False: the old rows keep their bias.
    """

    act_format: FormatName = "555555543210"
    err_format: FormatName = "555555543210"
    grad_format: FormatName = "555555543210"
    weight_format: FormatName = "555555543210"
    act_room: int = 1
    err_room: int = 1
    grad_room: int = 2
    weight_room: int = 0
    act_rounding: RoundingName = "nearest"
    err_rounding: RoundingName = "stochastic"
    grad_rounding: RoundingName = "stochastic"
    master_format: FormatName = "lptorch_master"
    master_rounding: RoundingName = "stochastic"
    quantize_hyper: bool = True
    track: bool = True
    weight_quantize: bool = False
    hysteresis: bool = True
    shared_group_lr: bool = True
    reset_classifier_bias: bool = True

    kind = "lptorch"
    bias_grad_quantized = True
    quantized_update = True
    pass_audit = FloatPassAudit

    def __post_init__(self):
        super().__post_init__()
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
        for f in ("quantize_hyper", "track", "weight_quantize", "hysteresis", "shared_group_lr",
                  "reset_classifier_bias"):
            if not isinstance(getattr(self, f), bool):
                raise ValueError(f"{f} must be true or false, got {getattr(self, f)!r}")

    def new_state(self):
        """[activation scale exponent, error scale exponent] int64, lptorch QBlock's
        scale1/scale2 buffers (0 at the start)."""
        return np.zeros(2, np.int64)

    def fresh_classifier_bias(self) -> bool:
        return self.reset_classifier_bias

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

    # ------------------------------------------------------------------ cost
    def op_counts(self, pass_, shape, training=True):
        """Float32 products; the output quantizer forward, the error quantizer (counted in
        backward_weight) backward. Tracked scales need no max reduction: one overflow
        comparison per element is counted as quant:absmax."""
        c = OpCounts()
        M, K, N = shape.M, shape.K, shape.N
        exact = ExactAccumulator()
        if pass_ == "forward":
            quantizer(c, M * N, draws=self.act_rounding == "stochastic")
            return product(c, M, K, N, "fp32", "fp32", exact.add_counts(M, N, K))
        if pass_ == "backward_input":
            return product(c, M, N, K, "fp32", "fp32", exact.add_counts(M, K, N))
        quantizer(c, M * N, draws=self.err_rounding == "stochastic")
        return product(c, N, M, K, "fp32", "fp32", exact.add_counts(N, K, M))

    # ------------------------------------------------------------ the layers
    def forward(self, x, W, b, layout, site):
        """y = out(x W^T + b) (out: the activation quantizer); x (M, K) or images."""
        site.layer_audit.tick()
        x = x.astype(W.dtype, copy=False)
        state = getattr(site, "arith_state", None)
        if layout.per_item:
            # float32 products of every item (ExactDatapath), then one output rounding of
            # the whole tensor, as a QLayer rounds its module's output
            y, fctx = ExactDatapath().forward(x, W, b, layout, site)
            ctx = _ItemsCtx(self, site, fctx)
        elif not layout.conv:
            y = x @ W.T
            if b is not None:
                y = y + b
            ctx = _Ctx(self, site, x, W, b, layout, None, None)
        else:
            B, N = x.shape[0], W.shape[0]
            cols, (Ho, Wo) = im2col_km(x, layout.k, layout.stride, layout.padding)   # (K, B, L)
            y = layout.output(np.matmul(W, cols.reshape(cols.shape[0], -1)), B, N, Ho, Wo, b)
            ctx = _Ctx(self, site, cols, W, b, layout, x.shape, (Ho, Wo))
        return self.forward_output(y, state, site.training, site.rng, site.layer_audit), ctx


class _ItemsCtx:
    """Backward of a per-item layout: the error quantizer on the whole gradient, then
    the float products of every item (db from the rounded gradient)."""

    def __init__(self, dp, site, fctx):
        self.dp, self.site, self.fctx = dp, site, fctx

    def backward(self, g):
        site = self.site
        gq = self.dp.backward_error(g, getattr(site, "arith_state", None), site.rng,
                                    site.layer_audit, need_dx=site.need_input_grad)
        return self.fctx.backward(gq.astype(g.dtype, copy=False))


class _Ctx:
    def __init__(self, dp, site, x, W, b, layout, xshape, hw):
        self.dp, self.site, self.x, self.W, self.b = dp, site, x, W, b
        self.layout, self.xshape, self.hw = layout, xshape, hw

    def backward(self, g):
        """g' = the error quantizer of g; dW = g'^T x, dx = g' W (None for a first
        layer), db = sum of g'."""
        dp, site, lo = self.dp, self.site, self.layout
        gq = dp.backward_error(g, getattr(site, "arith_state", None), site.rng,
                               site.layer_audit, need_dx=site.need_input_grad)
        gq = gq.astype(self.W.dtype, copy=False)
        db = None if self.b is None else lo.bias_grad(gq, self.b.dtype)
        if not lo.conv:
            dW = gq.T @ self.x
            return (gq @ self.W if site.need_input_grad else None), dW, db
        dx, dW = lo.float_backward(gq, self.x, self.W, self.xshape, site.need_input_grad)
        return dx, dW, db
