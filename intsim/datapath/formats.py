"""Any number format on each operand, any accumulator: the open datapath.

:class:`FormatsDatapath` quantizes the three operands of a layer's matmuls
(weights, activations, output gradients) to number formats of their own
(intsim.formats: integers, floats such as E4M3/E5M2/FP16/BF16, lptorch's
tapered floats, the OCP MX block formats), optionally after a backward
transform, and sums the products in an accumulator part: the float32 BLAS
product (exact), a float accumulator that rounds every add, or an integer
accumulator (integer formats only).

Scales: an element-scaled format (every format but MX) takes one scale per
tensor (``scaling = "tensor"``: s = max|t| / format max), one per output row
of the weight (``"channel"``) or none (``"none"``: the values themselves);
``pow2_scale`` rounds scales up to powers of two. It is quantized once and
read by both products that use it. An MX format carries its own E8M0 scale
per block of 32 along the reduction axis of each product, so an MX operand
is quantized per product, from its float value, along that product's
reduction axis (K forward; N for the input gradient; the batch rows M, or
B*L for a convolution, for the weight gradient).

With a transform (block Hadamard), both operands of each backward product
are transformed along its reduction axis before they are quantized, and
the product divided by the block size (as HDQT).

Audit (FloatPassAudit): per pass, ``tiles`` counts the values quantized,
``saturated`` those above the format's max, ``flushed`` the nonzero values
rounded to 0, ``max_abs`` the largest |value / scale|; a float accumulator
adds its counts (adds, swamped, absorbed, overflows); an integer accumulator
counts its tiles' saturation into ``acc_tiles`` / ``acc_saturated``.

Batched products (attention's activation-activation products, S items) run
as S Dense calls (intsim.datapath.items): each item its own scales, product
and backward, item s drawing after item s-1. Where that is provably the same
bits, :meth:`FormatsDatapath.forward` runs them on the whole (S, ...) tensors
instead (:meth:`FormatsDatapath.items_vectorised` says where).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np

from intsim.arith.lptorch import FloatPassAudit
from intsim.cost.tally import OpCounts, product, quantizer
from intsim.datapath.base import Datapath, register_datapath
from intsim.datapath.fields import FormatName, format_of
from intsim.datapath.items import forward_items
from intsim.datapath.layout import Batched
from intsim.datapath.parts import (Accumulator, ExactAccumulator, FloatAccumulator, Identity,
                                   Nearest, Rounding, Transform)
from intsim.formats import IntFormat, amax_scale
from intsim.kernels.im2col import col2im_km, im2col_km
from intsim.kernels.intmm import Audit

PASSES_BWD = ("backward_input", "backward_weight")


@dataclass
class AccPassAudit(FloatPassAudit):
    """FloatPassAudit plus the accumulator's counts: ``acc_adds`` (rounded additions),
    ``swamped`` (additions that lost part or all of the addend), ``absorbed`` (that
    lost all of it), ``acc_overflows`` (sums beyond the format's max) of a float
    accumulator; ``acc_tiles`` / ``acc_saturated`` / ``acc_max_abs`` of an integer one."""

    acc_adds: int = 0
    swamped: int = 0
    absorbed: int = 0
    acc_overflows: int = 0
    acc_tiles: int = 0
    acc_saturated: int = 0
    acc_max_abs: float = 0.0

    _EXTRA = ("acc_adds", "swamped", "absorbed", "acc_overflows", "acc_tiles", "acc_saturated")

    def record_float_acc(self, sub) -> None:
        """Add a float accumulator's counts (intsim.kernels.floatacc.FloatAccAudit): the
        inner (tile) and outer adds together; overflows include the products that
        overflowed the accumulator format."""
        self.acc_adds += int(sub.adds) + int(sub.outer_adds)
        self.swamped += int(sub.swamped) + int(sub.outer_swamped)
        self.absorbed += int(sub.absorbed) + int(sub.outer_absorbed)
        self.acc_overflows += (int(sub.overflows) + int(sub.outer_overflows)
                               + int(sub.prod_overflows))
        self.acc_max_abs = max(self.acc_max_abs, float(sub.max_abs), float(sub.outer_max_abs))

    def record_int_acc(self, sub) -> None:
        self.acc_tiles += int(sub.tiles)
        self.acc_saturated += int(sub.saturated)
        self.acc_max_abs = max(self.acc_max_abs, float(sub.max_abs))

    def add(self, other):
        get = (other.get if isinstance(other, dict) else lambda k, d=0: getattr(other, k, d))
        super().add(other)
        for k in self._EXTRA:
            setattr(self, k, getattr(self, k) + int(get(k, 0) or 0))
        self.acc_max_abs = max(self.acc_max_abs, float(get("acc_max_abs", 0.0) or 0.0))
        return self

    def reset(self):
        super().reset()
        for k in self._EXTRA:
            setattr(self, k, 0)
        self.acc_max_abs = 0.0
        return self

    def as_dict(self):
        d = super().as_dict()
        for k in self._EXTRA:
            d[k] = int(getattr(self, k))
        d["acc_max_abs"] = float(self.acc_max_abs)
        return d


def _is_block(fmt) -> bool:
    return getattr(fmt, "block_size", None) is not None


def _rounding_arg(r: Rounding):
    """What the formats' quantize takes: the built-in name (their fast kernels), else the part."""
    return r.kernel or r


@register_datapath
@dataclass(frozen=True)
class FormatsDatapath(Datapath):
    """Number formats per operand role, an optional backward transform, any accumulator.

    weights / activations / gradients: format names (``e4m3``, ``e5m2``,
        ``fp16``, ``bf16``, ``int4``, ``mxfp4_e2m1``, ``mxint8``, ...) or none
        (the float32 value as it is).
    weight_rounding / activation_rounding / gradient_rounding: rounding parts.
    scaling: "tensor", "channel" (the weight per output row, the rest per
        tensor) or "none", for the element-scaled formats; pow2_scale rounds
        the scales up to powers of two.
    transform: backward transform of both operands of each backward product.
    accumulator: exact (float32 BLAS), float (every add rounded) or int
        (integer formats on both operands of every product).
    bias_grad_quantized: sum the bias gradient from the quantized gradient
        (False: from the float32 one).
    """

    weights: Optional[FormatName] = "e4m3"
    activations: Optional[FormatName] = "e4m3"
    gradients: Optional[FormatName] = "e5m2"
    weight_rounding: Rounding = field(default_factory=Nearest)
    activation_rounding: Rounding = field(default_factory=Nearest)
    gradient_rounding: Rounding = field(default_factory=Nearest)
    scaling: Literal["tensor", "channel", "none"] = "tensor"
    pow2_scale: bool = False
    transform: Transform = field(default_factory=Identity)
    accumulator: Accumulator = field(default_factory=ExactAccumulator)
    bias_grad_quantized: bool = False

    kind = "formats"

    def __post_init__(self):
        super().__post_init__()
        for role in ("weights", "activations", "gradients"):
            name = getattr(self, role)
            if name is None:
                continue
            try:
                fmt = format_of(name)
            except ValueError as e:
                raise ValueError(f"{role}: {e}") from None
            if self.accumulator.needs_integers and not isinstance(fmt, IntFormat):
                raise ValueError(f"an int accumulator needs integer formats; {role} is {name!r}")
        if self.accumulator.needs_integers and None in (self.weights, self.activations,
                                                        self.gradients):
            raise ValueError("an int accumulator needs every operand quantized to integers")
        if self.accumulator.needs_integers and self.scaling != "tensor":
            raise ValueError("an int accumulator needs integer operands with one scale per "
                             "tensor (scaling = \"tensor\")")
        if self.accumulator.needs_integers and any(
                _is_block(format_of(getattr(self, r))) for r in ("weights", "activations",
                                                                  "gradients")):
            raise ValueError("an int accumulator cannot sum MX block formats")

    @property
    def pass_audit(self):
        return FloatPassAudit if isinstance(self.accumulator, ExactAccumulator) else AccPassAudit

    # ------------------------------------------------------------ quantizing
    def _fmt(self, role):
        name = getattr(self, role)
        return None if name is None else format_of(name)

    def quantize(self, t, role, axis, rounding, rng, audit, passes, channel=None,
                 batch_dims=0):
        """(t's values in the role's format (float, t's shape), scale): the
        integers and their scale (t ~ q * scale) with an int accumulator, else the
        values and 1.0. axis: the reduction axis (block formats); channel: the
        axis of per-channel scales (weights with scaling "channel").
        batch_dims: the leading axes of t index independent items (element
        formats only), each scaled as it would be alone (intsim.formats.amax_scale);
        the audit counts the items' values together."""
        fmt = self._fmt(role)
        if fmt is None:
            return t, 1.0
        r = _rounding_arg(rounding)
        if _is_block(fmt):
            q, st = fmt.quantize_stats(t, axis=axis, rounding=r, rng=rng)
            scale = 1.0
        elif self.scaling == "none":
            q, st = fmt.quantize_stats(t, rounding=r, rng=rng)
            scale = 1.0
        else:
            ax = channel if self.scaling == "channel" else None
            s = amax_scale(t, fmt, axis=ax, pow2=self.pow2_scale, batch_dims=batch_dims)
            q, st = fmt.quantize_stats(t, rounding=r, rng=rng, scale=s)
            scale = s
            if self.accumulator.needs_integers:
                q = (q.astype(np.float64) / s).astype(np.float32)     # exact integers
            else:
                scale = 1.0
        for p in passes:
            audit[p].record_stats(st)
        return q.astype(t.dtype, copy=False), scale

    def _product(self, a, b, audit_pass, sa=1.0, sb=1.0):
        """a @ b through the accumulator; with an int accumulator the integer product
        times the operands' (per tensor) scales, float32."""
        acc = self.accumulator
        if isinstance(acc, ExactAccumulator):
            return np.matmul(a, b)
        if isinstance(acc, FloatAccumulator):
            return acc.matmul(a, b, audit=audit_pass)
        sub = Audit()
        out = acc.matmul(a, b, audit=sub)
        audit_pass.record_int_acc(sub)
        return (np.asarray(out, np.float64) * (float(sa) * float(sb))).astype(np.float32)

    # ---------------------------------------------------------------- forward
    def items_vectorised(self, layout) -> bool:
        """Whether a per-item ``layout``'s items run on whole tensors
        (:meth:`_forward_batched`), bit for bit the per-item loop
        (intsim.datapath.items.forward_items): a Batched layout, element formats
        (or none) on every operand with scaling "tensor", "channel" or "none",
        built-in roundings (a kernel: elementwise, one float64 uniform per value
        drawn as ``rng.random`` of the tensor's shape, so one draw over (S, ...)
        is the S items' draws in item order), at most one of the two forward
        operands drawing (the loop interleaves x_s's and w_s's draws), no
        transform and the exact (float32 BLAS) accumulator, whose batched
        product runs each item's GEMM as a 2-D call would.

        The rest stay on the loop: grouped convolutions, MX block formats, a
        transform, the float and integer accumulators, rounding parts without
        a kernel, and both forward operands rounding stochastically."""
        if not isinstance(layout, Batched):
            return False
        if not isinstance(self.accumulator, ExactAccumulator) or self.per_product():
            return False
        if self.scaling not in ("tensor", "channel", "none"):
            return False
        roles = (("activations", self.activation_rounding), ("weights", self.weight_rounding),
                 ("gradients", self.gradient_rounding))
        if any(r.kernel is None for role, r in roles if getattr(self, role) is not None):
            return False
        fwd_draws = [r.draws for role, r in roles[:2] if getattr(self, role) is not None]
        return sum(fwd_draws) <= 1

    def forward(self, x, W, b, layout, site):
        if layout.per_item:
            if self.items_vectorised(layout):
                return self._forward_batched(x, W, b, layout, site)
            return forward_items(self, x, W, b, layout, site)
        site.layer_audit.tick()
        aud = site.layer_audit
        x = x.astype(W.dtype, copy=False)
        rng = site.rng
        if not layout.conv:
            xq, sx = self.quantize(x, "activations", -1, self.activation_rounding, rng, aud,
                                   ("forward",))
            wq, sw = self.quantize(W, "weights", -1, self.weight_rounding, rng, aud,
                                   ("forward",), channel=0)
            y = self._product(xq, wq.T, aud["forward"], sx, sw)
            if b is not None:
                y = y + b
            return y, _DenseCtx(self, site, x, W, b, xq, sx, wq, sw)
        B, N = x.shape[0], W.shape[0]
        if _is_block(self._fmt("activations")):
            cols, (Ho, Wo) = im2col_km(x, layout.k, layout.stride, layout.padding)   # (K, B, L)
            K = cols.shape[0]
            cq, sx = self.quantize(cols.reshape(K, -1), "activations", 0,
                                   self.activation_rounding, rng, aud, ("forward",))
        else:
            xq_img, sx = self.quantize(x, "activations", None, self.activation_rounding, rng,
                                       aud, ("forward",))
            cols, (Ho, Wo) = im2col_km(xq_img, layout.k, layout.stride, layout.padding)
            K = cols.shape[0]
            cq = cols.reshape(K, -1)
            if self.per_product():
                cols = im2col_km(x, layout.k, layout.stride, layout.padding)[0]
        wq, sw = self.quantize(W, "weights", -1, self.weight_rounding, rng, aud, ("forward",),
                               channel=0)
        y = self._product(wq, cq, aud["forward"], sw, sx)
        ctx = _ConvCtx(self, site, cols.reshape(K, -1), W, b, cq, sx, wq, sw, layout,
                       x.shape, (Ho, Wo))
        return layout.output(y, B, N, Ho, Wo, b), ctx

    def _forward_batched(self, x, W, b, layout, site):
        """A Batched layout's S items on whole tensors (where :meth:`items_vectorised`):
        x (S, M, K), W (S, N, K) -> y (S, M, N), each item's operands quantized with
        its own scales, one batched float32 product; the backward is _BatchedCtx's."""
        layout.check(x, W, b)
        x, W = np.ascontiguousarray(x), np.ascontiguousarray(W)
        if self.quantized and site.layer_audit is not None:
            site.layer_audit.tick()
        aud, rng = site.layer_audit, site.rng
        x = x.astype(W.dtype, copy=False)
        xq, _ = self.quantize(x, "activations", -1, self.activation_rounding, rng, aud,
                              ("forward",), batch_dims=1)
        wq, _ = self.quantize(W, "weights", -1, self.weight_rounding, rng, aud, ("forward",),
                              channel=0, batch_dims=1)
        y = np.matmul(xq, np.swapaxes(wq, -1, -2))
        return y, _BatchedCtx(self, site, xq, wq)

    # ------------------------------------------------------------------ cost
    def _q(self, c, role, rounding, elements, items=1):
        if getattr(self, role) is not None:
            quantizer(c, elements, items, draws=rounding.draws)

    def op_counts(self, pass_, shape, training=True):
        """Operations per pass: each operand's quantizer (once, or per product for MX
        and transformed operands, as the passes run), the transforms, and the product
        of the two formats through the accumulator. The gradient quantized once for
        both backward products is counted in backward_weight."""
        c = OpCounts()
        M, K, N = shape.M, shape.K, shape.N
        fw = self.weights or "fp32"
        fa = self.activations or "fp32"
        fg = self.gradients or "fp32"
        acc = self.accumulator
        if pass_ == "forward":
            self._q(c, "activations", self.activation_rounding,
                    M * K if _is_block(self._fmt("activations")) else shape.x)
            self._q(c, "weights", self.weight_rounding, N * K)
            return product(c, M, K, N, fa, fw, acc.add_counts(M, N, K))
        if not self.per_product():
            if pass_ == "backward_input":
                return product(c, M, N, K, fg, fw, acc.add_counts(M, K, N))
            self._q(c, "gradients", self.gradient_rounding, M * N)
            return product(c, N, M, K, fg, fa, acc.add_counts(N, K, M))
        tf = self.transform
        if pass_ == "backward_input":
            c.update(tf.add_counts(N, M))
            c.update(tf.add_counts(N, K))
            self._q(c, "gradients", self.gradient_rounding, M * N)
            self._q(c, "weights", self.weight_rounding, N * K)
            return product(c, M, N, K, fg, fw, acc.add_counts(M, K, N))
        c.update(tf.add_counts(M, N))
        c.update(tf.add_counts(M, K))
        self._q(c, "gradients", self.gradient_rounding, M * N)
        self._q(c, "activations", self.activation_rounding, M * K)
        return product(c, N, M, K, fg, fa, acc.add_counts(N, K, M))

    # --------------------------------------------------------------- backward
    def per_product(self) -> bool:
        """Each backward product quantizes its operands itself (a block format or a
        transform); else g is quantized once and the forward's operands are reused."""
        return (not isinstance(self.transform, Identity) or
                any(_is_block(self._fmt(r)) for r in ("weights", "activations", "gradients")))

    def backward_products(self, g, x, W, xq, sx, wq, sw, site):
        """dx (M, K) or None and dW (N, K) of y = x W^T, g (M, N); the float operands x, W
        and their forward quantizations xq (sx), wq (sw). Returns (dx, dW, gq or None)."""
        aud, rng = site.layer_audit, site.rng
        need = site.need_input_grad
        tf = self.transform
        if not self.per_product():
            gq, sg = self.quantize(g, "gradients", None, self.gradient_rounding, rng, aud,
                                   PASSES_BWD if need else PASSES_BWD[1:])
            dx = self._product(gq, wq, aud["backward_input"], sg, sw) if need else None
            dW = self._product(gq.T, xq, aud["backward_weight"], sg, sx)
            return dx, dW, gq
        dx = None
        M, N = g.shape
        if need:
            n_o = tf.block(N)
            g1 = tf.apply(g, -1) if n_o > 1 else g                            # g H_o (M, N)
            w1 = tf.apply(W, 0) if n_o > 1 else W                             # H_o W (N, K)
            g1q, sg1 = self.quantize(g1, "gradients", -1, self.gradient_rounding, rng, aud,
                                     ("backward_input",))
            w1q, sw1 = self.quantize(w1, "weights", 0, self.weight_rounding, rng, aud,
                                     ("backward_input",))
            dx = self._product(g1q, w1q, aud["backward_input"], sg1, sw1) / np.float32(n_o)
        n_b = tf.block(M)
        g2 = tf.apply(g, 0) if n_b > 1 else g                                 # H_b g (M, N)
        x2 = tf.apply(x, 0) if n_b > 1 else x                                 # H_b x (M, K)
        g2q, sg2 = self.quantize(np.ascontiguousarray(g2.T), "gradients", -1,
                                 self.gradient_rounding, rng, aud, ("backward_weight",))
        x2q, sx2 = self.quantize(x2, "activations", 0, self.activation_rounding, rng, aud,
                                 ("backward_weight",))
        dW = self._product(g2q, x2q, aud["backward_weight"], sg2, sx2) / np.float32(n_b)
        return dx, dW, None


class _DenseCtx:
    def __init__(self, dp, site, x, W, b, xq, sx, wq, sw):
        self.dp, self.site, self.x, self.W, self.b = dp, site, x, W, b
        self.xq, self.sx, self.wq, self.sw = xq, sx, wq, sw

    def backward(self, g):
        dp = self.dp
        dx, dW, gq = dp.backward_products(g, self.x, self.W, self.xq, self.sx, self.wq,
                                          self.sw, self.site)
        db = None
        if self.b is not None:
            src = gq if (dp.bias_grad_quantized and gq is not None) else g
            db = src.sum(axis=0).astype(self.b.dtype)
        return dx, dW, db


class _BatchedCtx:
    """Backward of S Batched items on whole tensors: the forward's quantized xq (S, M, K)
    and wq (S, N, K); g (S, M, N) quantized per item once for both products."""

    def __init__(self, dp, site, xq, wq):
        self.dp, self.site, self.xq, self.wq = dp, site, xq, wq

    def backward(self, g):
        """g (S, M, N) -> (dx (S, M, K) or None, dw (S, N, K), None)."""
        dp, site = self.dp, self.site
        need = site.need_input_grad
        g = np.ascontiguousarray(g)
        gq, _ = dp.quantize(g, "gradients", None, dp.gradient_rounding, site.rng,
                            site.layer_audit, PASSES_BWD if need else PASSES_BWD[1:],
                            batch_dims=1)
        dx = np.matmul(gq, self.wq) if need else None
        dW = np.matmul(np.swapaxes(gq, -1, -2), self.xq)
        return dx, dW, None


class _ConvCtx:
    def __init__(self, dp, site, cols, W, b, cq, sx, wq, sw, layout, xshape, hw):
        self.dp, self.site, self.cols, self.W, self.b = dp, site, cols, W, b
        self.cq, self.sx, self.wq, self.sw = cq, sx, wq, sw
        self.layout, self.xshape, self.hw = layout, xshape, hw

    def backward(self, g):
        dp, lo = self.dp, self.layout
        B = self.xshape[0]
        gT = lo.grad_rows(g)                                                    # (B, N, L)
        L = gT.shape[2]
        g2 = lo.grad_kmajor(gT)                                                 # (N, B*L)
        site = self.site
        db = None
        if not dp.per_product():
            # one quantization of g (image layout) read by both products, each one GEMM
            # over the batch: (N, B L) @ (B L, K) and (K, N) @ (N, B L)
            gq, sg = dp.quantize(g, "gradients", None, dp.gradient_rounding, site.rng,
                                 site.layer_audit, PASSES_BWD if site.need_input_grad
                                 else PASSES_BWD[1:])
            gq = gq.astype(self.W.dtype, copy=False)
            if self.b is not None:
                db = lo.bias_grad(gq if dp.bias_grad_quantized else g, self.b.dtype)
            gq2 = lo.grad_kmajor(lo.grad_rows(gq))
            dW = dp._product(gq2, self.cq.T, site.layer_audit["backward_weight"], sg, self.sx)
            if not site.need_input_grad:
                return None, dW, db
            d = dp._product(self.wq.T, gq2, site.layer_audit["backward_input"], self.sw, sg)
            return col2im_km(d.reshape(-1, B, L), self.xshape, lo.k, lo.stride,
                             lo.padding), dW, db
        # per-product quantization: the layer's matmul is y^T = W cols, rows M = B*L
        x = np.ascontiguousarray(self.cols.T)                                   # (B L, K)
        dxT, dW, _ = dp.backward_products(np.ascontiguousarray(g2.T), x, self.W, x, 1.0,
                                          self.W, 1.0, site)
        if self.b is not None:
            db = lo.bias_grad(g, self.b.dtype)
        if dxT is None:
            return None, dW, db
        dx = col2im_km(np.ascontiguousarray(dxT.T).reshape(-1, B, L), self.xshape, lo.k,
                       lo.stride, lo.padding)
        return dx, dW, db
