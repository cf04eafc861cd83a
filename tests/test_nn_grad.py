"""Finite-difference gradient checks (float64) of every FP layer, the losses,
a ResNet block and FCNet, in the spirit of HIPS/autograd's test_util."""
import numpy as np
import pytest

import intsim
from intsim import nn
from intsim.models import FCNet
from intsim.models.resnet import BasicBlock, ResNet, ShortcutA
from gradcheck import check_grads, numerical_grad


FP = intsim.FP()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_linear(rng):
    check_grads(nn.Linear(7, 5, True, FP, rng), rng.standard_normal((4, 7)), rng)


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 1), (1, 1, 0), (2, 2, 0), (3, 1, 0)])
def test_conv(rng, k, s, p):
    check_grads(nn.Conv2d(3, 4, k, s, p, True, FP, rng), rng.standard_normal((2, 3, 7, 6)), rng)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm(rng, training):
    bn = nn.BatchNorm2d(3)
    bn.weight.data = rng.standard_normal(3).astype(np.float32)
    bn.bias.data = rng.standard_normal(3).astype(np.float32)
    bn.running_mean = rng.standard_normal(3).astype(np.float32)
    bn.running_var = rng.uniform(0.5, 2, 3).astype(np.float32)
    bn.train(training)
    check_grads(bn, rng.standard_normal((3, 3, 4, 5)), rng)


def test_relu_pool_flatten(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    check_grads(nn.Sequential(nn.ReLU(), nn.GlobalAvgPool(), nn.Flatten()), x, rng)


@pytest.mark.parametrize("cin,cout,s", [(4, 4, 1), (4, 8, 2)])
def test_shortcut(rng, cin, cout, s):
    check_grads(ShortcutA(cin, cout, s), rng.standard_normal((2, cin, 6, 6)), rng)


@pytest.mark.parametrize("cin,cout,s", [(4, 4, 1), (4, 8, 2)])
def test_resnet_block(rng, cin, cout, s):
    check_grads(BasicBlock(cin, cout, s, FP, rng), rng.standard_normal((3, cin, 6, 6)), rng)


def _with_input_grad(m):
    """A model's first layer computes no input gradient; switch it on to check it."""
    for _, mod in m.named_modules():
        if hasattr(mod, "need_input_grad"):
            mod.need_input_grad = True
    return m


def test_small_resnet(rng):
    m = _with_input_grad(ResNet(1, 5, FP, rng, widths=(4, 8, 8)))
    check_grads(m, rng.standard_normal((3, 3, 8, 8)), rng, n_dirs=1)


def test_fcnet(rng):
    m = _with_input_grad(FCNet(6, (5, 4), FP, rng, num_classes=3, classifier_bias=True))
    check_grads(m, rng.standard_normal((4, 6)), rng)


def test_first_layer_computes_no_input_gradient(rng):
    """Model.backward returns None; the weight gradients are those of a backward that
    computes it (FP, HDQT and LUQ, the HDQT draws included), and the first layer's
    audit has no backward_input pass."""
    import intsim
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    for arith in (FP, intsim.HDQT(), intsim.LUQ(acc_bits=8)):
        grads = []
        for need in (False, True):
            m = ResNet(1, 5, arith, np.random.default_rng(7), widths=(4, 8, 8))
            if need:
                _with_input_grad(m)
            m.train()
            y = m.forward(x)
            out = m.backward(np.ones_like(y) / y.size)
            assert (out is None) == (not need)
            grads.append([p.grad.copy() for p in m.parameters()])
            first = m.audit().get("backbone.0")
            if first is not None:
                assert ("backward_input" in first) == need
        for a, b in zip(*grads):
            np.testing.assert_array_equal(a, b)



def test_cross_entropy(rng):
    z = rng.standard_normal((4, 5))
    y = np.array([0, 4, 2, 2])
    loss, g = nn.cross_entropy(z, y)
    assert loss == pytest.approx(-np.mean(np.log(np.exp(z[np.arange(4), y]) / np.exp(z).sum(1))))
    np.testing.assert_allclose(g, numerical_grad(lambda t: nn.cross_entropy(t, y)[0], z), rtol=1e-6, atol=1e-9)


def test_kd_loss(rng):
    z, q = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    loss, g = nn.kd_loss(z, q, T=2.0)
    pq = np.exp(q / 2) / np.exp(q / 2).sum(1, keepdims=True)
    ref = -np.mean(np.sum(pq * np.log(np.exp(z / 2) / np.exp(z / 2).sum(1, keepdims=True)), 1))
    assert loss == pytest.approx(ref)
    np.testing.assert_allclose(g, numerical_grad(lambda t: nn.kd_loss(t, q, T=2.0)[0], z), rtol=1e-6, atol=1e-9)


def test_loss_bad_input():
    with pytest.raises(ValueError):
        nn.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError):
        nn.cross_entropy(np.array([[np.nan, 0.0]]), np.array([0]))
    with pytest.raises(ValueError):
        nn.kd_loss(np.zeros((2, 3)), np.zeros((2, 4)))
