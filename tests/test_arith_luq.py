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
