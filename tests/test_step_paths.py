"""Whole training steps: the fast paths (K-major conv, draws inside the kernels)
give the reference path's weights, gradients, audit counts and random states,
bit for bit, for ResNet-32 and FCNet under every arithmetic."""
import numpy as np
import pytest

import intsim
from intsim import nn
from intsim.models import FCNet, resnet32

from test_kernels_fast import RefPCG64, pos


def _reference(model):
    """Switch a model to the reference paths: per-image conv layout, NumPy draws."""
    for _, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            m.kmajor = False
        if getattr(m, "rng", None) is not None:
            g = np.random.Generator(RefPCG64())
            g.bit_generator.state = {**m.rng.bit_generator.state, "bit_generator": "RefPCG64"}
            m.rng = g


def _steps(build, X, y, ref, n=2):
    model = build()
    if ref:
        _reference(model)
    opt = intsim.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(n):
        _, g = nn.cross_entropy(model.forward(X), y)
        model.backward(g)
        opt.step()
    model.eval()
    logits = model.forward(X)
    rngs = [pos(m.rng) for _, m in model.named_modules() if getattr(m, "rng", None) is not None]
    return (model.state_dict(), [p.grad for p in model.parameters()],
            model.audit() if model.arith.quantized else None, logits, rngs)


def _same(a, b):
    sa, ga, aa, la, ra = a
    sb, gb, ab, lb, rb = b
    assert sa.keys() == sb.keys()
    for k in sa:
        assert np.array_equal(sa[k], sb[k]), k
    for x, y in zip(ga, gb):
        assert np.array_equal(x, y)
    assert str(aa) == str(ab)
    assert np.array_equal(la, lb)
    assert ra == rb


ARITHS = {"hdqt": intsim.HDQT(), "luq": intsim.LUQ(),
          "saturate": intsim.HDQT(acc_mode="saturate"),
          "wrap-bwdtile": intsim.HDQT(acc_mode="wrap", bwd_tile=8, acc_bits=10),
          "no-requant": intsim.HDQT(requantize=False, weight_rounding="stochastic")}


@pytest.mark.parametrize("name", list(ARITHS))
def test_resnet32_step_fast_equals_reference(name):
    r = np.random.default_rng(5)
    X = r.standard_normal((3, 3, 32, 32)).astype(np.float32)
    y = r.integers(0, 10, 3)

    def build():
        return resnet32(10, ARITHS[name], np.random.default_rng(1))
    _same(_steps(build, X, y, ref=True), _steps(build, X, y, ref=False))


@pytest.mark.parametrize("name", ["hdqt", "luq", "saturate"])
def test_fcnet_step_fast_equals_reference(name):
    r = np.random.default_rng(6)
    X = r.standard_normal((64, 561)).astype(np.float32)
    y = r.integers(0, 6, 64)

    def build():
        return FCNet(561, (561, 561), ARITHS[name], np.random.default_rng(2), num_classes=6)
    _same(_steps(build, X, y, ref=True), _steps(build, X, y, ref=False))


def test_resnet32_fp_kmajor_close_to_reference():
    """FP convs run as whole-batch GEMMs: BLAS sums in another order than the
    per-image reference, so the step agrees to float rounding, not bit for bit."""
    r = np.random.default_rng(7)
    X = r.standard_normal((3, 3, 32, 32)).astype(np.float32)
    y = r.integers(0, 10, 3)

    def build():
        return resnet32(10, intsim.FP(), np.random.default_rng(1))
    (sa, ga, _, la, _), (sb, gb, _, lb, _) = (_steps(build, X, y, ref=True, n=1),
                                              _steps(build, X, y, ref=False, n=1))
    for x, z in zip(ga, gb):
        np.testing.assert_allclose(x, z, rtol=2e-3, atol=1e-5 * max(1.0, float(np.abs(x).max())))
    np.testing.assert_allclose(la, lb, rtol=1e-3, atol=1e-4)
