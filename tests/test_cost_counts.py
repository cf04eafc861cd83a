"""Operation counts (intsim.cost): the counts intsim derives from the shapes a layer
saw equal a brute-force counter that watches the kernels the datapaths actually
call, on small layers with ragged tiles, strided and padded convolutions, the
per-image backward quantizers and first layers without an input gradient."""
from collections import Counter

import numpy as np
import pytest

import intsim
import intsim.models
from intsim import nn
from intsim.arith import qmatmul
from intsim.cost.counts import layer_counts, model_calls
from intsim.cost.tally import OpCounts, RNG_BITS_PER_DRAW
from intsim.datapath import datapath_from_spec
from intsim.datapath.parts import accumulator as acc_mod
from intsim.formats import _grid
from intsim.formats.mx import MXFormat
from intsim.kernels import hadamard, intmm, luq, quant


class BruteCounter:
    """Counts what the kernels are asked to do, from the arrays they receive."""

    def __init__(self, monkeypatch):
        self.c = Counter()
        self._depth = 0
        mp = monkeypatch
        mp.setattr(intmm, "matmul_acc", self._wrap_mm(intmm.matmul_acc, km=False))
        mp.setattr(intmm, "matmul_acc_km", self._wrap_mm(intmm.matmul_acc_km, km=True))
        mp.setattr(quant, "quantize_f32", self._wrap_q(quant.quantize_f32, "rounding"))
        mp.setattr(quant, "quantize_items", self._wrap_q(quant.quantize_items, "rounding"))
        mp.setattr(luq, "sawb_quantize", self._wrap_q(luq.sawb_quantize, None))
        mp.setattr(luq, "log_quantize", self._wrap_q(luq.log_quantize, "always"))
        mp.setattr(luq, "sawb_quantize_items", self._wrap_q(luq.sawb_quantize_items, None))
        mp.setattr(luq, "log_quantize_items", self._wrap_q(luq.log_quantize_items, "always"))
        mp.setattr(hadamard, "fwht", self._wrap_fwht(hadamard.fwht))
        mp.setattr(quant, "hadamard_quantize_items", self._wrap_fused(quant.hadamard_quantize_items))
        mp.setattr(acc_mod, "float_matmul_acc", self._wrap_float(acc_mod.float_matmul_acc))
        for cls in (_grid.Format, MXFormat):
            mp.setattr(cls, "quantize_stats", self._wrap_fmt(cls.quantize_stats))

    def _guard(self, fn, count):
        def run(*a, **kw):
            if self._depth == 0:
                count(*a, **kw)
            self._depth += 1
            try:
                return fn(*a, **kw)
            finally:
                self._depth -= 1
        return run

    def _wrap_mm(self, fn, km):
        def count(a, b, **kw):
            if km:        # x (K, S, M) @ g (N, S, M) over M, per image
                K, S, M = a.shape
                N = b.shape[0]
                batch, rows, red, cols = S, K, M, N
            else:
                a, b = np.asarray(a), np.asarray(b)
                batch = int(np.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), dtype=int))
                rows, red, cols = a.shape[-2], a.shape[-1], b.shape[-1]
            tile, bits, mode = kw.get("tile", 32), kw.get("acc_bits", 8), kw.get("mode", "clamp")
            T = red if tile is None else min(tile, red)
            nT = -(-red // T)
            width = 32 if bits is None or mode == "wide" else bits
            self.c["mul"] += batch * rows * red * cols
            self.c[f"add:int{width}"] += batch * rows * red * cols
            self.c["add:int32"] += batch * rows * cols * (nT - 1)
        return self._guard(fn, count)

    def _wrap_float(self, fn):
        def count(a, b, **kw):
            M, K = a.shape
            N = b.shape[1]
            self.c["mul"] += M * K * N
        return self._guard(fn, count)

    def _wrap_q(self, fn, rounding_kw):
        def count(x, *a, **kw):
            n = int(np.asarray(x).size)
            self.c["quant:round"] += n
            draws = (rounding_kw == "always" or
                     (rounding_kw is not None and kw.get(rounding_kw) == "stochastic"))
            if draws:
                self.c["rng:bits"] += RNG_BITS_PER_DRAW * n
        return self._guard(fn, count)

    def _wrap_fmt(self, fn):
        def run(fmt_self, x, rounding="nearest", rng=None, *a, **kw):
            if self._depth == 0:
                n = int(np.asarray(x).size)
                self.c["quant:round"] += n
                name = getattr(rounding, "name", rounding)
                if name == "stochastic":
                    self.c["rng:bits"] += RNG_BITS_PER_DRAW * n
            self._depth += 1
            try:
                return fn(fmt_self, x, rounding, rng, *a, **kw)
            finally:
                self._depth -= 1
        return run

    def _wrap_fused(self, fn):
        """The fused transform + quantizer: the Hadamard adds of its block along the axis,
        then one rounding (and draw) per value."""
        def count(x, along, block, top_first, bits, **kw):
            x = np.asarray(x)
            n = x.shape[along]
            if block > 1:
                self.c["had"] += (x.size // n) * n * (block.bit_length() - 1)
            self.c["quant:round"] += x.size
            if kw.get("rounding") == "stochastic":
                self.c["rng:bits"] += RNG_BITS_PER_DRAW * x.size

        def run(*a, **kw):
            if self._depth == 0:
                count(*a, **kw)
            self._depth += 1
            try:
                out = fn(*a, **kw)
            finally:
                self._depth -= 1
            if out is None and self._depth == 0:
                raise AssertionError("the fused kernel declined: the counter would count twice")
            return out
        return run

    def _wrap_fwht(self, fn):
        def count(x, axis=-1):
            x = np.asarray(x)
            n = x.shape[axis]
            b = hadamard.bp2(n)
            self.c["had"] += (x.size // n) * n * (b.bit_length() - 1)
        return self._guard(fn, count)


def _model_counts(model, dp):
    total = OpCounts()
    for passes in layer_counts(model_calls(model), dp).values():
        for counts in passes.values():
            total.update(counts)
    return total


def _summary(total):
    out = Counter()
    for k, v in total.items():
        if k.startswith("mul:"):
            out["mul"] += v
        elif k.startswith("had:"):
            out["had"] += v
        elif k.startswith("add:int") or k in ("quant:round", "rng:bits"):
            out[k] += v
    return out


SPECS = {
    "hdqt": {"preset": "hdqt"},
    "hdqt-ragged-bwdtile": {"preset": "hdqt", "accumulator.tile": 5, "backward_tile": 3,
                            "accumulator.bits": 10, "accumulator.mode": "wrap"},
    "hdqt-saturate-onetile": {"preset": "hdqt", "accumulator.tile": "none",
                              "accumulator.mode": "saturate"},
    "hdqt-no-hadamard": {"preset": "hdqt", "transform": "none"},
    "hdqt-block2": {"preset": "hdqt", "transform": {"kind": "hadamard", "size": 2}},
    "luq": {"preset": "luq", "accumulator.bits": 8},
    "formats-int-acc": {"kind": "formats", "weights": "int4", "activations": "int4",
                        "gradients": "int8", "gradient_rounding": "stochastic",
                        "accumulator": {"kind": "int", "bits": 12, "tile": 7}},
    "formats-fp16acc": {"kind": "formats", "weights": "e4m3", "activations": "e4m3",
                        "gradients": "e5m2", "gradient_rounding": "stochastic",
                        "accumulator": {"kind": "float", "format": "fp16", "tile": 9}},
    "mxfp4-hadamard": {"kind": "formats", "weights": "mxfp4_e2m1", "activations": "mxfp4_e2m1",
                       "gradients": "mxfp8_e5m2", "gradient_rounding": "stochastic",
                       "transform": "hadamard", "accumulator": {"kind": "float",
                                                                "format": "bf16"}},
}


def _conv_model(dp):
    """Strided and padded convolutions of ragged sizes, then a classifier."""
    rng = np.random.default_rng(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 5, 3, 2, 1, True, dp, rng)      # stride 2, pad 1
            self.c2 = nn.Conv2d(5, 6, 2, 1, 0, False, dp, rng)     # no pad, kernel 2
            self.fc = nn.Linear(6 * 3 * 3, 4, True, dp, rng)
            self.c1.need_input_grad = False                        # a first layer
            self.arith = dp

        def forward(self, x):
            h = self.c2.forward(self.c1.forward(x))
            self._h = h.shape
            return self.fc.forward(h.reshape(h.shape[0], -1))

        def backward(self, g):
            g = self.fc.backward(g).reshape(self._h)
            return self.c1.backward(self.c2.backward(g))
    return Net()


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("net", ["dense", "conv"])
def test_counts_equal_a_brute_force_counter(monkeypatch, name, net):
    dp = datapath_from_spec(SPECS[name])
    r = np.random.default_rng(1)
    if net == "dense":
        model = intsim.models.FCNet(13, (11, 9), dp, np.random.default_rng(2), num_classes=3)
        X, y = r.standard_normal((7, 13)).astype(np.float32), r.integers(0, 3, 7)
    else:
        model = _conv_model(dp)
        X, y = r.standard_normal((3, 3, 7, 7)).astype(np.float32), r.integers(0, 4, 3)
    brute = BruteCounter(monkeypatch)
    for _ in range(2):
        model.train()
        _, g = nn.cross_entropy(model.forward(X), y)
        model.backward(g)
    model.eval()
    model.forward(X[:2])                                                  # an eval call
    want = {k: v for k, v in brute.c.items() if v}
    got = {k: v for k, v in _summary(_model_counts(model, dp)).items() if v}
    if not isinstance(dp.accumulator, acc_mod.IntAccumulator) or name == "luq":
        # float products (no integer accumulator in the backward pass): compare mults
        # and quantizers only
        want = {k: v for k, v in want.items() if not k.startswith("add:")}
        got = {k: v for k, v in got.items() if not k.startswith("add:")}
        if name == "luq":       # LUQ's backward products are float BLAS calls
            want.pop("mul", None)
            got.pop("mul", None)
    assert got == want


def test_per_image_backward_quantizers_and_optimizer_updates():
    dp = datapath_from_spec({"preset": "hdqt"})
    model = _conv_model(dp)
    X = np.random.default_rng(3).standard_normal((3, 3, 7, 7)).astype(np.float32)
    _, g = nn.cross_entropy(model.forward(X), np.array([0, 1, 2]))
    model.backward(g)
    counts = layer_counts(model_calls(model), dp)
    assert "backward_input" not in counts["c1"]                 # a first layer
    # c2: 3 images of 3x3 positions; K = 5*2*2 = 20, N = 6
    bw = counts["c2"]["backward_weight"]
    assert bw["mul:int4*int4"] == 6 * 27 * 20
    # H_b over the L = 9 positions of each image: bp2(9) = 1, so no transform adds;
    # quantizers per image: H_b x (K*L per image) and g^T H_b (N*L per image)
    assert "had:fp32" not in bw
    assert bw["quant:round"] == 3 * (20 * 9 + 6 * 9)
    assert bw["rng:bits"] == 32 * 3 * (20 * 9 + 6 * 9)
    assert counts["c2"]["optimizer"] == {"opt:update": 6 * 5 * 2 * 2}
    assert counts["c1"]["optimizer"] == {"opt:update": 5 * 3 * 3 * 3 + 5}


def test_fp_counts_are_the_float_products():
    dp = datapath_from_spec("fp")
    model = intsim.models.FCNet(13, (11,), dp, np.random.default_rng(2), num_classes=3)
    X = np.random.default_rng(1).standard_normal((7, 13)).astype(np.float32)
    _, g = nn.cross_entropy(model.forward(X), np.array([0, 1, 2, 0, 1, 2, 0]))
    model.backward(g)
    c = layer_counts(model_calls(model), dp)
    assert c["backbone.0"]["forward"]["mul:fp32*fp32"] == 7 * 13 * 11
    assert "backward_input" not in c["backbone.0"]              # FCNet's first layer
    assert c["classifier"]["backward_input"]["mul:fp32*fp32"] == 7 * 3 * 11
    assert c["classifier"]["forward"]["mem:read"] == 4 * (7 * 11 + 11 * 3)
