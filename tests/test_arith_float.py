"""Float datapaths: FP8 (E4M3 forward, E5M2 backward) and the
paper's FP134 (lptorch), layer by layer, the quantized SGD, and end to end
through the CLI on FCNet and ResNet-32."""
import json
import struct

import numpy as np
import pytest
from click.testing import CliRunner

import intsim
from intsim import nn
from intsim.datapath import PRESETS as ARITHS, FP8, FP134, FormatsDatapath
from intsim.arith.lptorch import FloatPassAudit, lp_quantize, lp_scale
from intsim.cli import main
from intsim.formats import E4M3, E5M2, FP134 as FP134_FMT, LPTORCH_MASTER, amax_scale
from intsim.optim import SGD, QuantizedSGD, make_optimizer

from test_cli_train import FAST, train


def _x(shape, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


# ----------------------------------------------------------------------- FP8
def test_fp8_linear_forward_is_the_float_matmul_of_the_quantized_operands():
    lin = nn.Linear(20, 7, True, FP8(), np.random.default_rng(0))
    x = _x((5, 20), 1, 30.0)
    y = lin.forward(x)
    xq = E4M3.quantize(x, scale=amax_scale(x, E4M3))
    wq = E4M3.quantize(lin.weight.data, scale=amax_scale(lin.weight.data, E4M3))
    assert np.array_equal(y, xq @ wq.T + lin.bias.data)
    assert len(np.unique(np.abs(xq / amax_scale(x, E4M3)))) <= 127      # on the E4M3 grid
    # per-channel weight scales: row n on E4M3 at its own scale
    lin2 = nn.Linear(20, 7, False, FP8(scaling="channel"), np.random.default_rng(0))
    W = lin2.weight.data
    W *= np.float32(10.0) ** np.arange(-3, 4, dtype=np.float32)[:, None]
    y2 = lin2.forward(x)
    sw = amax_scale(W, E4M3, axis=0)
    assert sw.shape == (7, 1)
    assert np.array_equal(y2, xq @ E4M3.quantize(W, scale=sw).T)


def test_fp8_linear_backward_uses_the_e5m2_gradient():
    lin = nn.Linear(12, 6, True, FP8(), np.random.default_rng(0))
    x = _x((4, 12), 2)
    lin.forward(x)
    g = _x((4, 6), 3, 1e-3)
    dx = lin.backward(g)
    gq = E5M2.quantize(g, scale=amax_scale(g, E5M2))
    xq = E4M3.quantize(x, scale=amax_scale(x, E4M3))
    wq = E4M3.quantize(lin.weight.data, scale=amax_scale(lin.weight.data, E4M3))
    assert np.array_equal(lin.weight.grad, gq.T @ xq)
    assert np.array_equal(dx, gq @ wq)
    assert np.array_equal(lin.bias.grad, g.sum(axis=0))          # float bias gradient
    a = lin.layer_audit
    assert isinstance(a["forward"], FloatPassAudit)
    assert a["forward"].tiles == x.size + lin.weight.data.size
    assert a["backward_input"].tiles == a["backward_weight"].tiles == g.size


def test_fp8_conv_equals_the_float_conv_of_the_quantized_operands():
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(3, 4, 3, 1, 1, True, FP8(), rng)
    ref = nn.Conv2d(3, 4, 3, 1, 1, True, intsim.FP(), np.random.default_rng(1))
    x = _x((2, 3, 6, 6), 4, 5.0)
    W2 = conv.weight.data.reshape(4, -1)
    ref.weight.data = E4M3.quantize(W2, scale=amax_scale(W2, E4M3)).reshape(conv.weight.data.shape)
    ref.bias.data = conv.bias.data.copy()
    y = conv.forward(x)
    assert np.array_equal(y, ref.forward(E4M3.quantize(x, scale=amax_scale(x, E4M3))))
    g = _x(y.shape, 5, 1e-2)
    dx = conv.backward(g)
    gq = E5M2.quantize(g, scale=amax_scale(g, E5M2))
    dxr = ref.backward(gq)
    assert np.array_equal(conv.weight.grad, ref.weight.grad)
    assert np.array_equal(dx, dxr)


def test_fp8_audit_counts_saturated_and_flushed_values():
    lin = nn.Linear(4, 3, False, FP8(scaling="none"), np.random.default_rng(0))
    x = np.array([[1000.0, 1e-4, 1.0, 0.0], [-600.0, 3e-3, 2.0, 1.0]], np.float32)
    lin.forward(x)
    f = lin.layer_audit["forward"]
    assert f.saturated == 2 and f.flushed == 1 and f.tiles == 8 + 12
    assert f.as_dict()["flushed"] == 1 and f.max_abs == 1000.0


def test_fp8_settings_and_errors():
    a = FP8(grad_rounding="stochastic", fwd_format="e5m2", bwd_format="fp16")
    assert a.quantized and isinstance(a, FormatsDatapath) and a.acc_limit is None
    for bad in (dict(fwd_format="e9m9"), dict(scaling="row"), dict(grad_rounding="up"),
                dict(pow2_scale=1)):
        with pytest.raises(ValueError):
            FP8(**bad)


# --------------------------------------------------------------------- FP134
def test_lp_quantize_tracks_the_scale_like_lptorch():
    f = FP134_FMT
    # room 1: the max should sit in binade [2^(s-1), 2^s)
    for top, nxt in ((0.7, 0), (1.2, 1), (0.3, -1), (5.0, 1)):
        t = np.array([top, 0.01, -0.02], np.float32)
        q, s, st = lp_quantize(f, t, 0, 1, "nearest", None)
        assert s == nxt, (top, s)
        assert np.array_equal(q, f.quantize(t))
    # room 0, an overflow only by saturation: 1.97 rounds up to 2 -> clamped, still counted
    q, s, st = lp_quantize(f, np.array([1.97], np.float32), 0, 0, "nearest", None)
    assert q[0] == np.float32(1.9375) and s == 1 and st.saturated == 1
    q, s, _ = lp_quantize(f, np.array([1.93], np.float32), 0, 0, "nearest", None)
    assert s == 0
    # per channel (lptorch's ch_wise for 4-d tensors)
    t = np.stack([np.full((2, 1, 1), v, np.float32) for v in (3.0, 1.5, 0.2)])
    q, s, _ = lp_quantize(f, t, np.zeros(3, np.int64), 0, "nearest", None, channel_axis=0)
    assert s.tolist() == [1, 0, -1]
    assert lp_scale(t, 0, 0).tolist() == [1, 0, -3] and lp_scale(t, 2) == 3
    assert lp_scale(np.zeros(3), 1) == 1


def test_fp134_linear_quantizes_output_and_error_with_tracked_scales():
    a = FP134()
    lin = nn.Linear(16, 5, True, a, np.random.default_rng(0))
    assert lin.arith_state.tolist() == [0, 0]
    x = _x((8, 16), 1, 4.0)
    W = lin.weight.data.copy()
    y = lin.forward(x)
    z = x @ W.T + lin.bias.data                  # float32 layer output, then Q_act at 2^0
    assert np.array_equal(y, FP134_FMT.quantize(z))
    s0 = int(lin.arith_state[0])
    assert s0 == (1 if np.abs(z).max() >= 1 else 0 if np.abs(z).max() >= 0.5 else -1)
    # eval uses the tracked scale and leaves it
    lin.eval()
    y2 = lin.forward(x)
    assert np.array_equal(y2, FP134_FMT.quantize(z, scale=2.0 ** s0))
    assert int(lin.arith_state[0]) == s0
    lin.train()
    lin.forward(x)
    g = _x((8, 5), 2, 0.1)
    rng_state = lin.rng.bit_generator.state
    dx = lin.backward(g)
    r = np.random.default_rng(0)
    r.bit_generator.state = rng_state
    gq = FP134_FMT.quantize(g, rounding="stochastic", rng=r)   # error scale 2^0
    assert np.array_equal(lin.weight.grad, gq.T @ x)
    assert np.array_equal(dx, gq @ W)
    assert np.array_equal(lin.bias.grad, gq.sum(axis=0))      # bias gradient from g'
    assert int(lin.arith_state[1]) == -1                       # |g| < 0.5: one binade down
    st = lin.state_dict()
    assert st["arith_state"].tolist() == lin.arith_state.tolist()


def test_fp134_state_survives_a_save_and_the_classifier_restarts_it():
    a = FP134()
    m = intsim.models.FCNet(6, (8,), a, np.random.default_rng(0), num_classes=2)
    x = _x((4, 6), 1, 50.0)
    for _ in range(3):
        m.forward(x)
    st = m.state_dict()
    assert st["classifier.arith_state"][0] > 0
    m2 = intsim.models.FCNet(6, (8,), a, np.random.default_rng(0), num_classes=2)
    m2.load_state_dict(st)
    assert m2.classifier.arith_state.tolist() == m.classifier.arith_state.tolist()
    m.add_classes(2, np.random.default_rng(1))      # a fresh QLayer in the released code
    assert m.classifier.arith_state.tolist() == [0, 0]


def test_fp134_conv_forward_and_backward():
    conv = nn.Conv2d(2, 3, 3, 1, 1, True, FP134(), np.random.default_rng(0))
    ref = nn.Conv2d(2, 3, 3, 1, 1, True, intsim.FP(), np.random.default_rng(1))
    ref.weight.data = conv.weight.data.copy()
    ref.bias.data = conv.bias.data.copy()
    ref.kmajor = True
    x = _x((2, 2, 5, 5), 3)
    y = conv.forward(x)
    assert np.array_equal(y, FP134_FMT.quantize(ref.forward(x)))
    g = _x(y.shape, 4, 0.05)
    rng_state = conv.rng.bit_generator.state
    dx = conv.backward(g)
    r = np.random.default_rng(0)
    r.bit_generator.state = rng_state
    gq = FP134_FMT.quantize(g, rounding="stochastic", rng=r)
    dxr = ref.backward(gq)
    assert np.array_equal(conv.weight.grad, ref.weight.grad)
    assert np.array_equal(conv.bias.grad, gq.sum(axis=(0, 2, 3)))
    assert np.array_equal(dx, dxr)


def test_fp134_first_layer_counts_its_error_in_the_weight_pass_only():
    m = intsim.models.FCNet(6, (8,), FP134(), np.random.default_rng(0), num_classes=3)
    x = _x((4, 6), 1)
    logits = m.forward(x)
    m.backward(_x(logits.shape, 2, 0.1))
    aud = m.audit()
    assert "backward_input" not in aud["backbone.0"]
    assert aud["backbone.0"]["backward_weight"].tiles == 4 * 8
    assert aud["classifier"]["backward_input"].tiles == 4 * 3


# ---------------------------------------------------------------- quantized SGD
def _reference_step(a, p, g, master, buf, g_scale, hyper, rng):
    """One lptorch SGD step with the formats, for one parameter (weight_quantize off)."""
    wd, mom, lr = hyper
    gq, g_scale_next, _ = lp_quantize(FP134_FMT, g, g_scale, a.grad_room, "stochastic", rng)
    d = LPTORCH_MASTER.quantize(gq + wd * p, rounding="stochastic", rng=rng).astype(np.float32)
    v = d.copy() if buf is None else LPTORCH_MASTER.quantize(
        d + mom * buf, rounding="stochastic", rng=rng).astype(np.float32)
    master = LPTORCH_MASTER.quantize(master - lr * v, rounding="stochastic",
                                     rng=rng).astype(np.float32)
    return master, v, g_scale_next


def test_quantized_sgd_is_lptorch_sgd_step_by_step():
    a = FP134()
    p = nn.Parameter(_x((3, 4), 1))
    opt = QuantizedSGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4, arith=a,
                       rng=np.random.default_rng(7))
    rng = np.random.default_rng(7)
    master, buf, gs = p.data.copy(), None, None
    for step in range(4):
        g = _x((3, 4), 10 + step, 0.01)
        p.grad = g
        opt.step()
        h = LPTORCH_MASTER.quantize(np.array([5e-4, 0.9, 0.1], np.float32), rounding="stochastic",
                                    rng=rng).astype(np.float32)
        if gs is None:
            gs = lp_scale(g, 0)
        master, buf, gs = _reference_step(a, master, g, master, buf, gs, tuple(h), rng)
        assert np.array_equal(p.data, master), step
    # the master weights are on the 1-6-9 grid
    assert np.array_equal(LPTORCH_MASTER.quantize(p.data), p.data)
    assert opt.stats["grad"].count == 4 * 12


def test_quantized_sgd_weight_quantize_with_hysteresis():
    a = FP134(weight_quantize=True)
    w0 = np.array([[1.0, 0.5, -0.25, 0.03]], np.float32)
    p = nn.Parameter(w0.copy())
    opt = QuantizedSGD([p], lr=0.01, momentum=0.0, weight_decay=0.0, arith=a,
                       rng=np.random.default_rng(0))
    prev = None
    for k in range(6):
        p.grad = np.full_like(w0, -0.1)        # master grows by ~1e-3 per step
        opt.step()
        assert np.array_equal(FP134_FMT.quantize(p.data), p.data)   # weight on the grid (scale 2^0)
        if prev is not None:
            # a weight changes only once its master passed a whole step: never down
            assert np.all(p.data >= prev)
        prev = p.data.copy()
    master = opt._master[0]
    assert np.all(np.abs(master - p.data) <= 1.0 / 16)


def test_make_optimizer_picks_by_arithmetic_and_draws_only_for_fp134():
    p = [nn.Parameter(np.zeros((2, 2), np.float32))]
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    for a in (None, intsim.FP(), intsim.HDQT(), FP8()):
        assert type(make_optimizer(p, 0.1, 0.9, 1e-4, a, rng)) is SGD
    assert rng.bit_generator.state == state
    assert isinstance(make_optimizer(p, 0.1, 0.9, 1e-4, FP134(), rng), QuantizedSGD)
    assert rng.bit_generator.state != state


def test_fp134_options():
    assert FP134(act_format="11111110").act_format == "11111110"
    for bad in (dict(act_format="e4m3"), dict(act_room=-1), dict(err_rounding="x"),
                dict(track=1), dict(master_format="nope")):
        with pytest.raises(ValueError):
            FP134(**bad)
    assert {"fp8", "fp134"} <= set(ARITHS)


# ------------------------------------------------------------------------ CLI
@pytest.mark.parametrize("arith", ["fp8", "fp134"])
def test_cli_fcnet_run(tmp_path, arith):
    out = tmp_path / "run"
    r = train(["--out", str(out), "--arith", arith, *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["config"]["arith"] == arith
    aud = res["tasks"][0]["audit"]
    assert set(aud) == {"backbone.0", "backbone.2", "classifier"}
    e = aud["classifier"]["forward"]
    assert {"tiles", "saturated", "flushed", "max_abs"} <= set(e) and e["tiles"] > 0
    assert "flushed" in r.stdout and "float datapath" in r.stdout


def test_cli_fp134_resume_equals_uninterrupted(tmp_path):
    from intsim.app.driver import RunHooks
    from test_cli_train import tiny_dataset
    full = tmp_path / "full"
    assert train(["--out", str(full), "--arith", "fp134", *FAST]).exit_code == 0

    def on_epoch(ev):                       # Ctrl-C in task 2: it is retrained
        if ev["task"] == 1:
            raise KeyboardInterrupt
    part = tmp_path / "part"
    r = train(["--out", str(part), "--arith", "fp134", *FAST],
              RunHooks(dataset=tiny_dataset(), on_epoch=on_epoch))
    assert r.exit_code == 130
    r = train(["--out", str(part), "--resume"])
    assert r.exit_code == 0, r.output + r.stderr
    a = json.loads((full / "results.json").read_text())["tasks"]
    b = json.loads((part / "results.json").read_text())["tasks"]
    assert [(t["cnn"], t["nme"], t["audit"]) for t in a] == \
        [(t["cnn"], t["nme"], t["audit"]) for t in b]


def _write_idx(folder, rng, n_cls=4, per=6, side=8):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, n in (("train", per), ("t10k", per // 2)):
        y = np.repeat(np.arange(n_cls, dtype=np.uint8), n)
        X = rng.integers(0, 256, (len(y), side, side), dtype=np.uint8)
        (folder / f"{stem}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, len(y), side, side) + X.tobytes())
        (folder / f"{stem}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 0x801, len(y)) + y.tobytes())


@pytest.mark.parametrize("arith", ["fp8", "fp134"])
def test_cli_resnet32_run(tmp_path, arith):
    data = tmp_path / "mnist8"
    _write_idx(data, np.random.default_rng(1))
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--dataset", "mnist", "--data", str(data), "--model",
                                  "resnet32", "--arith", arith, "--epochs", "1", "--batch-size",
                                  "8", "--memory", "8", "--quiet", "--out", str(out)])
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["model"] == "resnet32" and res["complete"]
    aud = res["tasks"][-1]["audit"]
    assert len(aud) == 32 and all("flushed" in p for l in aud.values() for p in l.values())
