"""Integer datapaths: HDQT's family and LUQ, on integer operands and tiled integer accumulators.

The forward pass is shared: both operands quantized to integers with one
max-based scale each (per image in eval mode with ``eval_per_sample``), the
product through the integer accumulator (intsim.kernels.intmm), the output
rescaled to float32. The backward passes differ:

- :class:`IntegerDatapath` (HDQT): block transforms on both operands of each
  backward product, then integer quantization and the integer accumulator
  (intsim.arith.qmatmul.hdqt_backward; docs/method.md);
- :class:`LUQDatapath`: SAWB forward quantization and a logarithmic unbiased
  gradient format with float32 backward products (qmatmul.luq_backward).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from intsim.arith import qmatmul as qm
from intsim.cost.tally import OpCounts, log2_int, product, quantizer
from intsim.datapath.base import Datapath, register_datapath
from intsim.datapath.fields import FormatName, format_of
from intsim.datapath.items import forward_items
from intsim.datapath.parts import (Accumulator, BlockHadamard, ExactAccumulator, IntAccumulator,
                                   Nearest, Rounding, Stochastic, Transform)
from intsim.formats import IntFormat
from intsim.kernels import luq, quant
from intsim.kernels.im2col import col2im, col2im_km, im2col, im2col_km


def _int_bits(name, spec, lo=2, hi=8):
    fmt = format_of(spec)
    if not isinstance(fmt, IntFormat) or not fmt.signed:
        raise ValueError(f"{name} must be an integer format intN, got {spec!r}")
    if not lo <= fmt.bits <= hi:
        raise ValueError(f"{name} must have {lo}..{hi} bits, got {spec!r}")
    return fmt.bits


def _kernel_rounding(name, r):
    if r.kernel is None:
        raise ValueError(f"{name} {r.name!r}: the integer datapath's quantizers round "
                         f"nearest or stochastic (kind = \"formats\" takes any rounding)")
    return r.kernel


class _IntegerForward(Datapath):
    """The forward pass of the integer datapaths and the layer-layout side of their
    backward (the arithmetic of which is ``_backward`` / ``_conv_backward_km``)."""

    #: the bias is one more addend of the accumulator (LUQ)
    bias_in_accumulator = False
    ste_bound = None

    # -- what the passes (intsim.arith.qmatmul) read; subclasses have the fields
    # forward_format and accumulator (an IntAccumulator)
    @property
    def bits(self) -> int:
        return _int_bits("forward_format", self.forward_format)

    @property
    def acc_limit(self):
        return self.accumulator.limit

    @property
    def acc_mode(self):
        return self.accumulator.mode

    @property
    def fwd_tile(self):
        return self.accumulator.tile

    @property
    def quantizes_forward(self) -> bool:
        return True

    def per_sample_eval(self, training: bool) -> bool:
        return False

    #: S independent Dense products in one call (Batched): implemented by the kinds with a
    #: whole-tensor backward of S items (``_backward_items``); the others loop over items
    vectorised_items = False

    def forward(self, x, W, b, layout, site):
        if layout.per_item:
            if (self.vectorised_items and not layout.conv and self.quantizes_forward
                    and not self.per_sample_eval(site.training)
                    and site.layer_audit is not None):
                return self._forward_batched(x, W, b, layout, site)
            return forward_items(self, x, W, b, layout, site)
        if not layout.conv:
            return self._forward_dense(x, W, b, site)
        if layout.kmajor and self.quantizes_forward:
            return self._forward_conv_km(x, W, b, layout, site)
        return self._forward_conv_ref(x, W, b, layout, site)

    def _quantize_operands(self, x, W, site):
        per = self.per_sample_eval(site.training)
        site.layer_audit.tick()
        aud = (site.layer_audit, "forward")
        wq, sw, _, wmask = qm.quantize_forward(W, self, aud, "W")
        xq, sx, _, xmask = qm.quantize_forward(x, self, aud, "x", batch_dims=int(per))
        return per, xq, sx, xmask, wq, sw, wmask

    def _forward_dense(self, x, W, b, site):
        ctx = _Ctx(self, site, b, W.dtype)
        if not self.quantizes_forward:
            x = x.astype(W.dtype, copy=False)
            ctx.set(x, 1.0, None, W, 1.0, None)
            y = x @ W.T
            return (y if b is None else y + b), ctx
        per, xq, sx, xmask, wq, sw, wmask = self._quantize_operands(x, W, site)
        b_in = qm.bias_units(self, b, sx, sw)
        acc = qm.forward_matmul(xq, wq, self, site.layer_audit, b_in)
        scale = np.asarray(sx, np.float32)[:, None] * np.float32(sw) if per else np.float32(sw * sx)
        y = (acc * scale).astype(np.float32, copy=False)
        ctx.set(xq, sx, xmask, wq, sw, wmask)
        if b is not None and b_in is None:
            y = y + b
        return y, ctx

    def _forward_batched(self, x, W, b, layout, site):
        """A Batched layout's S items in one call: each item's operands quantized with its
        own scales (nearest: the values of the per-item loop), one batched product through
        the accumulator; the backward is ``_backward_items``."""
        layout.check(x, W, b)
        x = np.ascontiguousarray(x)
        W = np.ascontiguousarray(W)
        site.layer_audit.tick()
        aud = (site.layer_audit, "forward")
        wq, sw, wmask = qm.quantize_forward_items(W, self, aud, "W")
        xq, sx, xmask = qm.quantize_forward_items(x, self, aud, "x")
        acc = qm.forward_matmul_items(xq, wq, self, site.layer_audit)          # (S, M, N)
        scale = (sw * sx).astype(np.float32).reshape(-1, 1, 1)
        y = (acc * scale).astype(np.float32, copy=False)
        ctx = _BatchedCtx(self, site, None, W.dtype)
        ctx.set(xq, sx, xmask, wq, sw, wmask)
        return y, ctx

    def _forward_conv_km(self, x, W, b, layout, site):
        B, N = x.shape[0], W.shape[0]
        per, xq, sx, xmask, wq, sw, wmask = self._quantize_operands(x, W, site)
        cols, (Ho, Wo) = im2col_km(xq, layout.k, layout.stride, layout.padding)   # (K, B, L)
        b_in = qm.bias_units(self, b, sx, sw)
        acc = qm.forward_matmul_T(wq, cols.reshape(cols.shape[0], -1), self,
                                  site.layer_audit, b_in)                         # (N, B*L)
        if per:
            scale = (np.asarray(sx, np.float32) * np.float32(sw))[None, :, None]
            acc = acc.reshape(N, B, -1)
        else:
            scale = np.float32(sw * sx)
        y = (acc * scale).astype(np.float32, copy=False)
        ctx = _ConvCtx(self, site, b, W.dtype, layout, x.shape, (Ho, Wo))
        ctx.set(cols, sx, xmask, wq, sw, wmask)
        return layout.output(y, B, N, Ho, Wo, b if b_in is None else None), ctx

    def _forward_conv_ref(self, x, W, b, layout, site):
        B, N = x.shape[0], W.shape[0]
        b_in = None
        if not self.quantizes_forward:
            x = x.astype(W.dtype, copy=False)
            cols, (Ho, Wo) = im2col(x, layout.k, layout.stride, layout.padding)  # (B, K, L)
            y = np.matmul(W, cols)
            sx, xmask, wq, sw, wmask = 1.0, None, W, 1.0, None
        else:
            per, xq, sx, xmask, wq, sw, wmask = self._quantize_operands(x, W, site)
            cols, (Ho, Wo) = im2col(xq, layout.k, layout.stride, layout.padding)
            b_in = qm.bias_units(self, b, sx, sw)
            acc = qm.forward_matmul_T(wq, cols, self, site.layer_audit, b_in)    # (B, N, L)
            if per:
                scale = (np.asarray(sx, np.float32) * np.float32(sw))[:, None, None]
            else:
                scale = np.float32(sw * sx)
            y = (acc * scale).astype(np.float32, copy=False)
        y = y.reshape(B, N, Ho, Wo)
        if b is not None and b_in is None:
            y += b[None, :, None, None]
        ctx = _ConvCtx(self, site, b, W.dtype, layout, x.shape, (Ho, Wo), ref=True)
        ctx.set(cols, sx, xmask, wq, sw, wmask)
        return y, ctx


class _Ctx:
    """Backward context of a dense integer layer."""

    def __init__(self, dp, site, b, dtype):
        self.dp, self.site, self.b, self.dtype = dp, site, b, dtype

    def set(self, xq, sx, xmask, wq, sw, wmask):
        self.xq, self.sx, self.xmask, self.wq, self.sw, self.wmask = xq, sx, xmask, wq, sw, wmask

    def _check_scale(self):
        if np.ndim(self.sx) != 0:
            raise ValueError("backward after an eval-mode per-sample forward is not supported")

    def _bias(self, g_sum, db):
        if self.b is None:
            return None
        if db is not None:
            return db.astype(self.b.dtype, copy=False)
        return g_sum()

    def backward(self, g):
        self._check_scale()
        site = self.site
        gT = np.ascontiguousarray(g.T, dtype=np.float32)
        dxT, dw, db = self.dp._backward(gT, np.ascontiguousarray(self.xq.T), self.sx, self.wq,
                                        self.sw, site.rng, site.layer_audit,
                                        need_dx=site.need_input_grad)
        db = self._bias(lambda: g.sum(axis=0).astype(self.b.dtype), db)
        dx = None if dxT is None else dxT.T
        if self.wmask is not None:
            dw = dw * self.wmask
        if self.xmask is not None and dx is not None:
            dx = dx * self.xmask
        return dx, dw, db


class _BatchedCtx(_Ctx):
    """Backward context of S Batched items quantized in one call (``_forward_batched``)."""

    def backward(self, g):
        site, dp = self.site, self.dp
        S = self.xq.shape[0]
        gT = np.ascontiguousarray(np.swapaxes(g, -1, -2), dtype=np.float32)     # (S, N, M)
        xT = np.ascontiguousarray(np.swapaxes(self.xq, -1, -2))                  # (S, K, M)
        need = site.need_input_grad
        if dp.items_backward_vectorised:
            dxT, dw = dp._backward_items(gT, xT, self.sx, self.wq, self.sw, site.rng,
                                         site.layer_audit, need_dx=need)
        else:
            # the item's Dense backward, item after item
            outs = [dp._backward(gT[s], xT[s], float(self.sx[s]), self.wq[s], float(self.sw[s]),
                                 site.rng, site.layer_audit, need_dx=need)[:2]
                    for s in range(S)]
            dw = np.stack([o[1] for o in outs])
            dxT = None if outs[0][0] is None else np.stack([o[0] for o in outs])
        if self.wmask is not None:
            dw = dw * self.wmask
        dx = None
        if dxT is not None:
            dx = np.ascontiguousarray(np.swapaxes(dxT, -1, -2))
            if self.xmask is not None:
                dx = dx * self.xmask
        return dx, dw, None


class _ConvCtx(_Ctx):
    """Backward context of an integer convolution (K-major or per-image reference)."""

    def __init__(self, dp, site, b, dtype, layout, xshape, hw, ref=False):
        super().__init__(dp, site, b, dtype)
        self.layout, self.xshape, self.hw, self.ref = layout, xshape, hw, ref

    def backward(self, g):
        lo, site = self.layout, self.site
        B, N = self.xshape[0], self.wq.shape[0]
        if g.shape != (B, N) + tuple(self.hw):
            raise ValueError(f"Conv2d backward: grad shape {g.shape} != {(B, N) + tuple(self.hw)}")
        gsum = (lambda: lo.bias_grad(g, self.b.dtype))
        gT = lo.grad_rows(g).astype(np.float32, copy=False)                   # (B, N, L)
        self._check_scale()
        if self.ref:
            dcols, dw, db = self.dp._backward(gT, self.xq, self.sx, self.wq, self.sw, site.rng,
                                              site.layer_audit, need_dx=site.need_input_grad)
            db = self._bias(gsum, db)
            if self.wmask is not None:
                dw = dw * self.wmask
            if dcols is None:
                return None, dw, db
            dx = col2im(dcols, self.xshape, lo.k, lo.stride, lo.padding)
        else:
            dcols, scale, dw, kmaj, db = self.dp._conv_backward_km(
                gT, self.xq, self.sx, self.wq, self.sw, site.rng, site.layer_audit,
                need_dx=site.need_input_grad)
            db = self._bias(gsum, db)
            if self.wmask is not None:
                dw = dw * self.wmask
            if dcols is None:
                return None, dw, db
            if kmaj:
                dx = col2im_km(dcols, self.xshape, lo.k, lo.stride, lo.padding, scale)
            else:
                dx = col2im(dcols, self.xshape, lo.k, lo.stride, lo.padding)
        if self.xmask is not None:
            dx = dx * self.xmask
        return dx, dw, db


def _backward_product(c, ints, rows, red, cols, fa, fb, adds):
    """A backward product's counts: integer operands through the accumulator (adds(): its
    add counts), or, without integer operands, a float32 product."""
    if not ints:
        return product(c, rows, red, cols, "fp32", "fp32",
                       ExactAccumulator().add_counts(rows, cols, red))
    return product(c, rows, red, cols, fa, fb, adds())


# ------------------------------------------------------------------- HDQT family
@register_datapath
@dataclass(frozen=True)
class IntegerDatapath(_IntegerForward):
    """Integer operands, integer tiled accumulators, transforms in the backward pass.

    forward_format / backward_format: signed integer formats (``int2`` ..
        ``int8``) of the forward operands and of every backward quantizer.
    forward_rounding: rounding of the forward quantizers (nearest).
    gradient_rounding: rounding of both error tensors (g H_o and g^T H_b).
    activation_rounding: rounding of H_b x (the weight-gradient activation).
    weight_rounding: rounding of H_o W (the input-gradient weight).
    transform: the backward transform on both operands of each backward
        product (block Hadamard, size None: the largest power of two dividing
        the axis; "none": no transform).
    accumulator: the integer accumulator of all three products (int: bits,
        tile, mode); backward_tile: the tile of the backward products (None:
        one tile over the whole reduction, as the released code).
    fwd_clip / bwd_clip: max-clip factors of the forward / backward quantizers.
    requantize: re-quantize the transformed operands (False: use the wider
        integers H Wq and H Xq as they are).
    fwd_quant / bwd_quant: the forward / backward quantizers on (checks).
    ste_raw_clip: the straight-through estimator zeroes the gradient where the
        raw input exceeds the largest integer level (the released code).
    eval_per_sample: in eval mode, one activation scale per test sample.
    """

    forward_format: FormatName = "int4"
    backward_format: FormatName = "int4"
    forward_rounding: Rounding = field(default_factory=Nearest)
    gradient_rounding: Rounding = field(default_factory=Stochastic)
    activation_rounding: Rounding = field(default_factory=Stochastic)
    weight_rounding: Rounding = field(default_factory=Nearest)
    transform: Transform = field(default_factory=BlockHadamard)
    accumulator: Accumulator = field(default_factory=IntAccumulator)
    backward_tile: Optional[int] = None
    fwd_clip: float = 0.975
    bwd_clip: float = 1.0
    requantize: bool = True
    fwd_quant: bool = True
    bwd_quant: bool = True
    ste_raw_clip: bool = True
    eval_per_sample: bool = False

    kind = "integer"

    @property
    def blas_exact(self) -> bool:
        """Integer operands in every product (float ones in the ablations without the
        forward or backward quantizers)."""
        return self.fwd_quant and self.bwd_quant

    def __post_init__(self):
        super().__post_init__()
        _int_bits("forward_format", self.forward_format)
        _int_bits("backward_format", self.backward_format)
        for f in ("forward_rounding", "gradient_rounding", "activation_rounding",
                  "weight_rounding"):
            _kernel_rounding(f, getattr(self, f))
        if not isinstance(self.accumulator, IntAccumulator):
            raise ValueError("the integer datapath needs an int accumulator "
                             "(kind = \"formats\" takes float accumulators)")
        if self.backward_tile is not None and (isinstance(self.backward_tile, bool) or
                                               not isinstance(self.backward_tile, int) or
                                               self.backward_tile < 1):
            raise ValueError(f"backward_tile must be a positive int or none, "
                             f"got {self.backward_tile!r}")
        for f in ("fwd_clip", "bwd_clip"):
            v = getattr(self, f)
            if not (isinstance(v, (int, float)) and 0.0 < v <= 1.0):
                raise ValueError(f"{f} must be in (0, 1], got {v!r}")

    # -- what the passes (intsim.arith.qmatmul) read
    @property
    def bwd_bits(self) -> int:
        return _int_bits("backward_format", self.backward_format)

    @property
    def bwd_tile(self):
        return self.backward_tile

    @property
    def grad_rounding(self) -> str:
        return self.gradient_rounding.kernel

    @property
    def act_rounding(self) -> str:
        return self.activation_rounding.kernel

    @property
    def ste_bound(self):
        return (1 << (self.bits - 1)) - 1 if self.ste_raw_clip else None

    @property
    def quantizes_forward(self) -> bool:
        return self.fwd_quant

    def per_sample_eval(self, training: bool) -> bool:
        return self.eval_per_sample and not training

    def quantize_fwd(self, x, batch_dims=0):
        """Forward quantizer: (q float32 integers, scale float or (S,) array)."""
        return quant.quantize_f32(x, self.bits, rounding=self.forward_rounding.kernel,
                                  signed=None, clip=self.fwd_clip, batch_dims=batch_dims)

    def op_counts(self, pass_, shape, training=True):
        """HDQT's operations (docs/method.md): forward quantizers and the tiled integer
        product; per backward product, the transforms of both operands along its
        reduction axis, their quantizers (per image for a convolution) and the
        integer product through the accumulator with ``backward_tile``."""
        c = OpCounts()
        M, K, N, S, L = shape.M, shape.K, shape.N, shape.S, shape.L
        fi, fb = f"int{self.bits}", f"int{self.bwd_bits}"
        if pass_ == "forward":
            if not self.fwd_quant:
                return product(c, M, K, N, "fp32", "fp32", ExactAccumulator().add_counts(M, N, K))
            quantizer(c, N * K)
            quantizer(c, shape.x, S if self.per_sample_eval(training) else 1)
            return product(c, M, K, N, fi, fi, self.accumulator.add_counts(M, N, K))
        bq = self.bwd_quant
        rq = bq and self.requantize
        ints = bq and (self.requantize or self.fwd_quant)
        tf = self.transform
        if pass_ == "backward_input":
            n_o = tf.block(N)
            c.update(tf.add_counts(N, K))                                   # H_o W
            c.update(tf.add_counts(N, M))                                   # g H_o
            if rq:
                quantizer(c, N * K, draws=self.weight_rounding.draws)
            if bq:
                quantizer(c, M * N, S, draws=self.gradient_rounding.draws)
            fw = fb if rq else f"int{self.bits + log2_int(n_o)}"
            return _backward_product(c, ints, M, N, K, fb, fw,
                                     lambda: self.accumulator.add_counts(M, K, N,
                                                                         tile=self._bwd_tile(N)))
        n_b = tf.block(L)
        c.update(tf.add_counts(L, K * S))                                   # H_b x per image
        c.update(tf.add_counts(L, N * S))                                   # g^T H_b per image
        if rq:
            quantizer(c, K * M, S, draws=self.activation_rounding.draws)
        if bq:
            quantizer(c, N * M, S, draws=self.gradient_rounding.draws)
        fx = fb if rq else f"int{self.bits + log2_int(n_b)}"
        return _backward_product(c, ints, N, M, K, fb, fx,
                                 lambda: self.accumulator.add_counts(
                                     N, K, L, tile=self._bwd_tile(L)).scaled(S))

    vectorised_items = True

    @property
    def items_backward_vectorised(self) -> bool:
        """The Batched items' backward on whole tensors (qmatmul.hdqt_backward_items): with
        requantized integer operands; the ablations run the items' Dense backward in turn."""
        return self.bwd_quant and self.requantize

    def _backward_items(self, gT, xT, sx, wq, sw, rng, audit, need_dx=True):
        return qm.hdqt_backward_items(gT, xT, sx, wq, sw, self, rng, audit, need_dx=need_dx)

    def _bwd_tile(self, R):
        """The backward tile over a reduction of R (None: one tile over it)."""
        return R if self.backward_tile is None else self.backward_tile

    def _backward(self, gT, xT, sx, wq, sw, rng, audit, need_dx=True):
        dxT, dw = qm.hdqt_backward(gT, xT, sx, wq, sw, self, rng, audit, need_dx=need_dx)
        return dxT, dw, None

    def _conv_backward_km(self, gT, cols, sx, wq, sw, rng, audit, need_dx=True):
        g = gT.transpose(1, 0, 2)                            # (N, B, L), a view: read in place
        dcols, dw = qm.hdqt_backward_km(g, cols, sx, wq, sw, self, rng, audit, need_dx=need_dx,
                                        scaled_dx=False)
        dcols, scale = dcols if isinstance(dcols, tuple) else (dcols, None)
        return dcols, scale, dw, True, None


@register_datapath
@dataclass(frozen=True)
class LUQDatapath(_IntegerForward):
    """LUQ (Chmiel et al., ICLR 2023) as the authors' baseline runs it.

    forward_format: integer format of the SAWB forward fake-quantizer
        (deterministic rounding, straight-through gradient).
    gradient_bits: bits of the logarithmic gradient format (sign + exponent
        bits; 4 gives magnitudes alpha 2^0..2^6 and 0), stochastic (unbiased).
    accumulator: the forward accumulator over the whole reduction (tile none),
        bias included; bits none: no limit.
    """

    forward_format: FormatName = "int4"
    gradient_bits: int = 4
    accumulator: Accumulator = field(
        default_factory=lambda: IntAccumulator(bits=None, tile=None, mode="clamp"))

    kind = "luq"
    bias_in_accumulator = True

    def __post_init__(self):
        super().__post_init__()
        _int_bits("forward_format", self.forward_format)
        g = self.gradient_bits
        if isinstance(g, bool) or not isinstance(g, int) or not 2 <= g <= 8:
            raise ValueError(f"gradient_bits must be an int in 2..8, got {g!r}")
        if not isinstance(self.accumulator, IntAccumulator):
            raise ValueError("the LUQ datapath needs an int accumulator")

    @property
    def grad_bits(self) -> int:
        return self.gradient_bits

    def op_counts(self, pass_, shape, training=True):
        """LUQ's operations: SAWB quantizers (two reductions: mean |x| and mean x^2) and
        the integer product forward; the logarithmic gradient quantizer (counted in
        backward_weight) and products of the log gradient and the forward operands
        summed in float32 backward."""
        c = OpCounts()
        M, K, N = shape.M, shape.K, shape.N
        fi, fg = f"int{self.bits}", f"log{self.gradient_bits}"
        if pass_ == "forward":
            for n in (N * K, shape.x):
                quantizer(c, n)
                c.add("quant:absmax", n)                     # the second SAWB moment
            return product(c, M, K, N, fi, fi, self.accumulator.add_counts(M, N, K))
        if pass_ == "backward_input":
            return product(c, M, N, K, fg, fi, ExactAccumulator().add_counts(M, K, N))
        quantizer(c, M * N, draws=True)
        return product(c, N, M, K, fg, fi, ExactAccumulator().add_counts(N, K, M))

    def quantize_fwd(self, x, batch_dims=0):
        """SAWB forward fake-quantizer: (q float32 integers, scale float); batch_dims 1: each
        item x[s] on its own, scales (S,)."""
        if batch_dims == 1:
            return luq.sawb_quantize_items(x, self.bits)
        if batch_dims:
            raise ValueError(f"LUQ quantizes whole tensors or items (batch_dims 0 or 1), "
                             f"got batch_dims={batch_dims}")
        return luq.sawb_quantize(x, self.bits)

    #: Batched items on whole tensors: SAWB and the log quantizer item by item in one call
    vectorised_items = True
    items_backward_vectorised = True

    def _backward_items(self, gT, xT, sx, wq, sw, rng, audit, need_dx=True):
        return qm.luq_backward_items(gT, xT, sx, wq, sw, self, rng, audit, need_dx=need_dx)

    def _backward(self, gT, xT, sx, wq, sw, rng, audit, need_dx=True):
        return qm.luq_backward(gT, xT, sx, wq, sw, self, rng, audit, need_dx=need_dx)

    def _conv_backward_km(self, gT, cols, sx, wq, sw, rng, audit, need_dx=True):
        """The float input gradient stays per image (one GEMM over the batch would sum
        in another order): dcols (B, K, L), kmajor False."""
        dcols, dw, db = qm.luq_backward_km(gT, cols, sx, wq, sw, self, rng, audit,
                                           need_dx=need_dx)
        return dcols, None, dw, False, db
