"""LUQ quantizers (SAWB forward, log unbiased gradient) and the LUQ layer."""
import numpy as np
import pytest

import intsim
from intsim.kernels import luq
from intsim import nn


def test_sawb_formula():
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    q, s = luq.sawb_quantize(x, 4)
    clip = 12.1 * np.sqrt(np.mean(x.astype(np.float64) ** 2)) - 12.2 * np.mean(np.abs(x))
    assert s == pytest.approx(2 * clip / 14, rel=1e-6)
    np.testing.assert_array_equal(q, np.rint(np.clip(x / np.float32(s), -7, 7)))
    qu, su = luq.sawb_quantize(np.abs(x), 4)
    assert qu.min() >= 0 and qu.max() <= 15
    z, sz = luq.sawb_quantize(np.zeros(4, np.float32), 4)
    assert sz == 0 and not z.any()


def test_log_quantize_levels_and_unbiased():
    rng = np.random.default_rng(1)
    g = (rng.standard_normal(2000) * np.exp(rng.uniform(-6, 0, 2000))).astype(np.float32)
    code, vals, alpha = luq.log_quantize(g, 4, rng)
    assert alpha == pytest.approx(np.abs(g).max() / 64)
    nz = vals != 0
    mags = np.log2(np.abs(vals[nz]) / alpha)
    np.testing.assert_allclose(mags, np.round(mags), atol=1e-5)
    assert mags.min() >= 0 and mags.max() <= 6 and np.abs(code).max() <= 7
    assert np.all(np.sign(vals[nz]) == np.sign(g[nz]))
    mean = np.mean([luq.log_quantize(g, 4, rng)[1] for _ in range(400)], axis=0)
    err = np.abs(mean - g).mean() / np.abs(g).mean()
    assert err < 0.1


def test_luq_linear_uses_quantized_operands():
    rng = np.random.default_rng(2)
    lin = nn.Linear(10, 6, False, intsim.LUQ(), np.random.default_rng(3))
    x = np.abs(rng.standard_normal((8, 10))).astype(np.float32)
    y = lin.forward(x)
    wq, sw = luq.sawb_quantize(lin.weight.data, 4)
    xq, sx = luq.sawb_quantize(x, 4)
    np.testing.assert_allclose(y, (xq @ wq.T) * sw * sx, rtol=1e-6)
    g = rng.standard_normal(y.shape).astype(np.float32)
    st = lin.rng.bit_generator.state
    dx = lin.backward(g)
    lin.rng.bit_generator.state = st
    _, gqT, _ = luq.log_quantize(np.ascontiguousarray(g.T), 4, lin.rng)   # drawn feature-major
    gq = gqT.T
    np.testing.assert_allclose(dx, gq @ (wq * sw), rtol=1e-5)
    np.testing.assert_allclose(lin.weight.grad, gq.T @ (xq * sx), rtol=1e-5)


def test_sawb_keeps_a_clip_above_max():
    # post-ReLU-like input with a few large values: SAWB's clip exceeds max|x|
    # and is kept (the authors' UniformQuantizeSawb), so the top codes go unused
    x = np.zeros(1000, np.float32)
    x[:100] = 1.0
    clip = 12.1 * np.sqrt(np.mean(x.astype(np.float64) ** 2)) - 12.2 * np.mean(x)
    assert clip > 1.0
    q, s = luq.sawb_quantize(x, 4)
    assert s == pytest.approx(2 * clip / 15, rel=1e-6)   # float32 mean vs float64
    assert q.max() == np.rint(1.0 / np.float32(s)) < 15
    # a degenerate clip (<= 0: a constant tensor) falls back to max|x|
    c, sc = luq.sawb_quantize(np.full(10, 2.0, np.float32), 4)
    assert sc == pytest.approx(2 * 2.0 / 15) and c.max() == np.rint(2.0 / np.float32(sc))


@pytest.mark.parametrize("mode", ["clamp", "saturate", "wrap"])
def test_luq_bias_inside_the_accumulator(mode):
    """y = limit(sum_k xq wq + b / (sx sw)) sx sw; db = sum of the log-quantized g."""
    rng = np.random.default_rng(5)
    arith = intsim.LUQ(acc_bits=6, acc_mode=mode)
    lin = nn.Linear(40, 7, True, arith, np.random.default_rng(6))
    lin.bias.data = (rng.standard_normal(7) * 3).astype(np.float32)
    x = rng.standard_normal((16, 40)).astype(np.float32)
    y = lin.forward(x)
    wq, sw = luq.sawb_quantize(lin.weight.data, 4)
    xq, sx = luq.sawb_quantize(x, 4)
    L = 31
    if mode == "saturate":
        S = np.zeros((16, 7))
        for k in range(40):                 # a saturating accumulator, one addition at a time
            S = np.clip(S + np.outer(xq[:, k], wq[:, k]), -L, L)
    else:
        S = (xq.astype(np.float64) @ wq.T.astype(np.float64))
    v = S + lin.bias.data.astype(np.float64) / (sx * sw)
    want = (v - 64 * np.floor((v + 32) / 64)) if mode == "wrap" else np.clip(v, -L, L)
    np.testing.assert_allclose(y, want * np.float32(sx * sw), rtol=1e-6, atol=1e-7)
    aud = lin.layer_audit["forward"]
    lo = -L - 1 if mode == "wrap" else -L
    outside = int(np.count_nonzero((v > L) | (v < lo)))
    assert outside > 0
    if mode != "saturate":
        assert aud.saturated == outside
    g = rng.standard_normal(y.shape).astype(np.float32)
    st = lin.rng.bit_generator.state
    lin.backward(g)
    lin.rng.bit_generator.state = st
    _, gqT, _ = luq.log_quantize(np.ascontiguousarray(g.T), 4, lin.rng)
    np.testing.assert_allclose(lin.bias.grad, gqT.sum(axis=1), rtol=1e-6)
    assert not np.allclose(lin.bias.grad, g.sum(axis=0), rtol=1e-3)
