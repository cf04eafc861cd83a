"""The contract every datapath keeps, tested over every registered kind and preset
(and compositions that mix parts): shapes, the same bits for the same seed, a
resumed run equal to an uninterrupted one, audit rows per layer and pass, and
the float preset's gradients against finite differences in float64."""
import numpy as np
import pytest

import intsim
import intsim.models
from intsim import nn
from intsim.datapath import DATAPATHS, PRESETS, datapath_from_spec
from intsim.optim import make_optimizer

from gradcheck import numerical_grad

#: compositions beyond the presets: every part class of every slot appears
COMPOSED = {
    "formats-fp16acc-pairwise": {"kind": "formats", "weights": "e4m3", "activations": "e4m3",
                                 "gradients": "e5m2", "accumulator": {
                                     "kind": "float", "format": "fp16", "tile": 8,
                                     "outer_format": "fp32", "order": "pairwise"}},
    "formats-bf16acc-kahan": {"kind": "formats", "weights": "bf16", "activations": "bf16",
                              "gradients": "bf16", "accumulator": {
                                  "kind": "float", "format": "bf16", "order": "kahan"}},
    "formats-int4-intacc": {"kind": "formats", "weights": "int4", "activations": "int4",
                            "gradients": "int4", "gradient_rounding": "stochastic",
                            "accumulator": {"kind": "int", "bits": 8, "tile": 16,
                                            "mode": "saturate"}},
    "formats-mxfp4-hadamard": {"kind": "formats", "weights": "mxfp4_e2m1",
                               "activations": "mxfp4_e2m1", "gradients": "mxfp4_e2m1",
                               "gradient_rounding": "stochastic",
                               "transform": {"kind": "hadamard", "size": 4}},
    "integer-int6-wrap-block4": {"kind": "integer", "forward_format": "int6",
                                 "backward_format": "int5",
                                 "transform": {"kind": "hadamard", "size": 4},
                                 "accumulator": {"kind": "int", "bits": 12, "tile": 8,
                                                 "mode": "wrap"}, "backward_tile": 16},
    "preset-hdqt-fp-acc-wide": {"preset": "hdqt", "accumulator.mode": "wide"},
}
SPECS = ({f"preset-{n}": n for n in PRESETS} | {f"kind-{k}": {"kind": k} for k in DATAPATHS}
         | COMPOSED)


def _dp(name):
    return datapath_from_spec(SPECS[name])


def _models(dp, seed):
    """A small FCNet (dense) and a small ResNet (conv, one block a stage)."""
    return (intsim.models.FCNet(24, (16, 16), dp, np.random.default_rng(seed), num_classes=4),
            intsim.models.ResNet(1, 4, dp, np.random.default_rng(seed), widths=(4, 8, 8)))


def _data(kind, seed=0):
    r = np.random.default_rng(seed)
    if kind == "dense":
        return r.standard_normal((16, 24)).astype(np.float32), r.integers(0, 4, 16)
    return r.standard_normal((3, 3, 8, 8)).astype(np.float32), r.integers(0, 4, 3)


def _step(m, opt, X, y):
    m.train()
    _, g = nn.cross_entropy(m.forward(X), y)
    m.backward(g)
    opt.step()


def _snapshot(m):
    m.eval()
    out = [m.forward(_data("conv" if isinstance(m, intsim.models.ResNet) else "dense", 9)[0])]
    out += [v.copy() for _, v in sorted(m.state_dict().items())]
    out += [p.grad.copy() for p in m.parameters() if p.grad is not None]
    return out


def _run(name, which, steps=3, task_end=2, resume=False):
    """``steps`` SGD steps; the optimizer is made anew after step ``task_end`` (a task
    boundary, where a run checkpoints); ``resume``: there the model is also rebuilt
    from another init and restored from the checkpoint (state dict, Generators)."""
    dp = _dp(name)
    m = _models(dp, 3)[which]
    X, y = _data("dense" if which == 0 else "conv")
    opt = make_optimizer(m.parameters(), 0.05, 0.9, 1e-4, arith=dp, rng=np.random.default_rng(4))
    for i in range(steps):
        if i == task_end:
            if resume:
                state, rng_state = m.state_dict(), m.rng_state()
                m = _models(dp, 99)[which]          # another init: everything must come back
                m.load_state_dict(state)
                m.set_rng_state(rng_state)
            opt = make_optimizer(m.parameters(), 0.05, 0.9, 1e-4, arith=dp,
                                 rng=np.random.default_rng(5))
        _step(m, opt, X, y)
    return m


@pytest.mark.parametrize("name", sorted(SPECS))
def test_shapes_and_audit_rows(name):
    dp = _dp(name)
    for which, kind in ((0, "dense"), (1, "conv")):
        m = _models(dp, 1)[which]
        X, y = _data(kind)
        logits = m.forward(X)
        assert logits.shape == (len(y), 4) and logits.dtype == np.float32
        assert np.all(np.isfinite(logits))
        _, g = nn.cross_entropy(logits, y)
        m.backward(g)
        for p in m.parameters():
            assert p.grad is not None and p.grad.shape == p.data.shape, p.name
            assert np.all(np.isfinite(p.grad))
        layers = [n for n, mod in m.named_modules()
                  if isinstance(mod, (nn.Linear, nn.Conv2d))]
        audit = m.audit()
        if not dp.quantized:
            assert audit == {}
            continue
        assert set(audit) == set(layers)
        first = layers[0]
        for layer, passes in audit.items():
            want = {"forward", "backward_weight"} | ({"backward_input"} if layer != first
                                                    else set())
            assert set(passes) == want, layer
            row = passes["forward"].as_dict()
            assert row["tiles"] > 0, (layer, row)


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("which", [0, 1])
def test_same_seed_same_bits_and_resume(name, which):
    a = _snapshot(_run(name, which))
    b = _snapshot(_run(name, which))
    c = _snapshot(_run(name, which, resume=True))
    assert len(a) == len(b) == len(c)
    for x, y, z in zip(a, b, c):
        assert np.array_equal(x, y)
        assert np.array_equal(x, z)


def test_a_different_seed_changes_stochastic_datapaths():
    """The equality above is not vacuous: the layers' Generators drive the draws."""
    dp = PRESETS["hdqt"].build()
    m1 = intsim.models.FCNet(24, (16, 16), dp, np.random.default_rng(3), num_classes=4)
    m2 = intsim.models.FCNet(24, (16, 16), dp, np.random.default_rng(3), num_classes=4)
    m2.set_rng_state({k: np.random.default_rng(5).bit_generator.state for k in m2.rng_state()})
    X, y = _data("dense")
    grads = []
    for m in (m1, m2):
        _, g = nn.cross_entropy(m.forward(X), y)
        m.backward(g)
        grads.append(m.backbone[0].weight.grad.copy())
    assert not np.array_equal(*grads)


@pytest.mark.parametrize("which", [0, 1])
def test_fp_preset_gradients_match_finite_differences(which):
    dp = PRESETS["fp"].build()
    m = _models(dp, 2)[which]
    m.to_dtype(np.float64)
    X, y = _data("dense" if which == 0 else "conv")
    X = X.astype(np.float64)[:4 if which == 0 else 2]
    y = y[:len(X)]
    m.train()
    _, g = nn.cross_entropy(m.forward(X), y)
    dx = m.backward(g)
    params = [p for p in m.parameters() if p.data.ndim > 1][:2] + [m.parameters()[-1]]
    for p in params:
        def loss(w, p=p):
            old = p.data
            p.data = w
            out = nn.cross_entropy(m.forward(X), y)[0]
            p.data = old
            return out
        sub = tuple(slice(0, 3) for _ in p.data.shape)
        num = numerical_grad(loss, p.data.copy())[sub]
        np.testing.assert_allclose(p.grad[sub], num, rtol=1e-5, atol=1e-7)
