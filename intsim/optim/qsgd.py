"""SGD whose update runs in low-precision formats: lptorch's SGD, as FP134 trains.

The paper's FP134 runs (QuantizedCIL models/*.py) train with
``lptorch.optim.SGD(params, momentum=0.9, lr, weight_decay,
weight_quantize=False)``. One step, per parameter p with gradient g (a
parameter without gradient is skipped), in intsim's words:

    once per step:   lr, momentum, wd = Q_m((lr, momentum, wd))      (quantize_hyper)
    first step:      s_g = floor(log2 max|g|); master = p (a copy)
                     (weight_quantize: p = Q_w(p) at its own scale)
    g  = Q_g(g, s_g)                  grad format, room 2, stochastic; s_g tracked
    d  = Q_m(g + wd p)
    v  = d (first step)  else  Q_m(d + momentum v)
    master = Q_m(master - lr v)
    p  = master                       (weight_quantize: p = H_w(p -> master, s_w),
                                       the hysteresis rounding toward p, s_w tracked)

Q_g, Q_w: the arithmetic's tapered formats at tracked power-of-two scales
(intsim.arith.lptorch.lp_quantize); Q_m: the master format (lptorch
fp_format(6, 9): 9 mantissa bits) at scale 1, stochastic. The float
operations are float32, in this order (g + wd p and master - lr v are each a
product and a sum, two roundings; PyTorch's fused add may round once, which
the following Q_m rounding to 9 mantissa bits almost always hides).
Stochastic draws come from the Generator given, in parameter order: hyper
(3 uniforms) then per parameter g, d, v, master (one uniform per element
each; v none at the first step).
"""
from __future__ import annotations

import numpy as np

from intsim.arith.lptorch import lp_quantize, lp_scale
from intsim.formats import QuantStats, get_format
from intsim.optim.sgd import SGD

__all__ = ["QuantizedSGD", "make_optimizer"]


class QuantizedSGD:
    """lptorch's SGD with the update quantizers of ``arith`` (an FP134-like kind:
    grad_format, grad_room, grad_rounding, master_format, master_rounding,
    quantize_hyper, weight_quantize, weight_format, weight_room, hysteresis,
    track). Same interface as intsim.optim.SGD (lr, zero_grad, step) plus
    ``stats``: {"grad", "update", "momentum", "master", "weight": QuantStats}
    summed over all steps (values flushed to zero and saturated).

    params: list of intsim.nn.Parameter; rng: np.random.Generator of the
    stochastic roundings. The optimizer state (scales, master weights,
    momentum) lives as long as the object, as lptorch's (one per task here,
    as the released code makes one per task).
    """

    def __init__(self, params, lr, momentum, weight_decay, arith, rng, frozen=()):
        self.params = list(params)
        if not self.params:
            raise ValueError("QuantizedSGD got an empty parameter list")
        # a second group with lr 0 and weight decay 0 (the released BiC's bias layers in
        # its first stage): stepped only under lptorch's shared lr (arith.shared_group_lr)
        self.frozen = list(frozen) if getattr(arith, "shared_group_lr", False) else []
        self._group = [0] * len(self.params) + [1] * len(self.frozen)
        self.params += self.frozen
        if not lr >= 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"bad SGD hyperparameters lr={lr} momentum={momentum} "
                             f"wd={weight_decay}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError("QuantizedSGD needs rng, a numpy.random.Generator")
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.arith = arith
        self.rng = rng
        self.master_fmt = get_format(arith.master_format)
        self.grad_fmt = get_format(arith.grad_format)
        self.weight_fmt = get_format(arith.weight_format)
        n = len(self.params)
        self._g_scale = [None] * n      # tracked exponent of the weight gradient
        self._w_scale = [None] * n      # tracked exponent(s) of the weight (weight_quantize)
        self._master = [None] * n
        self._buf = [None] * n
        self.stats = {k: QuantStats() for k in ("grad", "update", "momentum", "master", "weight")}

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def _qm(self, t, what):
        q, st = self.master_fmt.quantize_stats(t, rounding=self.arith.master_rounding,
                                               rng=self.rng)
        self.stats[what].add(st)
        return q.astype(np.float32, copy=False)

    def _hyper(self, weight_decay, lr):
        h = np.array([weight_decay, self.momentum, lr], np.float32)
        if self.arith.quantize_hyper:
            h = self._qm(h, "update")
        return np.float32(h[0]), np.float32(h[1]), np.float32(h[2])

    def _channel_axis(self, p):
        # lptorch's ch_wise applies to 4-d tensors (conv weights) only
        return 0 if p.data.ndim == 4 else None

    def step(self):
        """One update, group by group as lptorch's loop: each group's hyperparameters are
        rounded before its parameters; the second group keeps the first group's lr."""
        a = self.arith
        wd, mom, lr = self._hyper(self.weight_decay, self.lr)
        for i, p in enumerate(self.params):
            if self._group[i] and not self._group[i - 1]:
                wd, mom, _ = self._hyper(0.0, 0.0)      # lr stays the first group's
            if p.grad is None:
                continue
            if p.grad.shape != p.data.shape:
                raise ValueError(f"parameter {p.name!r}: grad shape {p.grad.shape} != "
                                 f"{p.data.shape}")
            g = np.asarray(p.grad, np.float32)
            if self._g_scale[i] is None:
                self._g_scale[i] = lp_scale(g, 0)
            sca = self._g_scale[i] if a.track else lp_scale(g, a.grad_room)
            g, nxt, st = lp_quantize(self.grad_fmt, g, sca, a.grad_room, a.grad_rounding,
                                     self.rng)
            self.stats["grad"].add(st)
            if a.track:
                self._g_scale[i] = nxt
            first = self._master[i] is None
            if first:
                self._master[i] = p.data.astype(np.float32, copy=True)
                if a.weight_quantize:
                    ax = self._channel_axis(p)
                    q, _, st = lp_quantize(self.weight_fmt, p.data,
                                           lp_scale(p.data, a.weight_room, ax), a.weight_room,
                                           "nearest", None, channel_axis=ax)
                    self.stats["weight"].add(st)
                    p.data = q
            w = p.data
            d = self._qm(g + wd * w, "update")
            if self._buf[i] is None:
                v = d.copy()
            else:
                v = self._qm(d + mom * self._buf[i], "momentum")
            self._buf[i] = v
            master = self._qm(self._master[i] - lr * v, "master")
            self._master[i] = master
            if a.weight_quantize:
                ax = self._channel_axis(p)
                if self._w_scale[i] is None:
                    self._w_scale[i] = lp_scale(w, 0, ax)
                sca = self._w_scale[i] if a.track else lp_scale(master, a.weight_room, ax)
                q, nxt, st = lp_quantize(self.weight_fmt, master, sca, a.weight_room, "nearest",
                                         None, channel_axis=ax,
                                         toward=w if a.hysteresis else None)
                self.stats["weight"].add(st)
                if a.track:
                    self._w_scale[i] = nxt
                p.data = np.ascontiguousarray(q, dtype=np.float32)
            else:
                p.data = master.copy()


def make_optimizer(params, lr, momentum, weight_decay, arith=None, rng=None, frozen=()):
    """The optimizer a run's arithmetic trains with: intsim.optim.SGD, or
    QuantizedSGD when ``arith.quantized_update`` (FP134). rng (a Generator) is
    only read then: one integer seeds the optimizer's own Generator. frozen: the
    parameters of a second group with lr 0 and weight decay 0, which plain SGD
    leaves as they are (an lr of 0 does not move them)."""
    if arith is not None and getattr(arith, "quantized_update", False):
        if not isinstance(rng, np.random.Generator):
            raise ValueError("a quantized update needs rng, a numpy.random.Generator")
        child = np.random.default_rng(int(rng.integers(0, 2 ** 63 - 1)))
        return QuantizedSGD(params, lr, momentum, weight_decay, arith, child, frozen=frozen)
    return SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
