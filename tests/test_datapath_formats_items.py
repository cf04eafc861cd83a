"""FormatsDatapath's Batched items on whole tensors (FormatsDatapath._forward_batched)
against the per-item loop (intsim.datapath.items.forward_items), bit for bit: the
output, dx, dw, the audit of every pass and the Generator's state after the forward
and after the backward, on random shapes (1s included), for every configuration
that is vectorised; the configurations that are not stay on the loop."""
import copy

import numpy as np
import pytest

from intsim import nn
from intsim.datapath import Batched, Dense, datapath_from_spec
from intsim.datapath.items import forward_items
from intsim.formats import E4M3, E5M2, FP134, IntFormat, amax_scale
from intsim.nn.linear import DatapathSite

PASSES = ("forward", "backward_input", "backward_weight")

#: configurations that run on whole tensors
VECTORISED = {
    "fp8": "fp8",
    "fp8-stochastic-gradients": {"preset": "fp8", "gradient_rounding": "stochastic"},
    "fp8-stochastic-activations": {"preset": "fp8", "activation_rounding": "stochastic",
                                   "gradient_rounding": "stochastic"},
    "fp8-stochastic-weights": {"preset": "fp8", "weight_rounding": "stochastic"},
    "channel-pow2": {"preset": "fp8", "scaling": "channel", "pow2_scale": True},
    "tensor-pow2": {"preset": "fp8", "pow2_scale": True, "gradients": "e4m3"},
    "unscaled-e5m2": {"preset": "fp8", "scaling": "none", "weights": "e5m2",
                      "activations": "e4m3"},
    "int8-exact": {"preset": "fp8", "weights": "int8", "activations": "uint8",
                   "gradients": "int6", "gradient_rounding": "stochastic"},
    "fp134-fp16": {"preset": "fp8", "weights": "fp134", "activations": "fp16",
                   "gradients": "bf16"},
    "unquantized-activations": {"preset": "fp8", "activations": None,
                                "weight_rounding": "stochastic"},
}

#: configurations that stay on the per-item loop
LOOPED = {
    "both-forward-stochastic": {"preset": "fp8", "activation_rounding": "stochastic",
                                "weight_rounding": "stochastic"},
    "mxfp8": "mxfp8",
    "float-accumulator": {"preset": "fp8", "accumulator": {"kind": "float", "format": "fp16"}},
    "hadamard": {"preset": "fp8", "transform": {"kind": "hadamard", "size": 2}},
}


class _Site(nn.Module, DatapathSite):
    def __init__(self, dp, rng):
        super().__init__()
        self._init_site(dp, rng)


def _operands(seed):
    """Random x (S, M, K), w (S, N, K), g (S, M, N): dims 1..12 (seed 0: all 1s but S;
    seed 1: M = N = 1; seed 5: 64 items of 16 x 8), magnitudes spread over decades so
    some values flush and saturate; seed 2: an all-zero item and a nonnegative x
    (softmax-like)."""
    r = np.random.default_rng(1000 + seed)
    S, M, N, K = (int(v) for v in r.integers(1, 13, 4))
    if seed == 0:
        M = N = K = 1
    elif seed == 1:
        M = N = 1
    elif seed == 5:
        S, M, N, K = 64, 16, 16, 8                           # attention's items
    def t(*shape):
        a = r.standard_normal(shape) * np.exp(r.uniform(-8, 8, shape[:1] + (1,) * 2))
        return (a * np.exp(r.uniform(-6, 6, shape))).astype(np.float32)
    x, w, g = t(S, M, K), t(S, N, K), t(S, M, N)
    if seed == 2:
        x = np.abs(x)
        x[0] = 0.0
        w[-1] = 0.0
    return x, w, g


def _run(dp, x, w, g, seed, need_dx, loop):
    """(y, dx, dw, audits, rng state after the forward, after the backward) of one
    Batched call, through the datapath (loop False) or the per-item loop."""
    site = _Site(dp, np.random.default_rng(seed))
    site.need_input_grad = need_dx
    if loop:
        y, ctx = forward_items(dp, x, w, None, Batched(), site)
    else:
        y, ctx = dp.forward(x, w, None, Batched(), site)
    s_fwd = copy.deepcopy(site.rng.bit_generator.state)
    dx, dw, db = ctx.backward(g)
    assert db is None
    audits = {p: site.layer_audit[p].as_dict() for p in PASSES}
    audits["calls"] = site.layer_audit._calls
    return y, dx, dw, audits, s_fwd, site.rng.bit_generator.state


def _assert_same(got, want):
    y, dx, dw, audits, s_fwd, s_bwd = got
    ry, rdx, rdw, raudits, rs_fwd, rs_bwd = want
    np.testing.assert_array_equal(y, ry)
    assert y.dtype == ry.dtype and y.shape == ry.shape
    if rdx is None:
        assert dx is None
    else:
        np.testing.assert_array_equal(dx, rdx)
        assert dx.dtype == rdx.dtype
    np.testing.assert_array_equal(dw, rdw)
    assert dw.dtype == rdw.dtype
    assert audits == raudits
    assert s_fwd == rs_fwd
    assert s_bwd == rs_bwd


@pytest.mark.parametrize("name", sorted(VECTORISED))
@pytest.mark.parametrize("seed", range(6))
def test_whole_tensor_items_are_the_per_item_loop(name, seed):
    dp = datapath_from_spec(VECTORISED[name])
    assert dp.items_vectorised(Batched())
    x, w, g = _operands(seed)
    need_dx = seed != 3
    got = _run(dp, x, w, g, seed, need_dx, loop=False)
    want = _run(dp, x, w, g, seed, need_dx, loop=True)
    _assert_same(got, want)


@pytest.mark.parametrize("name", ["fp8", "int8-exact", "fp134-fp16"])
def test_numpy_quantizers_too(monkeypatch, name):
    """The same with the formats' NumPy reference quantizers (no Numba kernels)."""
    from intsim.formats import _grid

    monkeypatch.setattr(_grid, "FAST", False)
    dp = datapath_from_spec(VECTORISED[name])
    x, w, g = _operands(2)
    _assert_same(_run(dp, x, w, g, 2, True, loop=False), _run(dp, x, w, g, 2, True, loop=True))


def test_whole_tensor_path_is_taken(monkeypatch):
    """The fp8 preset's Batched call does not go through the per-item loop."""
    import intsim.datapath.formats as fm

    def fail(*a, **k):
        raise AssertionError("per-item loop")

    monkeypatch.setattr(fm, "forward_items", fail)
    x, w, g = _operands(4)
    dp = datapath_from_spec("fp8")
    y, ctx = dp.forward(x, w, None, Batched(), _Site(dp, np.random.default_rng(0)))
    ctx.backward(g)


@pytest.mark.parametrize("name", sorted(LOOPED))
def test_other_configurations_stay_on_the_loop(name):
    dp = datapath_from_spec(LOOPED[name])
    assert not dp.items_vectorised(Batched())
    x, w, g = _operands(5)
    _assert_same(_run(dp, x, w, g, 5, True, loop=False), _run(dp, x, w, g, 5, True, loop=True))


@pytest.mark.parametrize("seed", range(4))
def test_one_draw_over_the_items_is_the_items_draws(seed):
    """What the vectorised stochastic rounding relies on: a format's stochastic
    quantization of (S, ...) at once draws, and rounds, as S calls one per item
    (one float64 uniform per value), and leaves the Generator in the same state."""
    r = np.random.default_rng(seed)
    S, M, K = (int(v) for v in r.integers(1, 9, 3))
    x = (r.standard_normal((S, M, K)) * 10).astype(np.float32)
    for fmt in (E4M3, E5M2, FP134, IntFormat(5)):
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        s = amax_scale(x, fmt, batch_dims=1)
        q = fmt.quantize(x, "stochastic", a, scale=s)
        ref = np.stack([fmt.quantize(x[i], "stochastic", b, scale=amax_scale(x[i], fmt))
                        for i in range(S)])
        np.testing.assert_array_equal(q, ref)
        assert a.bit_generator.state == b.bit_generator.state


@pytest.mark.parametrize("seed", range(4))
def test_amax_scale_batch_dims_is_per_item(seed):
    r = np.random.default_rng(seed)
    shape = tuple(int(v) for v in r.integers(1, 6, 4))
    x = r.standard_normal(shape) * np.exp(r.uniform(-30, 30, shape))
    x[0] = 0.0
    x.flat[-1] = np.inf
    for fmt in (E4M3, E5M2, IntFormat(4)):
        for pow2 in (False, True):
            s = amax_scale(x, fmt, pow2=pow2, batch_dims=1)
            assert s.shape == (shape[0], 1, 1, 1)
            assert [float(v) for v in s.ravel()] == \
                [amax_scale(x[i], fmt, pow2=pow2) for i in range(shape[0])]
            for axis, sshape in ((0, shape[:3] + (1,)), (-1, shape[:2] + (1, shape[3]))):
                s = amax_scale(x, fmt, axis=axis, pow2=pow2, batch_dims=2)
                assert s.shape == sshape
                for i in range(shape[0]):
                    for j in range(shape[1]):
                        np.testing.assert_array_equal(
                            s[i, j], amax_scale(x[i, j], fmt, axis=axis, pow2=pow2))
    assert amax_scale(np.zeros((2, 0, 3)), E4M3, batch_dims=1).tolist() == [[[1.0]], [[1.0]]]
    with pytest.raises(ValueError):
        amax_scale(x, E4M3, batch_dims=5)


def test_dense_calls_are_unchanged():
    """A Dense call quantizes as before (batch_dims 0: one Python float scale)."""
    dp = datapath_from_spec("fp8")
    r = np.random.default_rng(3)
    x = r.standard_normal((5, 7)).astype(np.float32)
    W = r.standard_normal((4, 7)).astype(np.float32)
    y, _ = dp.forward(x, W, None, Dense(), _Site(dp, np.random.default_rng(0)))
    want = E4M3.quantize(x, scale=amax_scale(x, E4M3)) @ \
        E4M3.quantize(W, scale=amax_scale(W, E4M3)).T
    np.testing.assert_array_equal(y, want)
