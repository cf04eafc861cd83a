"""intsim.kernels.quant: formula, rounding, unbiasedness, batch_dims, levels_used, errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intsim.kernels.quant import levels_used, levels_used_items, quantize, quantize_f32, qrange


def ref_nearest(x, bits, signed, clip=1.0):
    """The module's formula in plain float64 NumPy (signed forced)."""
    x = np.asarray(x, np.float64)
    m = clip * np.abs(x).max()
    L = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
    if m == 0:
        return np.zeros(x.shape), 0.0
    s = m / L
    return np.rint(np.clip(x / s, -L if signed else 0, L)), s


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), bits=st.integers(2, 16),
       clip=st.sampled_from([1.0, 0.975, 0.5]), shift=st.booleans(), seed=st.integers(0, 2**31))
def test_nearest_matches_formula(shape, bits, clip, shift, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    if shift:
        x = np.abs(x)  # all non-negative -> unsigned range
    q, s = quantize(x, bits, clip=clip)
    signed = bool((x < 0).any())
    want, ws = ref_nearest(x, bits, signed, clip)
    np.testing.assert_array_equal(q, want)
    assert s == ws
    assert np.issubdtype(q.dtype, np.integer)
    lo, hi = qrange(bits, signed)
    assert q.min() >= lo and q.max() <= hi
    # float32 entry point on float64 input: same values
    qf, sf = quantize_f32(x, bits, clip=clip)
    assert qf.dtype == np.float32 and sf == ws
    np.testing.assert_array_equal(qf, want)


def test_paper_ranges_and_half_to_even():
    x = np.array([-7.0, -2.5, -0.5, 0.5, 1.5, 2.5, 7.0])  # s = 1
    q, s = quantize(x, 4)
    assert s == 1.0
    np.testing.assert_array_equal(q, [-7, -2, 0, 0, 2, 2, 7])
    assert q.dtype == np.int8
    q, s = quantize(np.array([0.0, 7.5, 15.0]), 4)  # unsigned 0..15
    np.testing.assert_array_equal(q, [0, 8, 15])
    q, s = quantize(np.array([0.0, 7.5, 15.0]), 4, signed=True)
    assert s == 15.0 / 7 and q.max() == 7
    q, s = quantize(np.array([-1.0, 10.0]), 4, clip=0.5)  # clip: values above m saturate
    assert s == 5.0 / 7 and q[1] == 7
    assert quantize(np.array([-1.0, 1.0]), 16)[0].dtype == np.int16
    assert quantize(np.ones(3), 16)[0].dtype == np.int32  # 0..65535


def test_float32_input_stays_consistent():
    x = np.random.default_rng(0).standard_normal((50, 7)).astype(np.float32)
    q, s = quantize_f32(x, 4)
    m = float(np.abs(x).max())
    assert s == m / 7
    want = np.rint(np.clip(x / np.float32(m / 7), -7, 7))
    np.testing.assert_array_equal(q, want)


def test_all_zero():
    for rounding, rng in (("nearest", None), ("stochastic", np.random.default_rng(0))):
        q, s = quantize(np.zeros((3, 4)), 4, rounding=rounding, rng=rng)
        assert s == 0.0 and not q.any() and not np.isnan(q.astype(float)).any()
    q, s = quantize_f32(np.zeros((2, 3), np.float32), 4, batch_dims=1)
    assert s.shape == (2,) and not s.any() and not q.any()


def test_stochastic_unbiased_and_in_range():
    rng = np.random.default_rng(1234)
    x = np.random.default_rng(9).standard_normal(64)
    x[0] = 3.0  # fixes the max so s is known
    draws = 4000
    xs = np.broadcast_to(x, (draws, 64))
    q, s = quantize_f32(xs, 4, rounding="stochastic", rng=rng, signed=True, batch_dims=1)
    assert np.all(s == 3.0 / 7)
    assert q.min() >= -7 and q.max() <= 7
    np.testing.assert_array_equal(q, np.round(q))
    y = x / (3.0 / 7)
    # only the two neighbours of y occur
    assert np.all((q == np.floor(y)) | (q == np.ceil(y)))
    est = (q * s[:, None]).mean(axis=0)
    frac = y - np.floor(y)
    se = (3.0 / 7) * np.sqrt(frac * (1 - frac) / draws) + 1e-12
    z = np.abs(est - x) / se
    assert np.all(z[frac > 0.01] < 5), z.max()
    # the empirical up-probability tracks the fractional part
    assert np.abs((q == np.ceil(y)).mean(axis=0)[frac > 0.01] - frac[frac > 0.01]).max() < 0.05


def test_stochastic_reproducible_and_needs_rng():
    x = np.random.default_rng(2).standard_normal((10, 10))
    a = quantize(x, 4, rounding="stochastic", rng=np.random.default_rng(5))
    b = quantize(x, 4, rounding="stochastic", rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="rng"):
        quantize(x, 4, rounding="stochastic")
    with pytest.raises(ValueError, match="rng"):
        quantize(x, 4, rounding="stochastic", rng=np.random.RandomState(0))


def test_batch_dims_per_item_scales():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5)) * np.array([1.0, 10.0, 100.0])[:, None, None]
    x[1] = np.abs(x[1])  # item 1 is non-negative -> unsigned
    q, s = quantize_f32(x, 4, batch_dims=1)
    assert s.shape == (3,) and s.dtype == np.float64
    for i in range(3):
        qi, si = quantize_f32(x[i], 4)
        assert si == s[i]
        np.testing.assert_array_equal(q[i], qi)
    q2, s2 = quantize_f32(x, 4, batch_dims=2)
    assert s2.shape == (3, 4)
    np.testing.assert_array_equal(q2[2, 1], quantize_f32(x[2, 1], 4)[0])


def test_levels_used():
    assert levels_used(np.array([-7, 0, 7]), 4, True) == 3 / 15
    assert levels_used(np.arange(16), 4, False) == 1.0
    assert levels_used(np.array([0.0, 1.0], np.float32), 2, False) == 0.5
    with pytest.raises(ValueError):
        levels_used(np.array([8]), 4, True)


def test_errors():
    x = np.ones(4)
    for bad in (np.array([1.0, np.nan]), np.array([np.inf, 1.0]), np.array([-np.inf])):
        with pytest.raises(ValueError, match="NaN or inf"):
            quantize(bad, 4)
        with pytest.raises(ValueError, match="NaN or inf"):
            quantize_f32(bad.astype(np.float32), 4)
    for bits in (1, 17, 0, 4.0, True):
        with pytest.raises(ValueError, match="bits"):
            quantize(x, bits)
    with pytest.raises(ValueError, match="rounding"):
        quantize(x, 4, rounding="up")
    with pytest.raises(ValueError, match="clip"):
        quantize(x, 4, clip=0)
    with pytest.raises(ValueError, match="dtype"):
        quantize(np.array(["a"]), 4)
    with pytest.raises(ValueError, match="batch_dims"):
        quantize_f32(x, 4, batch_dims=2)


def test_skip_draws_moves_the_generator_as_drawing_would():
    """skip_draws(rng, n) == rng.random(n, float32) for the Generator's state, from
    any position (also the buffered half of a PCG64 output), for PCG64 and others."""
    from intsim.kernels.quant import skip_draws
    for bg in (np.random.PCG64, np.random.Philox):
        for first in (0, 1, 2, 5):
            for n in (0, 1, 2, 3, 7, 1000):
                a, b = np.random.Generator(bg(3)), np.random.Generator(bg(3))
                a.random(first, dtype=np.float32)
                b.random(first, dtype=np.float32)
                a.random(n, dtype=np.float32)
                skip_draws(b, n)
                assert str(a.bit_generator.state) == str(b.bit_generator.state), (bg, first, n)
                assert a.random(5, dtype=np.float32).tolist() == b.random(5, dtype=np.float32).tolist()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 8), st.integers(1, 6), st.integers(1, 40),
       st.sampled_from(["int8", "float32", "int16"]))
def test_levels_used_items_is_levels_used_of_each_item(seed, bits, S, M, dtype):
    """Per-item level fractions in one pass equal S calls of levels_used, with each
    item's own signed flag (mixed within one call)."""
    rng = np.random.default_rng(seed)
    signed = rng.random(S) < 0.5
    if dtype != "float32" and np.iinfo(dtype).max < (1 << bits) - 1:
        dtype = "int16"                 # the unsigned levels do not fit int8
    q = _items(rng, bits, signed, (S, 1, M), dtype)
    got = levels_used_items(q, bits, signed)
    assert got.tolist() == [levels_used(q[i], bits, bool(signed[i])) for i in range(S)]


def _items(rng, bits, signed, shape, dtype):
    """Random quantized items q (S, ...): item s in its own range, using a random part
    of its levels (from one level to all)."""
    q = np.empty(shape, dtype)
    for i in range(shape[0]):
        lo, hi = qrange(bits, bool(signed[i]))
        span = rng.integers(1, hi - lo + 2)
        q[i] = rng.integers(lo, lo + span, shape[1:])
    return q


def test_levels_used_items_refuses_values_outside_an_items_range():
    q = np.array([[0, 1], [-1, 2]], np.int8)
    with pytest.raises(ValueError, match="outside"):
        levels_used_items(q, 4, np.array([False, False]))     # -1 is not unsigned
    with pytest.raises(ValueError, match="outside"):
        levels_used_items(np.array([[0.0, np.nan]]), 4, True)
    assert levels_used_items(q, 4, np.array([False, True])).tolist() == [2 / 16, 2 / 15]


def test_record_items_keeps_the_running_sum_of_record_calls():
    """The audit's running mean of level fractions: one record_items call adds the same
    float64 sum, in the same order, as one record call per item."""
    from intsim.arith.qmatmul import LayerAudit
    rng = np.random.default_rng(5)
    a, b = LayerAudit(), LayerAudit()
    a.tick()
    b.tick()
    for _ in range(3):
        q = _items(rng, 4, np.ones(37, bool), (37, 3, 5), np.float32)
        for i in range(len(q)):
            a.record("forward", "x", q[i], 4, True)
        b.record_items("forward", "x", q, 4, True)
    assert a["forward"].levels == b["forward"].levels
    assert b["forward"].levels["x"][1] == 3 * 37
