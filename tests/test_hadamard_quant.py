"""The fused block-Hadamard + per-item quantizer (intsim.kernels.quant.hadamard_quantize_items)
against its plain reference: the transform part's ``apply`` followed by quantize_items,
bit for bit, draws and the Generator's position included."""
import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intsim.arith.qmatmul import _transformed_items
from intsim.datapath.parts import BlockHadamard, Identity
from intsim.errors import NonFiniteError
from intsim.kernels import quant

from test_kernels_fast import pos, ref_rng

TRANSFORMS = [BlockHadamard(), BlockHadamard(size=2), BlockHadamard(size=8), Identity()]


def reference(tf, x, axis, bits, rounding, signed, clip, rng):
    t = np.ascontiguousarray(x)
    if tf.block(t.shape[axis]) > 1:
        t = tf.apply(t, axis)
    return quant.quantize_items(t, bits, rounding=rounding, signed=signed, clip=clip, rng=rng)


def fused(tf, x, axis, bits, rounding, signed, clip, rng):
    block, top_first = tf.fused_plan(x.shape, axis)
    return quant.hadamard_quantize_items(x, axis, block, top_first, bits, rounding=rounding,
                                         signed=signed, clip=clip, rng=rng)


def case(seed, A, S, M, items_first):
    """An (A, S, M) float32 array, a transposed view of (S, A, M) when items_first,
    with one all-zero item and a wide dynamic range."""
    r = np.random.default_rng(seed)
    shape = (S, A, M) if items_first else (A, S, M)
    x = (r.standard_normal(shape) * r.choice([1e-30, 1e-3, 1.0, 1e4])).astype(np.float32)
    x = x.transpose(1, 0, 2) if items_first else x
    x[:, r.integers(0, S)] = 0
    return x


@settings(max_examples=60, deadline=None)
@given(A=st.sampled_from([1, 2, 3, 4, 6, 8, 16, 24, 32, 48]), S=st.integers(1, 5),
       M=st.sampled_from([1, 2, 4, 5, 8, 12, 16, 64, 96]), seed=st.integers(0, 10**6),
       axis=st.sampled_from([0, 2]), tf=st.sampled_from(TRANSFORMS),
       rounding=st.sampled_from(["stochastic", "nearest"]),
       signed=st.sampled_from([None, True, False]), bits=st.sampled_from([2, 4, 8]),
       items_first=st.booleans(), ref=st.booleans())
def test_fused_equals_transform_then_quantize(A, S, M, seed, axis, tf, rounding, signed, bits,
                                              items_first, ref):
    x = case(seed, A, S, M, items_first)
    mk = ref_rng if ref else np.random.default_rng
    a, b = mk(seed), mk(seed)
    got = fused(tf, x, axis, bits, rounding, signed, 0.9, a)
    want = reference(tf, x, axis, bits, rounding, signed, 0.9, b)
    if ref and rounding == "stochastic":
        assert got is None and pos(a) == pos(mk(seed))     # not a PCG64: nothing drawn
        return
    assert got is not None
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert pos(a) == pos(b)


@pytest.mark.parametrize("axis", [0, 2])
def test_thread_count_does_not_change_bits(axis):
    x = case(3, 32, 7, 64, True)
    out = []
    n0 = numba.get_num_threads()
    try:
        for n in sorted({1, n0}):
            numba.set_num_threads(n)
            out.append(fused(BlockHadamard(), x, axis, 4, "stochastic", True, 1.0,
                             np.random.default_rng(5)))
    finally:
        numba.set_num_threads(n0)
    assert all(np.array_equal(o[0], out[0][0]) and np.array_equal(o[1], out[0][1]) for o in out)


def test_nonfinite_input_raises():
    x = case(1, 8, 3, 16, False)
    x[2, 1, 5] = np.nan
    with pytest.raises(NonFiniteError):
        fused(BlockHadamard(), x, 2, 4, "stochastic", True, 1.0, np.random.default_rng(0))
    x[2, 1, 5] = np.inf
    with pytest.raises(NonFiniteError):
        fused(Identity(), x, 0, 4, "nearest", True, 1.0, None)


def test_subnormal_scale_takes_the_float64_path():
    """A scale below float32's normal range: the fused kernel declines without drawing,
    and the datapath's helper then equals the float64 reference."""
    x = case(2, 8, 3, 16, False)
    x[:, 1] = 1e-40
    rng = np.random.default_rng(9)
    before = pos(rng)
    assert fused(Identity(), x, 2, 4, "stochastic", True, 1.0, rng) is None
    assert pos(rng) == before
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    got = _transformed_items(Identity(), x, 2, 4, "stochastic", 1.0, a)
    want = reference(Identity(), x, 2, 4, "stochastic", True, 1.0, b)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert pos(a) == pos(b)


def test_stochastic_rounding_is_unbiased_after_the_transform():
    """E[q] s = H x: the mean over many seeded draws approaches the transformed values."""
    x = case(4, 16, 2, 32, False)
    h = BlockHadamard().apply(np.ascontiguousarray(x), 2)
    acc = np.zeros(h.shape)
    n = 400
    rng = np.random.default_rng(11)
    for _ in range(n):
        q, s = fused(BlockHadamard(), x, 2, 4, "stochastic", True, 1.0, rng)
        acc += q * s[None, :, None]
    err = np.abs(acc / n - h)
    # one draw's error is below one step s; the mean of n has standard error < s / (2 sqrt(n))
    s_max = np.max(np.abs(h), axis=(0, 2)) / 7
    assert np.all(err <= 5 * s_max[None, :, None] / (2 * np.sqrt(n)))
