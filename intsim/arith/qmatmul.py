"""The quantized matmul shared by Linear and Conv2d: forward, backward, audit.

Shapes (docs/paper.md secs 3-5). A layer computes y = x W^T with
x: (M, K) rows (Linear: M = batch) or (S, M, K) unfolded columns of S images
(Conv2d: M = L spatial positions per image), W: (N, K).

HDQT forward: Xq, sx = Q_fwd(x); Wq, sw = Q_fwd(W); y = tiled_clamped(Xq Wq^T) sw sx.
HDQT backward, per "sample" s (Linear: the whole batch is one sample; Conv2d:
each image is one, with its own scales and draws):
    D  = clamp(Q_sr(g H_o) Q_det(H_o Wq))        dx = D sg1 s1 sw / n_o
    E  = clamp(Q_sr(g^T H_b) Q_sr(H_b Xq))        dW = sum_s E sg2 sx2 sx / n_b
LUQ: SAWB forward fake-quantization; backward with the log-quantized g.
Every integer matmul records into the layer's per-pass Audit.
"""
from dataclasses import dataclass, field

import numpy as np

from intsim.kernels import intmm, luq, quant

PASSES = ("forward", "backward_input", "backward_weight")


@dataclass
class PassAudit(intmm.Audit):
    """intmm.Audit plus running means of the fraction of quantizer levels used.

    levels: {tensor name: (sum of fractions, count)}; levels_used: mean over
    the tensors quantized in this pass of their running-mean fraction (None
    if none recorded). Conv tensors quantized per image are measured on the
    first image of the batch; whole-batch tensors on the whole tensor.
    """

    levels: dict = field(default_factory=dict)

    @property
    def levels_used(self):
        if not self.levels:
            return None
        return float(np.mean([s / n for s, n in self.levels.values()]))

    def record_levels(self, name, frac):
        s, n = self.levels.get(name, (0.0, 0))
        self.levels[name] = (s + float(frac), n + 1)

    def record_levels_many(self, name, fracs):
        """record_levels of each of fracs (float64 (S,)) in order: the same running sum
        (add.accumulate adds left to right, as S record_levels calls do)."""
        s, n = self.levels.get(name, (0.0, 0))
        total = np.add.accumulate(np.concatenate(([s], np.asarray(fracs, np.float64))))[-1]
        self.levels[name] = (float(total), n + len(fracs))

    def reset(self):
        super().reset()
        self.levels = {}
        return self

    def as_dict(self):
        """intmm.Audit.as_dict plus "levels_used" (float or None)."""
        d = super().as_dict()
        d["levels_used"] = self.levels_used
        return d


class LayerAudit:
    """Per-pass PassAudit of one quantized layer.

    ``pass_cls`` (default PassAudit) is the class of the per-pass audits; the
    float-datapath kinds take intsim.arith.lptorch.FloatPassAudit.
    Level fractions are sampled on every ``levels_every``-th forward (the
    first included; a running mean is all the audit needs, and counting levels
    of every tensor at every step cost ~20% of an FCNet step). track_levels
    False turns them off.
    """

    def __init__(self, track_levels=True, levels_every=8, pass_cls=None):
        self.track_levels = track_levels
        self.levels_every = int(levels_every)
        self._calls = 0
        self._on = True
        # pass_cls: the per-pass audit class (a float datapath's counts flushed values)
        self._p = {p: (pass_cls or PassAudit)() for p in PASSES}

    def tick(self):
        """Called once per forward: decides whether this step's tensors are counted."""
        self._on = self.track_levels and self._calls % max(1, self.levels_every) == 0
        self._calls += 1

    def __getitem__(self, p):
        return self._p[p]

    def passes(self):
        return dict(self._p)

    def levels(self):
        """{"<pass>.<tensor>": running-mean fraction of levels used}."""
        return {f"{p}.{t}": s / n for p, a in self._p.items() for t, (s, n) in a.levels.items()}

    def reset(self):
        for a in self._p.values():
            a.reset()
        self._calls = 0

    def record(self, p, name, q, bits, signed):
        if self._on:
            self._p[p].record_levels(name, quant.levels_used(q, bits, signed))

    def record_items(self, p, name, q, bits, signed):
        """record of each item q[s] of q (S, ...) in order, in one pass; signed: a bool or
        a bool array (S,)."""
        if self._on:
            self._p[p].record_levels_many(name, quant.levels_used_items(q, bits, signed))


def _qmax(bits, signed):
    return (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1


def _bs(s, ndim):
    """A per-sample scale array (S,) broadcast against an (S, ...) array of ndim dims."""
    if np.ndim(s) == 0:
        return s
    return np.asarray(s, np.float32).reshape((-1,) + (1,) * (ndim - 1))


def _first(q, per_sample):
    return q[0] if per_sample else q


# ---------------------------------------------------------------- forward
def quantize_forward(x, arith, bits_audit=None, name="x", batch_dims=0):
    """Forward quantizer of a weight or activation.

    Returns (q float32 integer values, scale float or (S,) array, signed, ste_mask or None).
    ste_mask (bool, x's shape) is where the gradient passes (docs/paper.md quirk 1),
    None when it passes everywhere.
    """
    q, s = arith.quantize_fwd(x, batch_dims=batch_dims)
    signed = bool(x.size and x.min() < 0)
    mask = None
    bound = arith.ste_bound
    if bound is not None:
        # max|x| recovered from the scale (m = clip max|x| = qmax s); exact test only if close
        est = float(np.max(s)) * _qmax(arith.bits, signed) / arith.fwd_clip
        if est > bound * (1 - 1e-3):
            mask = np.abs(x) <= bound
            if mask.all():
                mask = None
    if bits_audit is not None:
        audit, p = bits_audit
        audit.record(p, name, _first(q, batch_dims > 0), arith.bits, signed)
    return q, s, signed, mask


def forward_matmul(xq, wq, arith, audit, bias_units=None):
    """Integer product of quantized operands: xq (..., M, K) @ wq (N, K)^T -> (..., M, N).

    Exact integers (float32 or float64); HDQT tiles and clamps per arith,
    LUQ clamps over the whole reduction when acc_bits is set. The operand
    bound passed for x is the unsigned one (>= the signed one), so per-sample
    signedness never breaks it. bias_units (N,): the bias in accumulator
    units (b / (sx sw)), added inside the accumulator (see _add_bias); the
    result is then float64, not integer.
    """
    out = intmm.matmul_acc(xq, wq.T, tile=arith.fwd_tile, audit=audit["forward"],
                           a_max=_qmax(arith.bits, False), b_max=_qmax(arith.bits, True),
                           **_acc_args(arith, bias_units))
    return out if bias_units is None else _add_bias(out, bias_units, arith, audit["forward"])


def quantize_forward_items(x, arith, bits_audit, name="x"):
    """quantize_forward of each item x[s] of x (S, ...) in one call (batch_dims=1):
    the same values, scales, straight-through masks and level records as S calls.

    Returns (q float32 integer values, scales (S,) float64, ste_mask (x's shape) or None).
    """
    S = x.shape[0]
    q, s = arith.quantize_fwd(x, batch_dims=1)
    flat = x.reshape(S, -1)
    signed = (flat.min(axis=1) < 0) if flat.shape[1] else np.zeros(S, bool)
    mask = None
    bound = arith.ste_bound
    if bound is not None:
        qmax = np.where(signed, _qmax(arith.bits, True), _qmax(arith.bits, False))
        est = np.asarray(s, np.float64) * qmax / arith.fwd_clip
        hit = est > bound * (1 - 1e-3)
        if hit.any():
            mask = np.ones(x.shape, bool)
            mask[hit] = np.abs(x[hit]) <= bound
            if mask.all():
                mask = None
    if bits_audit is not None:
        audit, p = bits_audit
        audit.record_items(p, name, q, arith.bits, signed)
    return q, s, mask


def forward_matmul_items(xq, wq, arith, audit):
    """S independent integer products xq[s] (M, K) @ wq[s] (N, K)^T -> (S, M, N), each as
    forward_matmul (no bias): the same tiles along K, clamps and audit counts."""
    return intmm.matmul_acc(xq, np.swapaxes(wq, -1, -2), tile=arith.fwd_tile,
                            audit=audit["forward"], a_max=_qmax(arith.bits, False),
                            b_max=_qmax(arith.bits, True), **_acc_args(arith, None))


def forward_matmul_T(wq, colsT, arith, audit, bias_units=None):
    """Feature-major forward: wq (N, K) @ colsT (..., K, L) -> (..., N, L) exact integers.

    Same tiles over K as forward_matmul (the tile sums are symmetric in the
    operands), so (y^T) = (x W^T)^T bit for bit. bias_units as forward_matmul.
    """
    out = intmm.matmul_acc(wq, colsT, tile=arith.fwd_tile, audit=audit["forward"],
                           a_max=_qmax(arith.bits, True), b_max=_qmax(arith.bits, False),
                           **_acc_args(arith, bias_units))
    return out if bias_units is None else _add_bias(out, bias_units[:, None], arith,
                                                   audit["forward"])


def bias_units(arith, bias, sx, sw):
    """The bias in accumulator units, b / (sx sw) float64 (N,), when the
    arithmetic adds it inside the accumulator (arith.bias_in_accumulator);
    None when the layer adds it to the float output instead (also for a zero
    scale, e.g. an all-zero input, where accumulator units are undefined)."""
    if bias is None or not arith.bias_in_accumulator:
        return None
    if np.ndim(sx) != 0:
        raise ValueError("a bias inside the accumulator needs one input scale per tensor")
    unit = float(sx) * float(sw)
    if unit == 0:
        return None
    return bias.astype(np.float64) / unit


def _acc_args(arith, bias_units):
    """matmul_acc's accumulator arguments. With a bias inside the accumulator,
    clamp and wrap sum the products without limit first (the limit applies to
    products + bias, as the authors' AccQuant clamps F.linear(..., bias));
    saturate saturates every product addition, then the bias addition."""
    limit = arith.acc_limit
    mode = arith.acc_mode if limit is not None else "wide"
    if bias_units is not None and mode in ("clamp", "wrap"):
        return {"acc_bits": None, "mode": "wide"}
    return {"acc_bits": limit, "mode": mode}


def _add_bias(acc, bias_units, arith, audit):
    """acc + bias_units through the accumulator's limit (float64).

    Counted like a tile sum: one more accumulator result per output, saturated
    when acc + bias leaves [-L, L] (wrap: [-L-1, L]); wrapped values fold modulo
    2^acc_bits. Without a limit: the plain sum.
    """
    v = acc.astype(np.float64) + bias_units
    limit = arith.acc_limit
    if limit is None:
        return v
    L = float((1 << (limit - 1)) - 1)
    lo = -L - 1 if arith.acc_mode == "wrap" else -L
    if audit is not None:
        if arith.acc_mode == "saturate":
            audit.tiles += v.size
        audit.saturated += int(np.count_nonzero((v > L) | (v < lo)))
        if v.size:
            audit.max_abs = max(audit.max_abs, int(np.ceil(np.abs(v).max())))
    if arith.acc_mode == "wrap":
        h = L + 1
        return v - 2 * h * np.floor((v + h) / (2 * h))
    return np.clip(v, -L, L)


# ---------------------------------------------------------------- backward
def _skip_dx_draws(arith, rng, n_w, n_g, requantized, grads_quantized):
    """need_dx=False: the input-gradient pass is not computed (nobody reads a first
    layer's input gradient, and hardware would not run it), but the Generator moves
    on by the draws it would have taken (H_o W, then g H_o), so the weight gradient's
    draws, and every result, stay those of a run that computes it."""
    if requantized and arith.weight_rounding.draws:
        quant.skip_draws(rng, n_w)
    if grads_quantized and arith.grad_rounding == "stochastic":
        quant.skip_draws(rng, n_g)


def hdqt_backward(gT, xT, sx, wq, sw, arith, rng, audit, need_dx=True):
    """HDQT backward of y = (x sx)(wq sw)^T (docs/paper.md secs 4-5), feature-major layout.

    gT: (N, M) or (S, N, M) float32 output gradient, transposed (M rows of the
    H_b "batch": Linear's batch, or a conv image's L positions; S images with
    separate scales and draws); xT: matching (K, M) / (S, K, M) quantized input
    (float32 integers, scale sx float); wq: (N, K) quantized weight, scale sw.
    Returns (dxT like xT float32 or None, dW (N, K) float32).
    Draw order from rng: H_o g, then H_b x, then g^T H_b.
    """
    per = gT.ndim == 3
    bd = 1 if per else 0
    bits = arith.bwd_bits
    N, M = gT.shape[-2:]
    qm = _qmax(bits, True)
    tf = arith.transform
    n_o = tf.block(N)
    n_b = tf.block(M)
    bq = arith.bwd_quant
    ints = bq and (arith.requantize or arith.fwd_quant)   # integer operands -> matmul_acc
    limit = arith.acc_limit if ints else None
    mode = arith.acc_mode if limit is not None else "wide"
    clip = arith.bwd_clip
    rq = bq and arith.requantize
    grr = arith.grad_rounding

    def qgrad(t, p, name):
        """The error tensor t quantized per sample (grad_rounding) and audited, or t itself."""
        if not bq:
            return t, 1.0
        tq, st = quant.quantize_f32(t, bits, rounding=grr, signed=True, clip=clip, rng=rng,
                                    batch_dims=bd)
        audit.record(p, name, _first(tq, per), bits, True)
        return tq, st

    def mm(a, b, p, amax, bmax):
        if not ints:
            return np.matmul(a, b)
        return intmm.matmul_acc(a, b, acc_bits=limit, tile=arith.bwd_tile, mode=mode,
                                audit=audit[p], a_max=amax, b_max=bmax)

    dxT = None
    if need_dx:
        w1 = tf.apply(wq, 0) if n_o > 1 else wq          # H_o W  (N, K)
        if rq:
            w1q, s1 = quant.quantize_f32(w1, bits, rounding=arith.weight_rounding.kernel, signed=True,
                                         clip=clip, rng=rng)
            audit.record("backward_input", "HoW", w1q, bits, True)
            w1max = qm
        else:
            w1q, s1 = w1, 1.0
            w1max = None
        g1 = tf.apply(gT, -2) if n_o > 1 else gT          # (g H_o)^T
        g1q, sg1 = qgrad(g1, "backward_input", "gHo")
        # integer operands: exact in any BLAS orientation, so the transposed view is used as is
        w1t = w1q.T if ints else np.ascontiguousarray(w1q.T)
        d = mm(w1t, g1q, "backward_input", w1max, qm if bq else None)
        coef = _bs(np.asarray(sg1) * (s1 * sw / n_o), d.ndim)
        dxT = (d * coef).astype(np.float32, copy=False)
    else:
        _skip_dx_draws(arith, rng, wq.size, gT.size, rq, bq)

    x2 = tf.apply(xT, -1) if n_b > 1 else xT              # (H_b X)^T
    if rq:
        x2q, sx2 = quant.quantize_f32(x2, bits, rounding=arith.act_rounding, signed=True,
                                      clip=clip, rng=rng, batch_dims=bd)
        audit.record("backward_weight", "HbX", _first(x2q, per), bits, True)
        x2max = qm
    else:
        x2q, sx2 = x2, 1.0
        x2max = None
    g2 = tf.apply(gT, -1) if n_b > 1 else gT              # g^T H_b
    g2q, sg2 = qgrad(g2, "backward_weight", "gHb")
    coef = np.asarray(sg2) * np.asarray(sx2) * (sx / n_b)
    if ints and not per:
        # E = (g^T H_b) (H_b X): (N, M) @ (M, K), exact integers, so computing it directly
        # (instead of E^T and a transposed copy) gives the same bits
        e = mm(g2q, x2q.T, "backward_weight", qm if bq else None, x2max)
        return dxT, np.ascontiguousarray(e * float(coef), dtype=np.float32)
    # E^T = (H_b X)^T (g^T H_b)^T per sample: (K, M) @ (M, N)
    g2t = np.swapaxes(g2q, -1, -2)
    eT = mm(x2q, g2t if ints else np.ascontiguousarray(g2t), "backward_weight", x2max,
            qm if bq else None)
    if per:
        coef = np.broadcast_to(coef, eT.shape[:1])
        dwT = np.tensordot(coef.astype(eT.dtype), eT, axes=(0, 0))
    else:
        dwT = eT * float(coef)
    return dxT, np.ascontiguousarray(dwT.T, dtype=np.float32)


def hdqt_backward_items(gT, xT, sx, wq, sw, arith, rng, audit, need_dx=True):
    """S independent dense HDQT backward passes (requantized operands: bwd_quant and
    requantize), item s the arithmetic of hdqt_backward(gT[s], xT[s], sx[s], wq[s], sw[s])
    (a Dense layer's: its own transforms, scales, accumulator tiles, levels records),
    computed on whole (S, ...) tensors.

    gT: (S, N, M) float32; xT: (S, K, M) quantized inputs, scales sx (S,); wq: (S, N, K)
    quantized weights, scales sw (S,). Returns (dxT (S, K, M) float32 or None,
    dW (S, N, K) float32).
    Draw order from rng, tensor by tensor, each item-major (rng.random((S,) + shape)):
    H_o W (when its rounding draws), g H_o, then H_b x, then g^T H_b.
    """
    S, N, M = gT.shape
    bits = arith.bwd_bits
    qmx = _qmax(bits, True)
    tf = arith.transform
    n_o = tf.block(N)
    n_b = tf.block(M)
    limit = arith.acc_limit
    mode = arith.acc_mode if limit is not None else "wide"
    clip = arith.bwd_clip
    grr = arith.grad_rounding

    def q(t, rounding, p, name):
        tq, st = quant.quantize_f32(np.ascontiguousarray(t), bits, rounding=rounding,
                                    signed=True, clip=clip, rng=rng, batch_dims=1)
        audit.record_items(p, name, tq, bits, True)
        return tq, st

    def mm(a, b, p):
        return intmm.matmul_acc(a, b, acc_bits=limit, tile=arith.bwd_tile, mode=mode,
                                audit=audit[p], a_max=qmx, b_max=qmx)

    dxT = None
    if need_dx:
        w1 = tf.apply(wq, -2) if n_o > 1 else wq          # H_o W  (S, N, K)
        w1q, s1 = q(w1, arith.weight_rounding.kernel, "backward_input", "HoW")
        g1 = tf.apply(gT, -2) if n_o > 1 else gT          # (g H_o)^T  (S, N, M)
        g1q, sg1 = q(g1, grr, "backward_input", "gHo")
        d = mm(np.swapaxes(w1q, -1, -2), g1q, "backward_input")       # (S, K, M)
        # float64 factors, as hdqt_backward's numpy float64 scalar per item
        coef = np.asarray(sg1, np.float64) * (s1 * sw / n_o)
        dxT = (d * coef.reshape(S, 1, 1)).astype(np.float32, copy=False)
    else:
        _skip_dx_draws(arith, rng, wq.size, gT.size, True, True)

    x2 = tf.apply(xT, -1) if n_b > 1 else xT              # (H_b X)^T  (S, K, M)
    x2q, sx2 = q(x2, arith.act_rounding, "backward_weight", "HbX")
    g2 = tf.apply(gT, -1) if n_b > 1 else gT              # g^T H_b  (S, N, M)
    g2q, sg2 = q(g2, grr, "backward_weight", "gHb")
    coef = np.asarray(sg2, np.float64) * np.asarray(sx2, np.float64) * (sx / n_b)
    e = mm(g2q, np.swapaxes(x2q, -1, -2), "backward_weight")           # (S, N, K)
    # hdqt_backward scales by a Python float: cast to the product's dtype
    dw = e * coef.astype(e.dtype).reshape(S, 1, 1)
    return dxT, np.ascontiguousarray(dw, dtype=np.float32)


def luq_backward(gT, xT, sx, wq, sw, arith, rng, audit, need_dx=True):
    """LUQ backward, feature-major: gT (N, M) or (S, N, M) log-quantized (one alpha
    for the whole tensor), then ordinary float32 matmuls with the forward's
    fake-quantized operands. xT: (K, M) / (S, K, M) (scale sx); wq (N, K) (scale sw).
    Returns (dxT like xT or None, dW (N, K), db (N,)), float32; db is the bias
    gradient summed from the log-quantized gradient (the authors' bias is added
    before their gradient quantizer).
    """
    code, gq, _ = luq.log_quantize(gT, arith.grad_bits, rng)
    audit.record("backward_input", "g_log", code, arith.grad_bits, True)
    dxT = np.matmul(wq.T * np.float32(sw), gq) if need_dx else None
    dwT = np.matmul(xT, np.swapaxes(gq, -1, -2))
    if dwT.ndim == 3:
        dwT = dwT.sum(axis=0)
    return dxT, np.ascontiguousarray(dwT.T * np.float32(sx), dtype=np.float32), _bias_grad(gq)


def luq_backward_items(gT, xT, sx, wq, sw, arith, rng, audit, need_dx=True):
    """luq_backward of S items in one call: gT (S, N, M), xT (S, K, M), scales sx, sw (S,),
    wq (S, N, K); each item's gradient log-quantized with its own alpha, the draws in item
    order. Returns (dxT (S, K, M) or None, dW (S, N, K)) float32, the values of S calls."""
    code, gq, _ = luq.log_quantize_items(gT, arith.grad_bits, rng)
    audit.record_items("backward_input", "g_log", code, arith.grad_bits, True)
    S = gT.shape[0]
    dxT = None
    if need_dx:
        wT = np.swapaxes(wq, -1, -2) * np.asarray(sw, np.float32).reshape(S, 1, 1)
        dxT = np.matmul(wT, gq)
    dwT = np.matmul(xT, np.swapaxes(gq, -1, -2))
    dw = np.swapaxes(dwT, -1, -2) * np.asarray(sx, np.float32).reshape(S, 1, 1)
    return dxT, np.ascontiguousarray(dw, dtype=np.float32)


def _bias_grad(gq):
    """Bias gradient from a feature-major gradient (N, M) or (S, N, M): (N,) float32."""
    return gq.sum(axis=tuple(i for i in range(gq.ndim) if i != gq.ndim - 2), dtype=np.float32)


# ------------------------------------------------------- K-major (conv) layout
def hdqt_backward_km(g, xk, sx, wq, sw, arith, rng, audit, need_dx=True, scaled_dx=True):
    """hdqt_backward for S images in the K-major layout, bit for bit.

    g: (N, S, M) float32 output gradient, any strides (M positions of image s in g[:, s]);
    xk: (K, S, M) quantized input (float32 integers, scale sx float); wq (N, K),
    scale sw. Returns (dx (K, S, M) float32 or None, dW (N, K) float32): the
    same values, audit counts and draws as hdqt_backward of the (S, N, M) /
    (S, K, M) transposes, with the input-gradient product one (K, N) @ (N, S*M)
    GEMM instead of S small ones and no transposed copies of the large arrays.
    scaled_dx False may return dx as (d (K, S, M) float32, coef (S,) float32), the
    unscaled product and the per-image factors, so that col2im applies them.
    """
    N, S, M = g.shape
    K = xk.shape[0]
    bits = arith.bwd_bits
    qm = _qmax(bits, True)
    tf = arith.transform
    n_o = tf.block(N)
    n_b = tf.block(M)
    if not (arith.bwd_quant and arith.requantize):
        # the ablations without requantized integer operands: the reference path
        dxT, dW = hdqt_backward(np.ascontiguousarray(g.transpose(1, 0, 2)),
                                np.ascontiguousarray(xk.transpose(1, 0, 2)),
                                sx, wq, sw, arith, rng, audit, need_dx)
        return (None if dxT is None else np.ascontiguousarray(dxT.transpose(1, 0, 2))), dW
    limit = arith.acc_limit
    mode = arith.acc_mode if limit is not None else "wide"
    clip = arith.bwd_clip
    grr = arith.grad_rounding

    def mm(a, b, p):
        return intmm.matmul_acc(a, b, acc_bits=limit, tile=arith.bwd_tile, mode=mode,
                                audit=audit[p], a_max=qm, b_max=qm)

    dx = None
    if need_dx:
        w1 = tf.apply(wq, 0) if n_o > 1 else wq           # H_o W  (N, K)
        w1q, s1 = quant.quantize_f32(w1, bits, rounding=arith.weight_rounding.kernel, signed=True,
                                     clip=clip, rng=rng)
        audit.record("backward_input", "HoW", w1q, bits, True)
        g1q, sg1 = _transformed_items(tf, g, 0, bits, grr, clip, rng)      # (g H_o)^T
        audit.record("backward_input", "gHo", g1q[:, 0], bits, True)
        d = mm(w1q.T, g1q.reshape(N, S * M), "backward_input").reshape(K, S, M)
        coef = (np.asarray(sg1) * (s1 * sw / n_o)).astype(np.float32)
        if scaled_dx or d.dtype != np.float32:
            dx = (d * coef.reshape(1, S, 1)).astype(np.float32, copy=False)
        else:
            dx = (d, coef)      # the caller applies the float32 factors where it reads d
    else:
        _skip_dx_draws(arith, rng, wq.size, g.size, True, True)

    x2q, sx2 = _transformed_items(tf, xk, 2, bits, arith.act_rounding, clip, rng)  # (H_b X)^T
    audit.record("backward_weight", "HbX", x2q[:, 0], bits, True)
    g2q, sg2 = _transformed_items(tf, g, 2, bits, grr, clip, rng)                 # g^T H_b
    audit.record("backward_weight", "gHb", g2q[:, 0], bits, True)
    coef = np.asarray(sg2) * np.asarray(sx2) * (sx / n_b)
    # E^T per image: (K, M) @ (M, N), rows of the K-major arrays
    eT = intmm.matmul_acc_km(x2q, g2q, acc_bits=limit, tile=arith.bwd_tile, mode=mode,
                             audit=audit["backward_weight"], a_max=qm, b_max=qm)
    dwT = np.tensordot(coef.astype(eT.dtype), np.ascontiguousarray(eT), axes=(0, 0))
    return dx, np.ascontiguousarray(dwT.T, dtype=np.float32)


def _transformed_items(tf, t, axis, bits, rounding, clip, rng):
    """quant.quantize_items(tf.apply(t, axis), ...) (signed) of the (A, S, M) array t (any
    strides): one fused pass when the transform has a fused plan, bit for bit."""
    plan = tf.fused_plan(t.shape, axis)
    if plan is not None:
        r = quant.hadamard_quantize_items(t, axis, plan[0], plan[1], bits, rounding=rounding,
                                          signed=True, clip=clip, rng=rng)
        if r is not None:
            return r
    t = np.ascontiguousarray(t)
    if tf.block(t.shape[axis]) > 1:
        t = tf.apply(t, axis)
    return quant.quantize_items(t, bits, rounding=rounding, signed=True, clip=clip, rng=rng)


def luq_backward_km(g, xk, sx, wq, sw, arith, rng, audit, need_dx=True):
    """luq_backward with the input xk (K, S, M) in the K-major layout; g (S, N, M).

    Returns (dxT (S, K, M) or None, dW (N, K), db (N,)) bit for bit as luq_backward: the
    float input-gradient product stays per image (one (K, N) @ (N, S*M) GEMM
    sums in another order), the weight gradient reads xk through strided views.
    """
    code, gq, _ = luq.log_quantize(g, arith.grad_bits, rng)
    audit.record("backward_input", "g_log", code, arith.grad_bits, True)
    dx = np.matmul(wq.T * np.float32(sw), gq) if need_dx else None
    dwT = np.matmul(xk.transpose(1, 0, 2), np.swapaxes(gq, -1, -2)).sum(axis=0)
    return dx, np.ascontiguousarray(dwT.T * np.float32(sx), dtype=np.float32), _bias_grad(gq)
