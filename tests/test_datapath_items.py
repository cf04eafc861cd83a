"""Products of two activations (layout Batched) and grouped convolutions under every
datapath: they run forward and backward under every preset, the audit names
attention's products, the integer forward of a Batched product is the plain
integer reference per item bit for bit, the items draw as separate calls
would (HDQT: operand by operand, item-major, as a per-item NumPy reference), and
the operation counts equal the brute-force counter."""
import copy

import numpy as np
import pytest

from intsim import nn
from intsim.cost.counts import layer_counts, layer_datapaths, model_calls
from intsim.datapath import Batched, Conv, Dense, datapath_from_spec
from intsim.datapath.items import ItemSite
from intsim.datapath.parts import IntAccumulator
from intsim.arith import qmatmul as qm
from intsim.kernels import quant
from intsim.nn.linear import DatapathSite

from test_cost_counts import SPECS as COUNT_SPECS, BruteCounter, _model_counts, _summary
from test_datapath_contract import SPECS as CONTRACT_SPECS
from test_intmm import reference as int_reference



class _Net(nn.Module):
    """A grouped (first) convolution, a depthwise one, tokens through a pre-norm
    attention block with dropout and a residual add, and a classifier: the
    block's modules are named ``block.attn.*``."""

    def __init__(self, dp, rng, products=("qk", "av"), C=4):
        super().__init__()
        self.conv = nn.Conv2d(2, C, 3, 1, 1, True, dp, rng, groups=2)
        self.dw = nn.Conv2d(C, C, 3, 2, 1, False, dp, rng, groups=C)
        self.block = nn.Module()
        self.block.norm = nn.LayerNorm(C)
        self.block.attn = nn.MultiHeadSelfAttention(C, 2, dp, rng, quantize_products=products)
        self.block.drop = nn.Dropout(0.1, rng)
        self.block.add = nn.Add()
        self.fc = nn.Linear(C, 3, True, dp, rng)
        self.conv.need_input_grad = False
        self.arith = dp

    def forward(self, x):
        h = self.dw.forward(self.conv.forward(x))                          # (B, C, H, W)
        self._hshape = h.shape
        B, C = h.shape[:2]
        t = np.ascontiguousarray(h.reshape(B, C, -1).transpose(0, 2, 1))  # (B, T, C)
        b = self.block
        t = b.add.forward(t, b.drop.forward(b.attn.forward(b.norm.forward(t))))
        self._T = t.shape[1]
        return self.fc.forward(t.mean(axis=1))

    def backward(self, g):
        gt = np.repeat(self.fc.backward(g)[:, None] / self._T, self._T, axis=1)
        b = self.block
        g_skip, g_attn = b.add.backward(gt)
        gt = g_skip + b.norm.backward(b.attn.backward(b.drop.backward(g_attn)))
        B, C, H, W = self._hshape
        gh = np.ascontiguousarray(gt.transpose(0, 2, 1)).reshape(B, C, H, W)
        return self.conv.backward(self.dw.backward(gh))


def _data(seed=0, B=3):
    r = np.random.default_rng(seed)
    return r.standard_normal((B, 2, 6, 6)).astype(np.float32), r.integers(0, 3, B)


def _step(m, X, y):
    m.train()
    _, g = nn.cross_entropy(m.forward(X), y)
    m.backward(g)


@pytest.mark.parametrize("name", sorted(CONTRACT_SPECS))
def test_attention_and_grouped_conv_run_under_every_datapath(name):
    """Every preset (fp, hdqt, luq, fp8, fp134, the MX ones), every kind and the
    contract's compositions of parts."""
    dp = datapath_from_spec(CONTRACT_SPECS[name])
    m = _Net(dp, np.random.default_rng(1))
    X, y = _data()
    _step(m, X, y)
    for pname, p in m.named_parameters():
        assert p.grad is not None and p.grad.shape == p.data.shape, pname
        assert np.all(np.isfinite(p.grad)), pname
    audit = m.audit()
    if not dp.quantized:
        assert audit == {}
        return
    assert set(audit) == {"conv", "dw", "block.attn.qkv", "block.attn.qk", "block.attn.av",
                          "block.attn.proj", "fc"}
    for site in ("block.attn.qk", "block.attn.av", "dw"):
        assert set(audit[site]) == {"forward", "backward_input", "backward_weight"}
        assert audit[site]["forward"].as_dict()["tiles"] > 0
    assert "backward_input" not in audit["conv"]
    counts = layer_counts(model_calls(m), dp)
    assert set(counts["block.attn.qk"]) == {"forward", "backward_input", "backward_weight"}


@pytest.mark.parametrize("name", ["hdqt", "fp8"])
def test_float32_products_are_priced_not_audited(name):
    dp = datapath_from_spec(name)
    m = _Net(dp, np.random.default_rng(1), products=())
    X, y = _data()
    _step(m, X, y)
    assert "block.attn.qk" not in m.audit() and "block.attn.av" not in m.audit()
    counts = layer_counts(model_calls(m), dp, layer_datapaths(m))
    B, T, H, dh = 3, 9, 2, 2
    assert counts["block.attn.qk"]["forward"]["mul:fp32*fp32"] == B * H * T * dh * T
    assert counts["block.attn.av"]["backward_weight"]["mul:fp32*fp32"] == B * H * dh * T * T


def test_same_seed_same_bits_and_resume():
    """Two runs from one seed agree bit for bit; a model of another init restored from
    the state and the Generators (the layers' and Dropout's) after a step
    reproduces the next step."""
    dp = datapath_from_spec("hdqt")
    X, y = _data()
    a, b = _Net(dp, np.random.default_rng(5)), _Net(dp, np.random.default_rng(5))
    for m in (a, b):
        _step(m, X, y)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=n)
    state, rngs = a.state_dict(), a.rng_state()
    assert "block.drop" in rngs and "block.attn.qk" in rngs
    _step(a, X, y)
    c = _Net(dp, np.random.default_rng(99))
    c.load_state_dict(state)
    c.set_rng_state(rngs)
    _step(c, X, y)
    for (n, p), (_, q) in zip(a.named_parameters(), c.named_parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=n)


def test_quantized_products_leave_the_initial_weights_unchanged():
    dp = datapath_from_spec("hdqt")
    nets = [_Net(dp, np.random.default_rng(3), products=p) for p in ((), ("qk",), ("qk", "av"))]
    for m in nets[1:]:
        for (n, p), (_, q) in zip(nets[0].named_parameters(), m.named_parameters()):
            np.testing.assert_array_equal(p.data, q.data, err_msg=n)


class _Site(nn.Module, DatapathSite):
    def __init__(self, dp, rng):
        super().__init__()
        self._init_site(dp, rng)


BATCHED_SPECS = {
    "hdqt": {"preset": "hdqt"},
    "int6-tile5-wrap": {"preset": "hdqt", "forward_format": "int6", "accumulator.bits": 10,
                        "accumulator.tile": 5, "accumulator.mode": "wrap"},
    "int4-saturate": {"preset": "hdqt", "accumulator.bits": 7, "accumulator.tile": 3,
                      "accumulator.mode": "saturate"},
    "int4-onetile": {"preset": "hdqt", "accumulator.tile": "none"},
}


@pytest.mark.parametrize("name", sorted(BATCHED_SPECS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_integer_forward_is_the_integer_reference(name, seed):
    """Item s: x_s and w_s quantized with one scale each (nearest, the forward clip),
    the int64 tiled reference accumulator, times s_x s_w; the audit sums the items'."""
    dp = datapath_from_spec(BATCHED_SPECS[name])
    r = np.random.default_rng(seed)
    S, M, N, K = (int(v) for v in r.integers(1, 12, 4))
    x = (r.standard_normal((S, M, K)) * r.uniform(0.1, 10)).astype(np.float32)
    w = r.standard_normal((S, N, K)).astype(np.float32)
    if seed == 1:
        x = np.abs(x)                                       # unsigned items (softmax output)
    site = _Site(dp, np.random.default_rng(0))
    y, _ = dp.forward(x, w, None, Batched(), site)
    acc = dp.accumulator
    want = np.empty((S, M, N), np.float32)
    tiles = sat = 0
    for s in range(S):
        xq, sx = quant.quantize(x[s], dp.bits, clip=dp.fwd_clip)
        wq, sw = quant.quantize(w[s], dp.bits, clip=dp.fwd_clip)
        ref, (t, st, _) = int_reference(xq.astype(np.int64), wq.T.astype(np.int64), acc.tile,
                                        acc.mode, acc.limit)
        want[s] = ref * np.float32(sw * sx)
        tiles, sat = tiles + t, sat + st
    np.testing.assert_array_equal(y, want)
    fwd = site.layer_audit["forward"]
    assert (fwd.tiles, fwd.saturated) == (tiles, sat)


@pytest.mark.parametrize("name", ["luq", "fp8", "mxfp8", "fp134", "hdqt-no-requantize"])
def test_batched_items_draw_as_separate_dense_calls(name):
    """A Batched call equals its items run one after the other as Dense calls on one
    site (one Generator): outputs, gradients and audits bit for bit (the kinds and
    ablations without a whole-tensor Batched backward)."""
    if name == "hdqt-no-requantize":
        name = {"preset": "hdqt", "requantize": False}
    dp = datapath_from_spec(name)
    r = np.random.default_rng(7)
    x = r.standard_normal((3, 5, 8)).astype(np.float32)
    w = r.standard_normal((3, 4, 8)).astype(np.float32)
    g = r.standard_normal((3, 5, 4)).astype(np.float32)
    a, b = _Site(dp, np.random.default_rng(1)), _Site(dp, np.random.default_rng(1))
    y, ctx = dp.forward(x, w, None, Batched(), a)
    dx, dw, db = ctx.backward(g)
    assert db is None
    if dp.kind == "lptorch":
        # one output rounding of the whole tensor (tracked scale): not per item
        assert y.shape == (3, 5, 4) and dx.shape == x.shape and dw.shape == w.shape
        return
    b.layer_audit.tick()
    item = ItemSite(b)
    outs = [dp.forward(x[s], w[s], None, Dense(), item) for s in range(3)]
    grads = [c.backward(g[s]) for s, (_, c) in enumerate(outs)]
    np.testing.assert_array_equal(y, np.stack([o[0] for o in outs]))
    np.testing.assert_array_equal(dx, np.stack([d[0] for d in grads]))
    np.testing.assert_array_equal(dw, np.stack([d[1] for d in grads]))
    for p in ("forward", "backward_input", "backward_weight"):
        assert a.layer_audit[p].as_dict() == b.layer_audit[p].as_dict(), p


@pytest.mark.parametrize("name", ["hdqt", "luq", "fp8", "mxfp8"])
def test_grouped_conv_groups_draw_as_separate_conv_calls(name):
    """A grouped convolution equals its groups run one after the other as one-group
    convolutions on one site: outputs, gradients and audits bit for bit."""
    dp = datapath_from_spec(name)
    r = np.random.default_rng(8)
    x = r.standard_normal((2, 6, 5, 5)).astype(np.float32)
    W = r.standard_normal((9, 2 * 3 * 3)).astype(np.float32)
    b = r.standard_normal(9).astype(np.float32)
    g = r.standard_normal((2, 9, 3, 3)).astype(np.float32)
    layout = Conv(3, 2, 1, groups=3)
    a, c = _Site(dp, np.random.default_rng(1)), _Site(dp, np.random.default_rng(1))
    y, ctx = dp.forward(x, W, b, layout, a)
    dx, dW, db = ctx.backward(g)
    c.layer_audit.tick()
    item = ItemSite(c)
    outs = [dp.forward(np.ascontiguousarray(x[:, 2 * i:2 * i + 2]), W[3 * i:3 * i + 3],
                       b[3 * i:3 * i + 3], layout.item, item) for i in range(3)]
    grads = [o[1].backward(np.ascontiguousarray(g[:, 3 * i:3 * i + 3]))
             for i, o in enumerate(outs)]
    np.testing.assert_array_equal(y, np.concatenate([o[0] for o in outs], axis=1))
    for got, k, axis in ((dx, 0, 1), (dW, 1, 0), (db, 2, 0)):
        np.testing.assert_array_equal(got, np.concatenate([d[k] for d in grads], axis=axis))
    for p in ("forward", "backward_input", "backward_weight"):
        assert a.layer_audit[p].as_dict() == c.layer_audit[p].as_dict(), p


@pytest.mark.parametrize("name", sorted(COUNT_SPECS))
def test_counts_equal_a_brute_force_counter(monkeypatch, name):
    dp = datapath_from_spec(COUNT_SPECS[name])
    model = _Net(dp, np.random.default_rng(2))
    X, y = _data(1)
    brute = BruteCounter(monkeypatch)
    for _ in range(2):
        _step(model, X, y)
    model.eval()
    model.forward(X[:2])
    want = {k: v for k, v in brute.c.items() if v}
    got = {k: v for k, v in _summary(_model_counts(model, dp)).items() if v}
    if not isinstance(dp.accumulator, IntAccumulator) or name == "luq":
        want = {k: v for k, v in want.items() if not k.startswith("add:")}
        got = {k: v for k, v in got.items() if not k.startswith("add:")}
        if name == "luq":
            want.pop("mul", None)
            got.pop("mul", None)
    assert got == want


# ------------------------------------------- HDQT's Batched items on whole tensors
def _q_ref(t, bits, clip, rounding, u):
    """The signed quantizer of one item (intsim.kernels.quant's formula) with the
    uniforms u (stochastic rounding)."""
    L = (1 << (bits - 1)) - 1
    t64 = t.astype(np.float64)
    m = clip * max(float(t64.max()), -float(t64.min()))
    s = m / L
    if not s > 0:
        return np.zeros(t.shape, np.float32), 0.0
    y = np.clip(t / t.dtype.type(s), -L, L)
    q = np.rint(y) if rounding == "nearest" else np.floor(y + u)
    return q.astype(np.float32), s


def _ref_mm(a, b, tile, acc, aud):
    ref, (t, st, mx) = int_reference(a.astype(np.int64), b.astype(np.int64), tile,
                                     acc.mode, acc.limit)
    aud.tiles, aud.saturated = aud.tiles + t, aud.saturated + st
    aud.max_abs = max(aud.max_abs, mx)
    return ref.astype(np.float32)


def _batched_reference(dp, x, w, g, rng, need_dx):
    """HDQT on S Batched items as a plain per-item NumPy loop: the forward of each item
    as a Dense layer's, the backward's operands quantized item by item with uniforms
    drawn operand by operand, item-major, from one rng.random((S,) + shape) block each
    (H_o W when its rounding draws, g H_o, H_b x, g^T H_b). Returns (y, dx, dw, audit)."""
    S, M, K = x.shape
    N = w.shape[1]
    audit = qm.LayerAudit()
    audit.tick()
    acc, tf, bits = dp.accumulator, dp.transform, dp.bwd_bits
    y = np.empty((S, M, N), np.float32)
    fwd = []
    for s in range(S):
        wq, sw, _, wmask = qm.quantize_forward(w[s], dp, (audit, "forward"), "W")
        xq, sx, _, xmask = qm.quantize_forward(x[s], dp, (audit, "forward"), "x")
        y[s] = _ref_mm(xq, wq.T, acc.tile, acc, audit["forward"]) * np.float32(sw * sx)
        fwd.append((xq, sx, xmask, wq, sw, wmask))
    gT = np.ascontiguousarray(g.transpose(0, 2, 1))                # (S, N, M)

    def draws(shape, rounding):
        return rng.random((S,) + shape, dtype=np.float32) if rounding == "stochastic" else \
            np.zeros((S,) + shape, np.float32)

    n_o, n_b, T = tf.block(N), tf.block(M), dp.backward_tile
    dx = dw = None
    if need_dx:
        uw, ug1 = draws((N, K), dp.weight_rounding.kernel), draws((N, M), dp.grad_rounding)
    else:
        if dp.weight_rounding.draws:
            rng.random(S * N * K, dtype=np.float32)
        rng.random(S * N * M, dtype=np.float32)
    ux2, ug2 = draws((K, M), dp.act_rounding), draws((N, M), dp.grad_rounding)
    dx, dw = np.empty((S, M, K), np.float32), np.empty((S, N, K), np.float32)
    for s in range(S):
        xq, sx, xmask, wq, sw, wmask = fwd[s]
        if need_dx:
            w1q, s1 = _q_ref(tf.apply(wq, 0), bits, dp.bwd_clip, dp.weight_rounding.kernel, uw[s])
            g1q, sg1 = _q_ref(tf.apply(gT[s], 0), bits, dp.bwd_clip, dp.grad_rounding, ug1[s])
            audit.record("backward_input", "HoW", w1q, bits, True)
            audit.record("backward_input", "gHo", g1q, bits, True)
            d = _ref_mm(w1q.T, g1q, T, acc, audit["backward_input"])
            dxs = (d * (np.float64(sg1) * (s1 * sw / n_o))).astype(np.float32).T
            dx[s] = dxs if xmask is None else dxs * xmask
        x2q, sx2 = _q_ref(tf.apply(np.ascontiguousarray(xq.T), -1), bits, dp.bwd_clip,
                          dp.act_rounding, ux2[s])
        g2q, sg2 = _q_ref(tf.apply(gT[s], -1), bits, dp.bwd_clip, dp.grad_rounding, ug2[s])
        audit.record("backward_weight", "HbX", x2q, bits, True)
        audit.record("backward_weight", "gHb", g2q, bits, True)
        e = _ref_mm(g2q, x2q.T, T, acc, audit["backward_weight"])
        dws = e * float(sg2 * sx2 * (sx / n_b))
        dw[s] = dws if wmask is None else dws * wmask
    return y, (dx if need_dx else None), dw, audit


HDQT_ITEM_SPECS = {
    "hdqt": {"preset": "hdqt"},
    "stochastic-weights": {"preset": "hdqt", "weight_rounding": "stochastic"},
    "saturate-bwdtile": {"preset": "hdqt", "accumulator.bits": 9, "accumulator.tile": 3,
                         "accumulator.mode": "saturate", "backward_tile": 4},
    "wrap-block2": {"preset": "hdqt", "accumulator.bits": 10, "accumulator.mode": "wrap",
                    "transform": {"kind": "hadamard", "size": 2}, "backward_format": "int6"},
    "no-hadamard-int8": {"preset": "hdqt", "transform": "none", "forward_format": "int8"},
}


def test_quantizer_reference_is_the_kernel():
    r = np.random.default_rng(3)
    t = (r.standard_normal((6, 10)) * 3).astype(np.float32)
    for rounding in ("nearest", "stochastic"):
        q, s = quant.quantize_f32(t, 4, rounding=rounding, signed=True, clip=0.9,
                                  rng=np.random.default_rng(4))
        u = np.random.default_rng(4).random(t.shape, dtype=np.float32)
        qr, sr = _q_ref(t, 4, 0.9, rounding, u)
        np.testing.assert_array_equal(q, qr)
        assert s == sr


@pytest.mark.parametrize("name", sorted(HDQT_ITEM_SPECS))
@pytest.mark.parametrize("seed", range(4))
def test_batched_hdqt_items_are_the_per_item_reference(name, seed):
    """HDQT's Batched items on whole tensors equal a per-item NumPy loop drawing each
    operand's uniforms item-major from one block: outputs, gradients, audit (counts and
    levels) and the Generator's final state, bit for bit; the forward equals the
    per-item Dense calls."""
    dp = datapath_from_spec(HDQT_ITEM_SPECS[name])
    r = np.random.default_rng(100 + seed)
    S, M, N, K = (int(v) for v in r.integers(1, 13, 4))
    if seed == 0:
        M, N = 8, 16                                          # transform blocks > 2
    x = (r.standard_normal((S, M, K)) * r.uniform(0.1, 10)).astype(np.float32)
    w = (r.standard_normal((S, N, K)) * r.uniform(0.1, 10)).astype(np.float32)
    g = r.standard_normal((S, M, N)).astype(np.float32)
    if seed == 1:
        x = np.abs(x)                                         # unsigned items
    need_dx = seed != 3
    site = _Site(dp, np.random.default_rng(seed))
    site.need_input_grad = need_dx
    rng = copy.deepcopy(site.rng)                             # the layer's Generator
    y, ctx = dp.forward(x, w, None, Batched(), site)
    dx, dw, db = ctx.backward(g)
    assert db is None
    ry, rdx, rdw, raudit = _batched_reference(dp, x, w, g, rng, need_dx)
    np.testing.assert_array_equal(y, ry)
    if need_dx:
        np.testing.assert_array_equal(dx, rdx)
    else:
        assert dx is None
    np.testing.assert_array_equal(dw, rdw)
    for p in ("forward", "backward_input", "backward_weight"):
        assert site.layer_audit[p].as_dict() == raudit[p].as_dict(), p
    assert site.layer_audit.levels() == pytest.approx(raudit.levels(), abs=0, rel=0)
    assert site.rng.bit_generator.state == rng.bit_generator.state
    # the forward values and counts are the per-item loop's
    b = _Site(dp, np.random.default_rng(seed))
    b.layer_audit.tick()
    item = ItemSite(b)
    np.testing.assert_array_equal(
        y, np.stack([dp.forward(x[s], w[s], None, Dense(), item)[0] for s in range(S)]))
    assert site.layer_audit["forward"].as_dict() == b.layer_audit["forward"].as_dict()
    assert {k: v for k, v in site.layer_audit.levels().items() if k.startswith("forward")} == \
        b.layer_audit.levels()
