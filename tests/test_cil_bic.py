"""BiC bias layers (finite-difference gradients), KD/CE loss gradients, the
stage-2 softmax-CE gradient and the validation split size."""
import numpy as np
import pytest

from intsim.cil.bic import BiasLayers, BiC
from intsim.cil.config import CILConfig
from intsim.nn import cross_entropy, kd_loss
from gradcheck import numerical_grad


def _layers(vals):
    b = BiasLayers()
    for (lo, hi), (a, be) in vals:
        b.add(lo, hi)
        b.alphas[-1].data[0] = a
        b.betas[-1].data[0] = be
    return b


def test_bias_forward_values():
    b = _layers([((0, 2), (1.0, 0.0)), ((2, 5), (0.5, -1.0))])
    z = np.arange(10, dtype=np.float32).reshape(2, 5)
    out = b.forward(z)
    np.testing.assert_array_equal(out[:, :2], z[:, :2])
    np.testing.assert_array_equal(out[:, 2:], 0.5 * z[:, 2:] - 1.0)
    with pytest.raises(ValueError):
        b.add(3, 6)  # overlaps the last range


def test_bias_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    b = _layers([((0, 2), (1.3, 0.2)), ((2, 4), (0.7, -0.4)), ((4, 7), (1.1, 0.5))])
    z = rng.normal(size=(5, 7)).astype(np.float64)
    w = rng.normal(size=(5, 7))          # loss L = sum(w * out)
    b.forward(z)
    gz = b.backward(w.copy())
    eps = 1e-6

    def L(zz):
        return float(np.sum(w * b.apply(zz)))

    num_z = numerical_grad(L, z, eps)
    np.testing.assert_allclose(gz, num_z, rtol=1e-4, atol=1e-6)
    for p in b.parameters():
        old = p.data[0]
        p.data[0] = old + 1e-3
        lp = L(z)
        p.data[0] = old - 1e-3
        lm = L(z)
        p.data[0] = old
        np.testing.assert_allclose(p.grad[0], (lp - lm) / 2e-3, rtol=1e-3, atol=1e-4)


def test_bias_state_roundtrip():
    b = _layers([((0, 2), (1.5, 0.25)), ((2, 4), (0.75, -0.5))])
    c = BiasLayers()
    c.load_state_dict(b.state_dict())
    assert c.bounds == b.bounds and c.values() == b.values()



def test_kd_and_ce_gradients():
    rng = np.random.default_rng(1)
    p = rng.normal(size=(4, 3))
    q = rng.normal(size=(4, 3))
    y = np.array([0, 2, 1, 2])
    for T in (1.0, 2.0):
        loss, g = kd_loss(p, q, T=T)
        ref = -np.sum(np.exp(q / T) / np.exp(q / T).sum(1, keepdims=True)
                      * (p / T - np.log(np.exp(p / T).sum(1, keepdims=True)))) / 4
        assert loss == pytest.approx(ref, rel=1e-10)
        np.testing.assert_allclose(g, numerical_grad(lambda x: kd_loss(x, q, T=T)[0], p),
                                   rtol=1e-5, atol=1e-8)
    _, g = cross_entropy(p, y)
    np.testing.assert_allclose(g, numerical_grad(lambda x: cross_entropy(x, y)[0], p),
                               rtol=1e-5, atol=1e-8)


def test_stage2_softmax_ce_gradient():
    cfg = CILConfig.for_dataset("hapt", "bic", bic_stage2_softmax=True)
    learner = BiC.__new__(BiC)      # only _bias_loss/config are needed
    learner.config = cfg
    rng = np.random.default_rng(2)
    z = rng.normal(size=(3, 4))
    y = np.array([1, 3, 0])
    _, g = learner._bias_loss(None, y, z)
    np.testing.assert_allclose(g, numerical_grad(lambda x: learner._bias_loss(None, y, x)[0], z),
                               rtol=1e-5, atol=1e-8)


def test_stage2_loss_setting_reaches_bic_and_warns_elsewhere():
    """--bic-stage2-loss softmax-ce (the released code's loss) switches BiC's stage 2;
    given to another method it is reported as having no effect."""
    from intsim.app.build import cil_config, ineffective_settings
    from intsim.app.config import ConfigError, resolve
    assert not cil_config(resolve(None, {"method": "bic"})).bic_stage2_softmax
    cfg = resolve(None, {"method": "bic", "bic_stage2_loss": "softmax-ce"})
    assert cil_config(cfg).bic_stage2_softmax
    assert ineffective_settings(cfg, ["bic_stage2_loss"]) == []
    other = resolve(None, {"method": "icarl", "bic_stage2_loss": "softmax-ce"})
    assert any("bic_stage2_loss" in w for w in ineffective_settings(other, ["bic_stage2_loss"]))
    with pytest.raises(ConfigError, match="bic_stage2_loss"):
        resolve(None, {"bic_stage2_loss": "softmax"})
