"""LUQ's Batched items (attention's products) on whole tensors against the per-item loop
(intsim.datapath.items.forward_items), bit for bit: the output, dx, dw, every pass's
audit and the Generator's state after the forward and the backward. Each item keeps
its own SAWB scale and its own log-quantizer alpha; an all-zero item draws nothing."""
import numpy as np
import pytest

from intsim.datapath import LUQ, Batched
from intsim.datapath.integer import LUQDatapath
from intsim.kernels import luq
from test_datapath_formats_items import _assert_same, _operands, _run

CONFIGS = {"luq4": LUQ(), "luq4-acc8": LUQ(acc_bits=8), "luq8-g5": LUQ(8, 5),
           "luq4-acc6-wrap": LUQ(acc_bits=6, acc_mode="wrap")}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(6))
def test_whole_tensor_items_are_the_per_item_loop(name, seed):
    dp = CONFIGS[name]
    x, w, g = _operands(seed)
    g = g * np.float32(1e-3)
    need_dx = seed != 3
    if seed == 4:
        g[1] = 0.0                      # an all-zero gradient item: no draws for it
    _assert_same(_run(dp, x, w, g, seed, need_dx, loop=False),
                 _run(dp, x, w, g, seed, need_dx, loop=True))


def test_the_whole_tensor_path_is_taken(monkeypatch):
    calls = []
    real = LUQDatapath._forward_batched

    def spy(self, *a):
        calls.append(1)
        return real(self, *a)
    monkeypatch.setattr(LUQDatapath, "_forward_batched", spy)
    x, w, g = _operands(5)
    _run(LUQ(), x, w, g, 5, True, loop=False)
    assert calls == [1]


@pytest.mark.parametrize("shape", [(6, 4, 16), (3, 90, 100), (5, 1, 1)])
def test_sawb_and_log_quantizer_items_are_their_per_item_calls(shape):
    """Items larger than NumPy's cast buffer (8192 entries) take the per-item SAWB;
    a constant item (degenerate clip), an unsigned and an all-zero item included."""
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    x[0] = np.abs(x[0])
    if shape[0] > 2:
        x[1] = 0.0
        x[2] = 0.25
    q, s = luq.sawb_quantize_items(x, 4)
    want = [luq.sawb_quantize(x[i], 4) for i in range(shape[0])]
    np.testing.assert_array_equal(q, np.stack([o[0] for o in want]))
    assert list(s) == [o[1] for o in want]
    g = (x * np.float32(1e-4)).astype(np.float32)
    r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
    c, v, a = luq.log_quantize_items(g, 4, r1)
    want = [luq.log_quantize(g[i], 4, r2) for i in range(shape[0])]
    assert np.array_equal(c.view(np.uint32), np.stack([o[0] for o in want]).view(np.uint32))
    assert np.array_equal(v.view(np.uint32), np.stack([o[1] for o in want]).view(np.uint32))
    assert list(a) == [o[2] for o in want]
    assert r1.bit_generator.state == r2.bit_generator.state


def test_a_nonfinite_item_is_refused_as_the_per_item_calls_refuse_it():
    from intsim.errors import NonFiniteError
    g = np.ones((3, 4), np.float32)
    g[1, 2] = np.nan
    with pytest.raises(NonFiniteError, match="NaN or inf"):
        luq.log_quantize_items(g, 4, np.random.default_rng(0))
    with pytest.raises(NonFiniteError, match="NaN or inf"):
        luq.sawb_quantize_items(g, 4)
