#!/usr/bin/env python
"""Write parity fixtures from the paper authors' quantized layers.

Runs the authors' own layers (QuantizedCIL: quant.py's Linear_Ours /
Conv2d_Ours for HDQT, luq/LUQ.py's Linear_LUQ / Conv2d_LUQ for LUQ) forward
and backward on small random tensors and saves, per case, one .npz with the
inputs, weights, output gradient, the authors' outputs, dx, dW, db, the
authors' forward integer codes and scales, and the settings on both sides
(a JSON string under "meta"). tests/test_parity.py replays every case through
intsim.nn.Linear / intsim.nn.Conv2d and compares.

This script needs PyTorch and a checkout of the authors' repository; it runs
in its own virtual environment, never in intsim's (see README.md here):

    /tmp/parity-venv/bin/python benchmarks/parity/make_fixtures.py \
        --qcil /tmp/qcil --commit <sha of the checkout> --out tests/fixtures/parity

Determinism (the authors' backward is stochastic):
- HDQT: their stochastic-rounding quantizer ``dynamic_stoch`` (used for
  g H_o, g^T H_b and H_b X with --quantBWDGrad1/2=stoch --quantBWDAct=stoch,
  the paper's settings) is replaced for the run by their own deterministic
  ``dynamic_intQ(x, scale=1.)`` (the quantizer their code uses for H_o W):
  the same max|x| scale, the same clamp and division, rounding to nearest
  (torch.round, half to even) instead of a Bernoulli draw. intsim runs
  HDQT(grad_rounding="nearest", act_rounding="nearest") with bwd_clip=1.0.
- LUQ: the log gradient quantizer's two random draws per element
  (torch.rand for the stochastic underflow, Tensor.uniform_(-0.5, 0.5) for
  the log-domain rounding noise) are replaced by fixed draws u (float32,
  from np.random.Generator(PCG64(seed))): torch.rand -> u and
  uniform_(a, b) -> a + (b - a) (1 - u), i.e. noise = 0.5 - u. With that, the
  authors' code rounds y = |g|/alpha in [2^e, 2^(e+1)) up a level exactly
  when u <= y/2^e - 1 (and below alpha keeps +-alpha when u <= y), which is
  intsim's rule (intsim/kernels/luq.py log_quantize: up when u < ..., u =
  rng.random(shape, float32) of the layer's rng) except on a set of measure
  2^-24. The test gives intsim's layer rng = Generator(PCG64(seed)), so both
  sides use the same u per element (intsim draws in its own layout: g^T,
  (N, B), for Linear; (B, N, H, W) for conv).
- Inputs are redrawn until every forward-quantized entry is at least
  MARGIN (relative) away from a rounding boundary (see boundary_margin).
"""
import argparse
import contextlib
import hashlib
import json
import math
import os
import sys
import types
import zlib

import numpy as np
import torch

# ------------------------------------------------------------------ loading

AUTHOR_FILES = ("quant.py", "luq/LUQ.py", "hadamard.py")


def load_authors(qcil):
    """Import the authors' quant.py and luq/LUQ.py from a checkout at ``qcil``.

    quant.py imports torchvision.transforms and utils.data_manager only for
    its training helpers (calibration data loaders), never in the layers;
    both are stubbed so that neither torchvision nor the data sets are needed.
    """
    qcil = os.path.abspath(qcil)
    for f in AUTHOR_FILES:
        if not os.path.isfile(os.path.join(qcil, f)):
            raise SystemExit(f"{qcil} has no {f}: not a QuantizedCIL checkout")
    sys.path.insert(0, qcil)
    if "torchvision" not in sys.modules:
        tv = types.ModuleType("torchvision")
        tv.transforms = types.ModuleType("torchvision.transforms")
        sys.modules["torchvision"] = tv
        sys.modules["torchvision.transforms"] = tv.transforms
    dm = types.ModuleType("utils.data_manager")
    dm.DummyDataset = object
    sys.modules["utils.data_manager"] = dm
    import quant  # noqa: E402  (the authors' module)
    from luq import LUQ  # noqa: E402
    return quant, LUQ


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ------------------------------------------------------------ configuration

GLOBAL_ARGS = {"quantile": 0.975, "rec_grads": False, "dyn_scale": 2.0}


def acc_bits(acc):
    """"int8" -> 8, "int6" -> 6, "none" -> None."""
    return None if acc == "none" else int(acc[3:])


def configure_hdqt(quant, acc):
    """The README's HDQT command (--quantMethod ours --quantBits 4
    --quantAccBits 8 --quantFWDWgt int --quantFWDAct int --quantBWDAct stoch
    --quantBWDWgt int --quantBWDGrad1 stoch --quantBWDGrad2 stoch
    --quantBlockSize 32), with the accumulator clamp switched on.

    acc: "int8" -> quantAccFWD = quantAccBWD = "int", quantAccBits = 8
    (at this commit every HDQT clamp, forward tiles included, is gated by
    quantAccBWD == "int"; in the July 2024 release by the booleans
    quantAccFWD / quantAccBWD, default True); "int6" likewise with 6 bits;
    "none" -> both None (no clamp).
    """
    s = dict(quantMethod="ours", quantBits=4, quantAccBits=acc_bits(acc) or 16,
             quantAccFWD="int" if acc_bits(acc) else None,
             quantAccBWD="int" if acc_bits(acc) else None,
             quantFWDWgt="int", quantFWDAct="int", quantBWDWgt="int", quantBWDAct="stoch",
             quantBWDGrad1="stoch", quantBWDGrad2="stoch", quantBlockSize=32,
             quantHadOff=False, quantRequantize=True, quantBatchSize=128)
    for k, v in s.items():
        setattr(quant, k, v)
    quant.global_args = dict(GLOBAL_ARGS)
    return dict(s, quantile=GLOBAL_ARGS["quantile"])


def configure_luq(quant, LUQ, variant, acc):
    """--quantMethod luq_og (the README's) or luq_corrected (run2.sh's DSADS
    runs); acc "int8": LUQ.quantAccFWD = "int", quantAccBits = 8 (the clamp of
    AccQuant over the whole reduction); "none": quantAccFWD None."""
    quant.quantMethod = variant
    LUQ.corrected_version = variant == "luq_corrected"
    LUQ.quantAccBits = acc_bits(acc) or 16
    LUQ.quantAccFWD = "int" if acc_bits(acc) else None
    LUQ.global_args = dict(GLOBAL_ARGS)
    return dict(quantMethod=variant, corrected_version=LUQ.corrected_version,
                quantAccBits=LUQ.quantAccBits, quantAccFWD=LUQ.quantAccFWD,
                abits=4, wbits=4, grad_bits_in_code=3, c1=12.1, c2=12.2)


# ------------------------------------------------------------ determinism

def det_stoch(quant):
    """Nearest-rounding stand-in for quant.dynamic_stoch (see module docstring)."""
    def dynamic_stoch_nearest(x, scale=1):
        return quant.dynamic_intQ(x, scale=1.)
    return dynamic_stoch_nearest


@contextlib.contextmanager
def patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


@contextlib.contextmanager
def fixed_draws(u):
    """torch.rand(shape) -> u, Tensor.uniform_(a, b) -> a + (b - a)(1 - u), for the
    duration of one LUQ backward (the only callers there are GradStochasticClippingQ)."""
    ut = torch.from_numpy(np.ascontiguousarray(u, dtype=np.float32))
    calls = {"rand": 0, "uniform_": 0}
    orig_rand, orig_uniform = torch.rand, torch.Tensor.uniform_

    def rand(*size, **kw):
        shape = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
        assert tuple(shape) == tuple(ut.shape), (shape, ut.shape)
        calls["rand"] += 1
        return ut.clone()

    def uniform_(self, a=0.0, b=1.0, **kw):
        assert tuple(self.shape) == tuple(ut.shape), (self.shape, ut.shape)
        calls["uniform_"] += 1
        with torch.no_grad():
            self.copy_(a + (b - a) * (1.0 - ut))
        return self

    torch.rand = rand
    torch.Tensor.uniform_ = uniform_
    try:
        yield calls
    finally:
        torch.rand = orig_rand
        torch.Tensor.uniform_ = orig_uniform


class Recorder:
    """Wraps an autograd Function's apply to keep its (input, outputs)."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = []

    def apply(self, *args):
        out = self.fn.apply(*args)
        self.calls.append((args, out))
        return out


def npf(t):
    return t.detach().cpu().numpy().astype(np.float32)


# ------------------------------------------------------------------ cases

def data(rng, shape, kind, scale=1.0):
    z = rng.standard_normal(shape).astype(np.float32) * np.float32(scale)
    if kind == "unsigned":
        z = np.maximum(z, 0)
    return z


def case_rng(name, attempt=0):
    """Each case's own data stream (independent of the list of cases)."""
    return np.random.default_rng([20240716, zlib.crc32(name.encode()), attempt])


#: relative distance from a rounding boundary that the forward quantizers' inputs keep
MARGIN = {"hdqt": 1e-6, "luq": 2e-5}


def boundary_margin(v, scale, qn, qp):
    """Smallest |t - (k + 1/2)| / |t| over the entries t = v / scale inside (qn, qp), i.e.
    how far (relatively) the nearest entry is from flipping its rounding. The two sides'
    forward scales differ by float rounding (HDQT: <= 1 ulp; LUQ's SAWB clip is a float32
    mean here and a float64 one in intsim: up to ~2e-6), so an entry closer than that to a
    rounding boundary may round differently for reasons that are not the method's."""
    t = np.asarray(v, np.float64) / float(scale)
    t = t[(t > qn) & (t < qp) & (t != 0)]
    if t.size == 0:
        return float("inf")
    return float(np.min(np.abs(t - np.floor(t) - 0.5) / np.abs(t)))


def attempts(name, run, accept=lambda arrays, meta: True, tries=50):
    """run(rng) -> (arrays, meta, margin, method); the first draw whose forward codes keep
    the MARGIN from rounding boundaries (and that ``accept`` takes) is the fixture."""
    for attempt in range(tries):
        arrays, meta, margin, method = run(case_rng(name, attempt))
        if margin >= MARGIN[method] and accept(arrays, meta):
            meta.update(data_attempt=attempt, rounding_margin=margin,
                        rounding_margin_required=MARGIN[method])
            return arrays, meta
    raise RuntimeError(f"{name}: no acceptable draw in {tries} attempts")


def hdqt_case(quant, name, layer, acc, **kw):
    return attempts(name, lambda rng: hdqt_once(quant, name, layer, acc, rng, **kw))


def hdqt_once(quant, name, layer, acc, rng, *, B, K=None, N, C=None, H=None, k=3, stride=1,
              padding=1, bias=True, kind="signed", xscale=1.0, desc=""):
    aset = configure_hdqt(quant, acc)
    torch.manual_seed(0)
    if layer == "linear":
        m = quant.Linear_Ours(in_features=K, out_features=N, bias=bias, uname="fixture")
        x = data(rng, (B, K), kind, xscale)
    else:
        m = quant.Conv2d_Ours(in_channels=C, out_channels=N, kernel_size=k, stride=stride,
                              padding=padding, padding_mode="zeros", dilation=1, groups=1,
                              bias=bias, uname="fixture")
        x = data(rng, (B, C, H, H), kind, xscale)
    with torch.no_grad():          # weights and bias drawn here, copied to intsim by the test
        m.weight.copy_(torch.from_numpy(
            rng.uniform(-1, 1, tuple(m.weight.shape)).astype(np.float32)
            / np.float32(math.sqrt(m.weight[0].numel()))))
        if bias:
            m.bias.copy_(torch.from_numpy(
                rng.uniform(-0.1, 0.1, tuple(m.bias.shape)).astype(np.float32)))
    rec = Recorder(quant.dynamic_intQ_FWD)
    xt = torch.from_numpy(x).requires_grad_(True)
    with patched(quant, "dynamic_intQ_FWD", rec), patched(quant, "dynamic_stoch", det_stoch(quant)):
        y = m(xt)
        y = y["logits"] if isinstance(y, dict) else y
        g = rng.standard_normal(tuple(y.shape)).astype(np.float32) * np.float32(0.01)
        y.backward(torch.from_numpy(g))
    (wq, sw), (xq, sx) = [out for _, out in rec.calls]
    arrays = dict(x=x, w=npf(m.weight), g=g, y=npf(y), dx=npf(xt.grad), dw=npf(m.weight.grad),
                  wq=npf(wq), sw=np.float32(sw.item()), xq=npf(xq), sx=np.float32(sx.item()))
    xr = (-7, 7) if x.min() < 0 else (0, 15)
    margin = min(boundary_margin(arrays["w"], sw.item(), -7, 7),
                 boundary_margin(x, sx.item(), *xr))
    if bias:
        arrays.update(b=npf(m.bias), db=npf(m.bias.grad))
    intsim = {"kind": "hdqt", "bits": 4, "acc_bits": acc_bits(acc), "tile": 32,
              "acc_mode": "clamp", "fwd_clip": 0.975, "grad_rounding": "nearest",
              "act_rounding": "nearest", "weight_rounding": "nearest", "hadamard": True,
              "requantize": True, "bwd_clip": 1.0, "ste_raw_clip": True}
    meta = dict(case=name, method="hdqt", layer=layer, description=desc, bias=bias,
                authors_class=type(m).__name__, authors_settings=aset, intsim_arith=intsim,
                authors_determinism="quant.dynamic_stoch -> quant.dynamic_intQ(x, scale=1.) "
                                    "(nearest, unclipped)")
    if layer == "conv2d":
        meta["conv"] = dict(kernel=k, stride=stride, padding=padding)
    return arrays, meta, margin, "hdqt"


def sawb_clip_above_max(arrays, meta):
    """The SAWB clip of the input (the authors' scale * (Qp - Qn) / 2) exceeds max|x|."""
    qn, qp = arrays["x_range"]
    return float(arrays["sx"]) * (qp - qn) / 2 > np.abs(arrays["x"]).max()


def luq_case(quant, LUQ, name, variant, layer, acc, seed, *, want_clip_above_max=False, **kw):
    accept = sawb_clip_above_max if want_clip_above_max else (lambda a, m: True)
    arrays, meta = attempts(name, lambda rng: luq_once(quant, LUQ, name, variant, layer, acc,
                                                       seed, rng, **kw), accept)
    if want_clip_above_max:
        meta["selected_for"] = "SAWB clip of the input > max|x| (draws retried until so)"
    return arrays, meta


def luq_once(quant, LUQ, name, variant, layer, acc, seed, rng, *, B, K=None, N, C=None, H=None,
             k=3, stride=1, padding=1, bias=False, kind="signed", desc=""):
    aset = configure_luq(quant, LUQ, variant, acc)
    torch.manual_seed(0)
    if layer == "linear":
        m = LUQ.Linear_LUQ(in_features=K, out_features=N, bias=bias, uname="fixture")
        x = data(rng, (B, K), kind)
    else:
        m = LUQ.Conv2d_LUQ(in_channels=C, out_channels=N, kernel_size=k, stride=stride,
                           padding=padding, padding_mode="zeros", dilation=1, groups=1,
                           bias=bias, uname="fixture")
        x = data(rng, (B, C, H, H), kind)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(
            rng.uniform(-1, 1, tuple(m.weight.shape)).astype(np.float32)
            / np.float32(math.sqrt(m.weight[0].numel()))))
        if bias:
            m.bias.copy_(torch.from_numpy(
                rng.uniform(-0.1, 0.1, tuple(m.bias.shape)).astype(np.float32)))
    rec = Recorder(LUQ.UniformQuantizeSawb)
    gsc_orig = LUQ.GradStochasticClippingQ
    seen = {}

    class GSCRec(gsc_orig):
        @staticmethod
        def backward(ctx, grad_output):
            out = gsc_orig.backward(ctx, grad_output)
            seen["g_in"] = grad_output.detach().clone()
            seen["gq"] = out[0].detach().clone()
            return out

    xt = torch.from_numpy(x).requires_grad_(True)
    with patched(LUQ, "UniformQuantizeSawb", rec), patched(LUQ, "GradStochasticClippingQ", GSCRec):
        y = m(xt)
        y = y["logits"] if isinstance(y, dict) else y
        g = rng.standard_normal(tuple(y.shape)).astype(np.float32) * np.float32(0.01)
        # the fixed draws, in intsim's layout: Linear draws over g^T (N, B), conv over (B, N, H, W)
        draws = np.random.Generator(np.random.PCG64(seed))
        u = draws.random(g.T.shape if layer == "linear" else g.shape, dtype=np.float32)
        u_auth = u.T if layer == "linear" else u
        with fixed_draws(u_auth) as calls:
            y.backward(torch.from_numpy(g))
        assert calls == {"rand": 1, "uniform_": 1}, calls
    (wargs, (wq, sw)), (xargs, (xq, sx)) = rec.calls
    arrays = dict(x=x, w=npf(m.weight), g=g, y=npf(y), dx=npf(xt.grad), dw=npf(m.weight.grad),
                  wq=np.rint(npf(wq) / np.float32(sw.item())), sw=np.float32(sw.item()),
                  xq=np.rint(npf(xq) / np.float32(sx.item())), sx=np.float32(sx.item()),
                  w_range=np.array([wargs[4], wargs[3]], np.float32),
                  x_range=np.array([xargs[4], xargs[3]], np.float32),
                  gq=npf(seen["gq"]), u=u)
    margin = min(boundary_margin(arrays["w"], sw.item(), wargs[4], wargs[3]),
                 boundary_margin(x, sx.item(), xargs[4], xargs[3]))
    if bias:
        arrays.update(b=npf(m.bias), db=npf(m.bias.grad))
    intsim = {"kind": "luq", "bits": 4, "grad_bits": 4, "acc_bits": acc_bits(acc),
              "acc_mode": "clamp"}
    meta = dict(case=name, method=variant, layer=layer, description=desc, bias=bias,
                authors_class=type(m).__name__, authors_settings=aset, intsim_arith=intsim,
                draw_seed=seed,
                authors_determinism="torch.rand -> u, Tensor.uniform_(a, b) -> a + (b - a)(1 - u); "
                                    "u = Generator(PCG64(draw_seed)).random(shape, float32) in "
                                    "intsim's layout (Linear: g^T (N, B); conv: (B, N, H, W))")
    if layer == "conv2d":
        meta["conv"] = dict(kernel=k, stride=stride, padding=padding)
    return arrays, meta, margin, "luq"


def cases(quant, LUQ):
    """(file name, arrays, meta) of every fixture."""
    H = lambda *a, **kw: hdqt_case(quant, *a, **kw)          # noqa: E731
    out = []
    out.append(("hdqt_linear",) + H(
        "hdqt_linear", "linear", "int8", B=16, K=100, N=24, xscale=3.0,
        desc="Linear 100->24, batch 16, signed input N(0, 3^2) (some |x| > 7: the raw-input STE "
             "bound), K = 3 x 32 + 4 (last tile 4), H_o blocks of 8, H_b of 16, bias"))
    out.append(("hdqt_linear_unsigned",) + H(
        "hdqt_linear_unsigned", "linear", "int8", B=12, K=80, N=10, kind="unsigned", bias=False,
        desc="Linear 80->10 without bias (FCNet hidden layer), batch 12 (H_b blocks of 4), "
             "post-ReLU input (unsigned 0..15 codes), K = 2 x 32 + 16"))
    out.append(("hdqt_linear_wide",) + H(
        "hdqt_linear_wide", "linear", "none", B=16, K=100, N=24,
        desc="as hdqt_linear with input N(0, 1) and no accumulator clamp (quantAccFWD/BWD None, "
             "the README command as written; intsim acc_bits=None)"))
    out.append(("hdqt_linear_acc6",) + H(
        "hdqt_linear_acc6", "linear", "int6", B=16, K=100, N=24,
        desc="as hdqt_linear with input N(0, 1) and 6-bit accumulators (+-31): with random "
             "data the 8-bit clamps of the two backward matmuls rarely bite, these do"))
    out.append(("hdqt_conv_signed",) + H(
        "hdqt_conv_signed", "conv2d", "int8", B=2, C=32, H=8, N=32,
        desc="Conv2d 32->32 3x3 s1 p1 on 8x8, signed input, K = 288 = 9 x 32, L = 64, bias"))
    out.append(("hdqt_conv_unsigned",) + H(
        "hdqt_conv_unsigned", "conv2d", "int8", B=2, C=32, H=8, N=16, kind="unsigned",
        desc="Conv2d 32->16 3x3 s1 p1 on 8x8, post-ReLU input, K = 288, L = 64, bias"))
    out.append(("hdqt_conv_stride2",) + H(
        "hdqt_conv_stride2", "conv2d", "int8", B=2, C=16, H=8, N=32, stride=2, kind="unsigned",
        desc="Conv2d 16->32 3x3 stride 2 p1, 8x8 -> 4x4 (L = 16), post-ReLU input, K = 144 "
             "(last tile 16), bias"))
    out.append(("hdqt_conv_first",) + H(
        "hdqt_conv_first", "conv2d", "int8", B=2, C=3, H=8, N=16,
        desc="first layer: Conv2d 3->16 3x3 s1 p1 on 8x8 normalised-image-like signed input, "
             "K = 27 < 32 (one short tile), bias"))
    out.append(("hdqt_conv_short_tile",) + H(
        "hdqt_conv_short_tile", "conv2d", "int8", B=2, C=12, H=6, N=16,
        desc="Conv2d 12->16 3x3 s1 p1 on 6x6, signed input, K = 108 = 3 x 32 + 12 (last tile "
             "12), L = 36 (H_b blocks of 4), bias"))
    out.append(("hdqt_conv_acc6",) + H(
        "hdqt_conv_acc6", "conv2d", "int6", B=2, C=12, H=8, N=16,
        desc="Conv2d 12->16 3x3 s1 p1 on 8x8, signed input, K = 108, 6-bit accumulators (+-31) "
             "so that all three clamps bite, bias"))
    luq = [  # (name, variant, layer, acc, kind, bias, what it is)
        ("luqc_linear", "luq_corrected", "linear", "none", "signed", False,
         "Linear 100->24 no bias, batch 16, signed input N(0, 1)"),
        ("luqc_linear_acc8", "luq_corrected", "linear", "int8", "signed", False,
         "Linear 100->24 no bias, batch 16, signed input, 8-bit accumulator (AccQuant) over K"),
        ("luqc_linear_unsigned", "luq_corrected", "linear", "none", "unsigned", False,
         "Linear 100->24 no bias, batch 16, post-ReLU input (SAWB clip > max|x|)"),
        ("luqc_conv_signed", "luq_corrected", "conv2d", "none", "signed", True,
         "Conv2d 16->16 3x3 s1 p1 on 8x8 with bias (place_quant always gives LUQ convs one), "
         "signed input"),
        ("luqc_conv_signed_acc8", "luq_corrected", "conv2d", "int8", "signed", True,
         "as luqc_conv_signed with the 8-bit accumulator (AccQuant) over K = 144"),
        ("luqc_conv_unsigned", "luq_corrected", "conv2d", "none", "unsigned", True,
         "Conv2d 16->16 3x3 s1 p1 on 8x8 with bias, post-ReLU input (SAWB clip > max|x|)"),
        ("luqog_linear", "luq_og", "linear", "none", "signed", False,
         "Linear 100->24 no bias, batch 16, signed input N(0, 1)"),
        ("luqog_linear_acc8", "luq_og", "linear", "int8", "signed", False,
         "Linear 100->24 no bias, batch 16, signed input, 8-bit accumulator (AccQuant) over K"),
        ("luqog_linear_unsigned", "luq_og", "linear", "none", "unsigned", False,
         "Linear 100->24 no bias, batch 16, post-ReLU input"),
        ("luqog_conv_unsigned", "luq_og", "conv2d", "none", "unsigned", True,
         "Conv2d 16->16 3x3 s1 p1 on 8x8 with bias, post-ReLU input"),
    ]
    for i, (nm, variant, layer, acc, kind, bias, what) in enumerate(luq):
        shape = dict(B=16, K=100, N=24) if layer == "linear" else dict(B=2, C=16, H=8, N=16)
        out.append((nm,) + luq_case(quant, LUQ, nm, variant, layer, acc, 1001 + i,
                                    bias=bias, kind=kind, desc=f"{variant}: {what}",
                                    want_clip_above_max=kind == "unsigned", **shape))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qcil", required=True,
                    help="checkout of Intelligent-Microsystems-Lab/QuantizedCIL")
    ap.add_argument("--commit", help="commit of that checkout (recorded; default: "
                    "`git -C QCIL rev-parse HEAD` when it is a git work tree)")
    ap.add_argument("--out", required=True, help="output folder for the .npz fixtures")
    a = ap.parse_args(argv)
    if not a.commit:
        import subprocess
        try:
            a.commit = subprocess.run(["git", "-C", a.qcil, "rev-parse", "HEAD"], check=True,
                                      capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            raise SystemExit("--commit is needed: the checkout is not a git work tree")
    torch.set_num_threads(1)
    quant, LUQ = load_authors(a.qcil)
    common = dict(qcil_repo="Intelligent-Microsystems-Lab/QuantizedCIL", qcil_commit=a.commit,
                  qcil_sha256={f: sha256(os.path.join(a.qcil, f)) for f in AUTHOR_FILES},
                  torch=torch.__version__, numpy=np.__version__,
                  generator="benchmarks/parity/make_fixtures.py")
    os.makedirs(a.out, exist_ok=True)
    total = 0
    for fname, arrays, meta in cases(quant, LUQ):
        meta.update(common)
        path = os.path.join(a.out, fname + ".npz")
        np.savez_compressed(path, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
        size = os.path.getsize(path)
        total += size
        print(f"{fname:28s} {size:8d} B  y{arrays['y'].shape} dx{arrays['dx'].shape} "
              f"dw{arrays['dw'].shape}")
    print(f"total {total} B in {a.out}")


if __name__ == "__main__":
    main()
