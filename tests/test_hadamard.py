"""intsim.kernels.hadamard: bp2, dense reference, fwht bit for bit against the dense product."""
import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intsim.kernels.hadamard import block_hadamard, bp2, fwht


def dense(x, axis):
    """Reference: the int64 (or float64) dense block-Hadamard product along axis."""
    H = block_hadamard(x.shape[axis])
    wide = np.int64 if np.issubdtype(x.dtype, np.integer) else np.float64
    y = np.moveaxis(np.tensordot(H.astype(wide), x.astype(wide), axes=([1], [axis])), 0, axis)
    return y


def test_bp2():
    assert [bp2(n) for n in (1, 2, 20, 100, 128, 405, 561, 1024, 96)] == \
        [1, 2, 4, 4, 128, 1, 1, 1024, 32]
    for bad in (0, -4, 2.0, True):
        with pytest.raises(ValueError):
            bp2(bad)


def test_block_hadamard():
    assert np.array_equal(block_hadamard(1), [[1]])
    assert np.array_equal(block_hadamard(5), np.eye(5))
    H2 = np.array([[1, 1], [1, -1]])
    assert np.array_equal(block_hadamard(6), np.kron(np.eye(3, dtype=int), H2))
    for n in (8, 12, 64, 96):
        H = block_hadamard(n)
        p = bp2(n)
        assert np.array_equal(H, H.T)
        assert np.array_equal(H @ H, p * np.eye(n, dtype=np.int64))
        assert set(np.unique(H)) <= {-1, 0, 1}


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16, 20, 32, 48, 64]),
                      min_size=1, max_size=3),
       dtype=st.sampled_from([np.int8, np.int16, np.int32, np.int64]),
       axis_i=st.integers(0, 2), seed=st.integers(0, 2**31))
def test_integer_exact_any_axis(shape, dtype, axis_i, seed):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    x = rng.integers(max(info.min, -1000), min(info.max, 1000), shape, dtype=dtype)
    axis = axis_i % x.ndim
    y = fwht(x, axis)
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, dense(x, axis).astype(dtype))  # wraps like the dtype
    assert np.array_equal(fwht(x, axis - x.ndim), y)


@pytest.mark.parametrize("n", [128, 256, 1024, 2048, 3 * 512])
def test_integer_exact_large_blocks(n):
    rng = np.random.default_rng(n)
    x = rng.integers(-8, 8, (3, n), dtype=np.int16)
    np.testing.assert_array_equal(fwht(x), dense(x, 1))
    np.testing.assert_array_equal(fwht(x.T.copy(), 0), dense(x.T, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 8, 24, 64, 128, 256, 1024])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_float_close(dtype, n, axis):
    rng = np.random.default_rng(n + axis)
    shape = [3, 5, 4]
    shape[axis] = n
    x = rng.standard_normal(shape).astype(dtype)
    y = fwht(x, axis)
    assert y.dtype == dtype and y.shape == x.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, dense(x, axis), rtol=tol, atol=tol * np.sqrt(n) * 4)
    # integer-valued floats small enough are exact
    xi = np.rint(x * 4)
    np.testing.assert_array_equal(fwht(xi, axis), dense(xi, axis))


def test_involution_and_noncontiguous_input():
    rng = np.random.default_rng(1)
    x = rng.integers(-5, 5, (32, 40))[:, ::2]  # strided view, n = 20 along axis 1
    y = fwht(x, 1)
    np.testing.assert_array_equal(fwht(y, 1), bp2(20) * x)
    assert y.flags.c_contiguous
    x0 = x.copy()
    fwht(x, 0)
    np.testing.assert_array_equal(x, x0)  # input untouched


def test_odd_size_is_copy():
    x = np.arange(15.0).reshape(3, 5)
    y = fwht(x, 1)
    np.testing.assert_array_equal(y, x)
    assert y is not x


def test_errors():
    with pytest.raises(ValueError, match="axis"):
        fwht(np.ones((2, 2)), axis=2)
    with pytest.raises(ValueError, match="dtype"):
        fwht(np.ones(4, bool))
    with pytest.raises(ValueError, match="dtype"):
        fwht(np.ones(4, complex))
    with pytest.raises(ValueError, match="dimension"):
        fwht(np.float32(3.0))


def _blockwise_ref(x, axis):
    """Dense reference applied block by block (cheap for large n): float64 or int64."""
    n = x.shape[axis]
    p = bp2(n)
    wide = np.int64 if np.issubdtype(x.dtype, np.integer) else np.float64
    xm = np.moveaxis(x.astype(wide), axis, 0)
    blocks = xm.reshape(n // p, p, -1)
    y = np.einsum("ij,bjk->bik", block_hadamard(p).astype(wide), blocks)
    return np.moveaxis(y.reshape(xm.shape), 0, axis)


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="too large for interpreted kernels")
@pytest.mark.parametrize("shape,axis", [((64, 2048), 1), ((2048, 40), 0), ((3, 512, 1030), 1),
                                        ((2, 96, 8, 45), 1), ((5000, 4), 1), ((4, 5000), 0)])
def test_parallel_kernels_exact(shape, axis):
    """Arrays large enough for the threaded kernels, several blocks and column tiles."""
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(-8, 8, shape).astype(np.float32)
    y = fwht(x, axis)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, _blockwise_ref(x, axis))
    xi = x.astype(np.int16)
    np.testing.assert_array_equal(fwht(xi, axis), _blockwise_ref(xi, axis))
    xd = rng.standard_normal(shape)
    np.testing.assert_allclose(fwht(xd, axis), _blockwise_ref(xd, axis), rtol=1e-12, atol=1e-10)
