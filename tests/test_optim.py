"""SGD (PyTorch semantics) and MultiStepLR."""
import numpy as np
import pytest

from intsim.nn import Parameter
from intsim.optim import SGD, MultiStepLR


def test_sgd_matches_pytorch_formula():
    rng = np.random.default_rng(0)
    p = Parameter(rng.standard_normal(5))
    w = p.data.astype(np.float64)
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    v = None
    for _ in range(4):
        g = rng.standard_normal(5).astype(np.float32)
        p.grad = g
        opt.step()
        d = g + 0.01 * w
        v = d if v is None else 0.9 * v + d
        w = w - 0.1 * v
    np.testing.assert_allclose(p.data, w, rtol=1e-5)


def test_sgd_skips_missing_grads_and_state_roundtrip():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
    opt = SGD([a, b], lr=0.5)
    a.grad = np.ones(3, np.float32)
    opt.step()
    np.testing.assert_array_equal(b.data, np.ones(2))
    st = opt.state_dict()
    opt2 = SGD([a, b], lr=0.1)
    opt2.load_state_dict(st)
    a2 = a.data.copy()
    opt.step()
    a.data = a2
    opt2.step()
    assert opt2.lr == 0.5
    with pytest.raises(ValueError):
        SGD([], lr=0.1)
    with pytest.raises(ValueError):
        SGD([a], lr=0.1, momentum=1.5)


def test_multistep_lr():
    opt = SGD([Parameter(np.zeros(1))], lr=0.05)
    sch = MultiStepLR(opt, [2, 4], gamma=0.1)
    lrs = []
    for _ in range(5):
        sch.step()
        lrs.append(opt.lr)
    np.testing.assert_allclose(lrs, [0.05, 0.005, 0.005, 0.0005, 0.0005])
    st = sch.state_dict()
    opt2 = SGD([Parameter(np.zeros(1))], lr=0.05)
    sch2 = MultiStepLR(opt2, [9])
    sch2.load_state_dict(st)
    assert opt2.lr == pytest.approx(0.0005) and sch2.milestones == [2, 4]
