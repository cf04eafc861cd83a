"""HDQT layers against plain int64 references written from docs/paper.md secs 2-5,
the no-quantization limit (exact Hadamard algebra), quirk 1, and configs."""
import numpy as np
import pytest

import intsim
from intsim import nn
from intsim.kernels.hadamard import block_hadamard

NEAREST = dict(grad_rounding="nearest", act_rounding="nearest", weight_rounding="nearest")


# ------------------------------------------------------------ reference
def q_ref(x, bits, clip, signed=None):
    """docs/paper.md sec 2, round half to even; returns (int64 q, scale float64).

    As the kernels' contract (intsim.kernels.quant): m and s in float64, y = x / s
    computed in float32 (so ties break exactly as the engine's float32 path)."""
    x = np.asarray(x, np.float64)
    m = clip * np.abs(x).max()
    if signed is None:
        signed = bool(x.min() < 0)
    L = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
    if m == 0:
        return np.zeros(x.shape, np.int64), 0.0
    s = m / L
    y = x.astype(np.float32) / np.float32(s)
    return np.rint(np.clip(y, -L if signed else 0, L)).astype(np.int64), s


def clamp(v, acc_bits):
    L = 2 ** (acc_bits - 1) - 1
    return np.clip(v, -L, L)


def tiled(a, b, acc_bits, tile):
    """sum over K-tiles of clamp(a[:, tile] @ b[tile, :]); int64."""
    K = a.shape[1]
    out = np.zeros((a.shape[0], b.shape[1]), np.int64)
    for t0 in range(0, K, tile):
        out += clamp(a[:, t0:t0 + tile] @ b[t0:t0 + tile], acc_bits)
    return out


def ref_linear(x, W, g, bits=4, acc=8, tile=32):
    """docs/paper.md secs 3-4 (nearest rounding everywhere); returns y, dx, dW float64."""
    Wq, sw = q_ref(W, bits, 0.975)
    Xq, sx = q_ref(x, bits, 0.975)
    y = tiled(Xq, Wq.T, acc, tile) * sw * sx
    B, N = g.shape
    Ho, Hb = block_hadamard(N), block_hadamard(B)
    no, nb = Ho[0, 0] * 0 + np.trace(Ho @ Ho) // N, np.trace(Hb @ Hb) // B   # bp2
    W1q, s1 = q_ref(Ho @ Wq, bits, 1.0, signed=True)
    G1q, sg1 = q_ref(g @ Ho, bits, 1.0, signed=True)
    dx = clamp(G1q @ W1q, acc) * sg1 * s1 * sw / no
    X2q, sx2 = q_ref(Hb @ Xq, bits, 1.0, signed=True)
    G2q, sg2 = q_ref(g.T @ Hb, bits, 1.0, signed=True)
    dW = clamp(G2q @ X2q, acc) * sg2 * sx2 * sx / nb
    dx = dx * (np.abs(x) <= 2 ** (bits - 1) - 1)   # quirk 1
    return y, dx, dW


def im2col_ref(x, k, s, p):
    B, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    cols = np.zeros((B, Ho * Wo, C * k * k), x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            cols[:, i * Wo + j] = xp[:, :, i * s:i * s + k, j * s:j * s + k].reshape(B, -1)
    return cols, Ho, Wo


def col2im_ref(cols, shape, k, s, p):
    B, C, H, W = shape
    xp = np.zeros((B, C, H + 2 * p, W + 2 * p))
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    for i in range(Ho):
        for j in range(Wo):
            xp[:, :, i * s:i * s + k, j * s:j * s + k] += cols[:, i * Wo + j].reshape(B, C, k, k)
    return xp[:, :, p:p + H, p:p + W]


def ref_conv(x, W, bias, g, k, s, p, bits=4, acc=8, tile=32):
    """docs/paper.md sec 5: per-image backward with the L positions as the H_b batch."""
    N = W.shape[0]
    Wq, sw = q_ref(W.reshape(N, -1), bits, 0.975)
    Xq, sx = q_ref(x, bits, 0.975)
    cols, Ho, Wo = im2col_ref(Xq, k, s, p)
    B, L, K = cols.shape
    y = np.stack([tiled(cols[b], Wq.T, acc, tile) for b in range(B)]) * sw * sx
    y = y.reshape(B, Ho, Wo, N).transpose(0, 3, 1, 2) + bias[None, :, None, None]
    Ho_, Hb = block_hadamard(N), block_hadamard(L)
    no, nb = np.trace(Ho_ @ Ho_) // N, np.trace(Hb @ Hb) // L
    W1q, s1 = q_ref(Ho_ @ Wq, bits, 1.0, signed=True)
    gb = g.transpose(0, 2, 3, 1).reshape(B, L, N)
    dcols = np.zeros((B, L, K))
    dW = np.zeros((N, K))
    for b in range(B):
        G1q, sg1 = q_ref(gb[b] @ Ho_, bits, 1.0, signed=True)
        dcols[b] = clamp(G1q @ W1q, acc) * sg1 * s1 * sw / no
        X2q, sx2 = q_ref(Hb @ cols[b], bits, 1.0, signed=True)
        G2q, sg2 = q_ref(gb[b].T @ Hb, bits, 1.0, signed=True)
        dW += clamp(G2q @ X2q, acc) * sg2 * sx2 * sx / nb
    dx = col2im_ref(dcols, x.shape, k, s, p) * (np.abs(x) <= 2 ** (bits - 1) - 1)
    return y, dx, dW.reshape(W.shape), g.sum(axis=(0, 2, 3))


def dyadic(rng, shape, scale=1.0):
    """Random values on a 1/64 grid (Hadamard sums of them are exact in float32)."""
    return (np.round(rng.standard_normal(shape) * 64 * scale) / 64).astype(np.float32)


# ------------------------------------------------------------ tests
@pytest.mark.parametrize("B,K,N,xscale", [(16, 70, 12, 1.0), (8, 32, 8, 4.0), (6, 20, 5, 1.0)])
def test_linear_matches_int64_reference(B, K, N, xscale):
    rng = np.random.default_rng(B * 100 + K)
    arith = intsim.HDQT(**NEAREST)
    lin = nn.Linear(K, N, False, arith, rng)
    x = dyadic(rng, (B, K), xscale)
    g = dyadic(rng, (B, N))
    y = lin.forward(x)
    dx = lin.backward(g)
    yr, dxr, dWr = ref_linear(x, lin.weight.data, g)
    np.testing.assert_allclose(y, yr, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, dxr, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(lin.weight.grad, dWr, rtol=1e-6, atol=1e-7)
    if xscale > 1:
        assert (dx[np.abs(x) > 7] == 0).all() and (np.abs(x) > 7).any()
    aud = lin.layer_audit
    assert aud["forward"].tiles == B * N * -(-K // 32)
    if K > 64:
        assert aud["forward"].saturated > 0


@pytest.mark.parametrize("C,N,H,k,s,p", [(3, 8, 8, 3, 1, 1), (4, 8, 8, 3, 2, 1), (5, 6, 6, 1, 1, 0)])
def test_conv_matches_int64_reference(C, N, H, k, s, p):
    rng = np.random.default_rng(C * 10 + s)
    arith = intsim.HDQT(**NEAREST)
    conv = nn.Conv2d(C, N, k, s, p, True, arith, rng)
    B = 3
    x = np.maximum(dyadic(rng, (B, C, H, H)), 0) if C == 3 else dyadic(rng, (B, C, H, H))
    y = conv.forward(x)
    g = dyadic(rng, y.shape)
    dx = conv.backward(g)
    yr, dxr, dWr, dbr = ref_conv(x, conv.weight.data, conv.bias.data, g, k, s, p)
    np.testing.assert_allclose(y, yr, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, dxr, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(conv.weight.grad, dWr, rtol=1e-5, atol=1e-6 * np.abs(dWr).max())
    np.testing.assert_allclose(conv.bias.grad, dbr, rtol=1e-6, atol=1e-6)


OFF = dict(fwd_quant=False, bwd_quant=False, acc_bits=None)


def test_linear_no_quantization_equals_fp():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16, 24)).astype(np.float32)
    g = rng.standard_normal((16, 12)).astype(np.float32)
    fp = nn.Linear(24, 12, True, intsim.FP(), np.random.default_rng(1))
    hq = nn.Linear(24, 12, True, intsim.HDQT(**OFF), np.random.default_rng(1))
    np.testing.assert_array_equal(fp.forward(x), hq.forward(x))
    dx_f, dx_h = fp.backward(g), hq.backward(g)
    np.testing.assert_allclose(dx_h, dx_f, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hq.weight.grad, fp.weight.grad, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hq.bias.grad, fp.bias.grad, rtol=1e-6)


def test_conv_no_quantization_equals_fp():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
    fp = nn.Conv2d(4, 8, 3, 1, 1, False, intsim.FP(), np.random.default_rng(1))
    hq = nn.Conv2d(4, 8, 3, 1, 1, False, intsim.HDQT(**OFF), np.random.default_rng(1))
    y = fp.forward(x)
    np.testing.assert_allclose(hq.forward(x), y, rtol=1e-6, atol=1e-6)
    g = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_allclose(hq.backward(g), fp.backward(g), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hq.weight.grad, fp.weight.grad, rtol=1e-5, atol=1e-5)


def test_hadamard_off_without_quantization_also_fp():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 10)).astype(np.float32)
    g = rng.standard_normal((8, 4)).astype(np.float32)
    fp = nn.Linear(10, 4, False, intsim.FP(), np.random.default_rng(2))
    hq = nn.Linear(10, 4, False, intsim.HDQT(hadamard=False, **OFF), np.random.default_rng(2))
    fp.forward(x), hq.forward(x)
    np.testing.assert_allclose(hq.backward(g), fp.backward(g), rtol=1e-6, atol=1e-6)


def test_stochastic_backward_is_unbiased_on_average():
    rng = np.random.default_rng(8)
    arith = intsim.HDQT(fwd_quant=False, acc_bits=None)
    x = rng.standard_normal((32, 16)).astype(np.float32)
    g = rng.standard_normal((32, 8)).astype(np.float32)
    lin = nn.Linear(16, 8, False, arith, np.random.default_rng(3))
    fp = nn.Linear(16, 8, False, intsim.FP(), np.random.default_rng(3))
    fp.forward(x)
    fp.backward(g)
    acc = np.zeros_like(fp.weight.grad)
    n = 300
    for _ in range(n):
        lin.forward(x)
        lin.backward(g)
        acc += lin.weight.grad
    err = np.abs(acc / n - fp.weight.grad).mean() / np.abs(fp.weight.grad).mean()
    assert err < 0.1   # ~1/sqrt(n) noise; a biased rounding would not shrink


def test_configs_validate():
    with pytest.raises(ValueError):
        intsim.HDQT(bits=1)
    with pytest.raises(ValueError):
        intsim.HDQT(acc_mode="round")
    with pytest.raises(ValueError):
        intsim.HDQT(grad_rounding="up")
    with pytest.raises(ValueError):
        intsim.LUQ(bits=9)
    h = intsim.HDQT()
    assert (h.bits, h.accumulator.bits, h.accumulator.tile, h.fwd_clip, h.ste_raw_clip,
            h.bwd_tile) == (4, 8, 32, 0.975, True, None)
    # 16 is a real 16-bit accumulator; None (or mode "wide") is the only "no limit"
    assert intsim.HDQT(acc_bits=16).acc_limit == 16 and h.acc_limit == 8
    assert intsim.HDQT(acc_bits=None).acc_limit is None
    assert intsim.HDQT(acc_bits=8, acc_mode="wide").acc_limit is None
    assert intsim.LUQ(acc_bits=32).acc_limit == 32
    for bad in (1, 33, 64, True):
        with pytest.raises(ValueError, match=r"acc_bits must be an int in 2\.\.32 or None"):
            intsim.HDQT(acc_bits=bad)
    with pytest.raises(Exception):
        h.bits = 5   # frozen
    with pytest.raises(ValueError):
        nn.Linear(3, 2, False, "hdqt", np.random.default_rng(0))
