"""Finite-difference gradient checks (float64, FP datapath) of the layers of modern
nets: LayerNorm, GELU, Softmax, Dropout, Add and Residual, Embedding, pooling,
grouped and depthwise convolutions, the product of two activations, multi-head
self-attention and a pre-norm transformer block; and Dropout's seeded masks."""
import numpy as np
import pytest

import intsim
from intsim import nn
from gradcheck import check_grads, numerical_grad

FP = intsim.FP()


@pytest.fixture
def rng():
    return np.random.default_rng(4321)


class _TwoInputs(nn.Module):
    """A two-input module as a one-input one: x is the flat concatenation of both."""

    def __init__(self, module, shape_a, shape_b):
        super().__init__()
        self.m, self.sa, self.sb = module, shape_a, shape_b

    def forward(self, x):
        na = int(np.prod(self.sa))
        return self.m.forward(x[:na].reshape(self.sa), x[na:].reshape(self.sb))

    def backward(self, grad):
        ga, gb = self.m.backward(grad)
        return np.concatenate([ga.ravel(), gb.ravel()])


def test_layernorm(rng):
    ln = nn.LayerNorm(6)
    ln.weight.data = rng.standard_normal(6).astype(np.float32)
    ln.bias.data = rng.standard_normal(6).astype(np.float32)
    check_grads(ln, rng.standard_normal((2, 3, 6)), rng)


def test_layernorm_matches_its_definition(rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    y = nn.LayerNorm(5).forward(x)
    assert y.dtype == np.float32
    ref = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_gelu(rng):
    check_grads(nn.GELU(), rng.standard_normal((3, 7)) * 2, rng)


def test_gelu_is_the_erf_form():
    from math import erf, sqrt
    x = np.array([-3.0, -0.5, 0.0, 0.7, 2.5], np.float32)
    y = nn.GELU().forward(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [v * 0.5 * (1 + erf(v / sqrt(2))) for v in x], rtol=1e-6)


def test_softmax(rng):
    check_grads(nn.Softmax(), rng.standard_normal((2, 3, 5)), rng)
    y = nn.Softmax().forward(np.array([[1.0, -np.inf, 2.0]], np.float32))
    assert y[0, 1] == 0 and y.sum() == pytest.approx(1.0)


def test_add(rng):
    check_grads(_TwoInputs(nn.Add(), (2, 3), (2, 3)), rng.standard_normal(12), rng)


def test_pre_norm_transformer_block(rng):
    """Residual(LayerNorm, attention) then Residual(LayerNorm, Linear, GELU, Dropout
    (eval), Linear) on tokens (B, T, D): the Linear layers take (B T, D) rows."""
    class Tokens(nn.Module):
        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, x):
            self._shape = x.shape
            return self.body.forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)

        def backward(self, g):
            return self.body.backward(g.reshape(-1, g.shape[-1])).reshape(self._shape)

    D = 8
    block = nn.Sequential(
        nn.Residual(nn.Sequential(nn.LayerNorm(D), nn.MultiHeadSelfAttention(D, 2, FP, rng))),
        nn.Residual(nn.Sequential(nn.LayerNorm(D), Tokens(nn.Sequential(
            nn.Linear(D, 2 * D, True, FP, rng), nn.GELU(), nn.Dropout(0.1, rng),
            nn.Linear(2 * D, D, True, FP, rng))))))
    block.eval()
    check_grads(block, rng.standard_normal((2, 4, D)), rng, n_dirs=2)
    assert "0.body.1.qk" in dict(block.named_modules())


@pytest.mark.parametrize("cls,k,s,p,shape", [
    (nn.MaxPool2d, 2, None, 0, (2, 3, 6, 5)), (nn.MaxPool2d, 3, 2, 1, (2, 2, 7, 6)),
    (nn.AvgPool2d, 2, None, 0, (2, 3, 6, 5)), (nn.AvgPool2d, 3, 2, 1, (2, 2, 7, 6)),
    (nn.MaxPool1d, 3, 2, 1, (2, 3, 9)), (nn.MaxPool1d, 2, None, 0, (2, 3, 8)),
    (nn.AvgPool1d, 3, 1, 1, (2, 3, 7)), (nn.AvgPool1d, 4, None, 0, (1, 2, 9))])
def test_pooling(rng, cls, k, s, p, shape):
    check_grads(cls(k, s, p), rng.standard_normal(shape), rng)


def test_pooling_values():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(nn.MaxPool2d(2).forward(x)[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(nn.AvgPool2d(2).forward(x)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    # padding: max ignores it, the average counts it (PyTorch's count_include_pad)
    np.testing.assert_array_equal(nn.MaxPool1d(3, 2, 1).forward(x[:, :, 0]), [[[1, 3]]])
    np.testing.assert_allclose(nn.AvgPool1d(3, 2, 1).forward(x[:, :, 0]), [[[1 / 3, 2]]])


@pytest.mark.parametrize("cin,cout,groups,k,s,p", [(4, 6, 2, 3, 1, 1), (6, 6, 3, 2, 2, 0),
                                                   (4, 4, 4, 3, 1, 1), (3, 6, 3, 3, 2, 1)])
def test_grouped_conv(rng, cin, cout, groups, k, s, p):
    check_grads(nn.Conv2d(cin, cout, k, s, p, True, FP, rng, groups=groups),
                rng.standard_normal((2, cin, 6, 5)), rng)


def test_grouped_conv_is_a_block_diagonal_conv(rng):
    g = nn.Conv2d(4, 6, 3, 1, 1, True, FP, rng, groups=2)
    full = nn.Conv2d(4, 6, 3, 1, 1, True, FP, rng)
    full.weight.data = np.zeros_like(full.weight.data)
    full.weight.data[:3, :2] = g.weight.data[:3]
    full.weight.data[3:, 2:] = g.weight.data[3:]
    full.bias.data = g.bias.data.copy()
    x = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(g.forward(x), full.forward(x), rtol=1e-5, atol=1e-6)


def test_activation_product(rng):
    m = nn.ActivationProduct(FP, rng)
    check_grads(_TwoInputs(m, (3, 4, 5), (3, 2, 5)), rng.standard_normal(3 * 4 * 5 + 3 * 2 * 5),
                rng)


@pytest.mark.parametrize("causal", [False, True])
def test_attention(rng, causal):
    m = nn.MultiHeadSelfAttention(8, 2, FP, rng, causal=causal)
    check_grads(m, rng.standard_normal((2, 5, 8)), rng)


def test_causal_attention_ignores_the_future(rng):
    m = nn.MultiHeadSelfAttention(8, 2, FP, rng, causal=True)
    x = rng.standard_normal((1, 5, 8)).astype(np.float32)
    y = m.forward(x)
    x2 = x.copy()
    x2[0, 3:] += 1.0
    np.testing.assert_array_equal(m.forward(x2)[0, :3], y[0, :3])


def test_embedding(rng):
    emb = nn.Embedding(7, 3, rng)
    emb.to_dtype(np.float64)
    ids = np.array([[1, 4, 1], [6, 0, 1]])
    R = rng.standard_normal((2, 3, 3))
    emb.forward(ids)
    assert emb.backward(R) is None

    def loss(w):
        emb.weight.data = w
        return float(np.sum(R * emb.forward(ids)))
    w0 = emb.weight.data.copy()
    num = numerical_grad(loss, w0.copy())
    emb.weight.data = w0
    np.testing.assert_allclose(emb.weight.grad, num, rtol=1e-6, atol=1e-9)
    assert np.all(emb.weight.grad[[2, 3, 5]] == 0)
    with pytest.raises(ValueError):
        emb.forward(np.array([7]))


def test_dropout_gradient_is_the_mask(rng):
    d = nn.Dropout(0.25, rng)
    x = rng.standard_normal((4, 50)).astype(np.float32)
    y = d.forward(x)
    assert y.dtype == np.float32
    keep = y != 0
    np.testing.assert_allclose(y[keep], x[keep] / 0.75, rtol=1e-6)
    g = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(d.backward(g), np.where(keep, g / 0.75, 0), rtol=1e-6)
    d.eval()
    check_grads(d, rng.standard_normal((3, 4)), rng)


def test_dropout_same_seed_same_mask_and_eval_identity():
    x = np.ones((8, 16), np.float32)
    a = nn.Dropout(0.5, np.random.default_rng(3))
    b = nn.Dropout(0.5, np.random.default_rng(3))
    c = nn.Dropout(0.5, np.random.default_rng(4))
    ya, yb, yc = a.forward(x), b.forward(x), c.forward(x)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(ya, yc)
    assert not np.array_equal(a.forward(x), ya)           # a new mask every call
    a.eval()
    assert a.forward(x) is x
    np.testing.assert_array_equal(a.backward(x), x)


def test_dropout_state_resumes():
    d = nn.Dropout(0.3, np.random.default_rng(0))
    x = np.ones(100, np.float32)
    state = d.rng_state()
    first = d.forward(x)
    d.set_rng_state(state)
    np.testing.assert_array_equal(d.forward(x), first)


def test_dropout_keep_fraction():
    """Each element kept with probability 1 - p, independently: the kept fraction of
    200 000 draws is within 5 standard deviations of 1 - p, and the mean is kept."""
    p, n = 0.3, 200_000
    d = nn.Dropout(p, np.random.default_rng(11))
    y = d.forward(np.ones(n, np.float32))
    frac = np.count_nonzero(y) / n
    assert abs(frac - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    assert abs(y.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)
