"""Models: structure, classifier growth, copies, persistence, determinism, audit."""
import copy
import json

import numpy as np
import pytest

import intsim
from intsim import nn
from intsim.models import FCNet, ResNet, resnet32


def tiny_resnet(arith, seed=0, classes=4):
    return ResNet(1, classes, arith, np.random.default_rng(seed), widths=(4, 8, 8))


def train_steps(model, X, y, n=3, lr=0.05):
    opt = intsim.optim.SGD(model.parameters(), lr=lr)
    for _ in range(n):
        loss, g = nn.cross_entropy(model.forward(X), y)
        model.backward(g)
        opt.step()
    return loss


def test_resnet32_structure():
    m = resnet32(10, intsim.FP(), np.random.default_rng(0))
    convs = [n for n, mod in m.named_modules() if isinstance(mod, nn.Conv2d)]
    lins = [n for n, mod in m.named_modules() if isinstance(mod, nn.Linear)]
    assert len(convs) == 31 and len(lins) == 1 and m.feature_dim == 64
    assert all(mod.bias is None for _, mod in m.named_modules() if isinstance(mod, nn.Conv2d))
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    m.eval()
    assert m.forward(x).shape == (2, 10) and m.features(x).shape == (2, 64)
    h = resnet32(10, intsim.HDQT(), np.random.default_rng(0))
    assert all(mod.bias is not None for _, mod in h.named_modules() if isinstance(mod, nn.Conv2d))
    assert len(h.audit()) == 32


@pytest.mark.parametrize("arith", [intsim.FP(), intsim.HDQT(), intsim.LUQ()], ids=["fp", "hdqt", "luq"])
def test_fcnet_trains_and_grows(arith):
    rng = np.random.default_rng(3)
    m = FCNet(12, (12, 12), arith, rng, num_classes=2)
    X = rng.standard_normal((32, 12)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    l0, _ = nn.cross_entropy(m.forward(X), y)
    loss = train_steps(m, X, y, n=30, lr=0.1)
    assert loss < l0
    w_old = m.classifier.weight.data.copy()
    p_obj = m.classifier.weight
    m.add_classes(3, rng)
    assert m.num_classes == 5 and m.classifier.weight is p_obj
    np.testing.assert_array_equal(m.classifier.weight.data[:2], w_old)
    assert m.forward(X).shape == (32, 5)
    assert m.features(X).shape == (32, 12)


def test_deepcopy_is_independent_and_equal():
    m = tiny_resnet(intsim.HDQT())
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    old = copy.deepcopy(m)
    old.eval(), m.eval()
    np.testing.assert_array_equal(old.forward(x), m.forward(x))
    m.classifier.weight.data += 1.0
    assert not np.array_equal(old.forward(x), m.forward(x))


@pytest.mark.parametrize("arith", [intsim.FP(), intsim.HDQT()], ids=["fp", "hdqt"])
def test_save_load_roundtrip(tmp_path, arith):
    rng = np.random.default_rng(4)
    m = tiny_resnet(arith)
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    train_steps(m, x, np.array([0, 1, 2, 3]), n=2)
    m.add_classes(2, rng)
    p = tmp_path / "m.npz"
    m.save(p)
    m2 = tiny_resnet(arith, seed=9).load(p)
    assert m2.num_classes == 6
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()):
        np.testing.assert_array_equal(a, b)
    m.train(), m2.train()
    y1, y2 = m.forward(x), m2.forward(x)
    np.testing.assert_array_equal(y1, y2)
    _, g = nn.cross_entropy(y1, np.arange(4))
    np.testing.assert_array_equal(m.backward(g), m2.backward(g))   # same rng states
    with pytest.raises(FileNotFoundError):
        m2.load(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError):
        m2.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("arith", [intsim.HDQT(), intsim.LUQ()], ids=["hdqt", "luq"])
def test_same_seed_bit_identical_and_no_global_rng(arith):
    X = np.random.default_rng(5).standard_normal((6, 3, 8, 8)).astype(np.float32)
    y = np.arange(6) % 4
    before = np.random.get_state()
    runs = []
    for seed in (11, 11, 12):
        m = tiny_resnet(arith, seed=seed)
        train_steps(m, X, y, n=3)
        runs.append(np.concatenate([p.data.ravel() for p in m.parameters()]))
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_rng_state_checkpoint():
    m = FCNet(8, (8,), intsim.HDQT(), np.random.default_rng(6), num_classes=3)
    X = np.random.default_rng(7).standard_normal((16, 8)).astype(np.float32)
    st = json.loads(json.dumps(m.rng_state()))
    m.forward(X)
    _, g = nn.cross_entropy(m.forward(X), np.arange(16) % 3)
    d1 = m.backward(g)
    m.set_rng_state(st)
    m.forward(X)
    d2 = m.backward(g)
    np.testing.assert_array_equal(d1, d2)
    with pytest.raises(ValueError):
        m.set_rng_state({})


def test_audit_records_every_pass_and_resets():
    m = tiny_resnet(intsim.HDQT())
    x = np.random.default_rng(8).standard_normal((2, 3, 8, 8)).astype(np.float32)
    _, g = nn.cross_entropy(m.forward(x), np.array([0, 1]))
    m.backward(g)
    aud = m.audit()
    assert len(aud) == 7 + 1 and "classifier" in aud and "backbone.0" in aud
    for name, passes in aud.items():
        # the first layer computes no input gradient: no backward_input pass
        want = {"forward", "backward_weight"} | ({"backward_input"} if name != "backbone.0"
                                                 else set())
        assert set(passes) == want, name
        for p, a in passes.items():
            assert a.tiles > 0, (name, p)
            assert 0 < a.levels_used <= 1
    lv = m.levels_used()
    assert set(lv["backbone.0"]) >= {"forward.x", "forward.W",
                                      "backward_weight.HbX", "backward_weight.gHb"}
    assert "backward_input.gHo" in lv["backbone.3.conv1"]
    m.reset_audit()
    assert all(a.tiles == 0 and a.levels_used is None for p in m.audit().values() for a in p.values())


def test_eval_per_sample_quirk5():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((8, 10)).astype(np.float32)
    X[0] *= 20   # one outlier sample sets the batch scale
    for per, same in ((True, True), (False, False)):
        m = FCNet(10, (10,), intsim.HDQT(eval_per_sample=per), np.random.default_rng(1), num_classes=3)
        m.eval()
        full = m.forward(X)[1:]
        part = m.forward(X[1:])
        assert np.array_equal(full, part) == same


def test_bad_inputs():
    m = FCNet(5, 5, intsim.FP(), np.random.default_rng(0), num_classes=2)
    with pytest.raises(ValueError):
        m.forward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError):
        m.forward(np.full((2, 5), np.nan, np.float32))
    with pytest.raises(ValueError):
        FCNet(5, 5, intsim.FP(), np.random.default_rng(0), num_classes=0).forward(np.zeros((1, 5)))
