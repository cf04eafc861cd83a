"""intsim.formats' Numba kernels (_fast) against the NumPy reference path, bit for bit.

Also run with NUMBA_DISABLE_JIT=1 (make test-nojit)."""
import numpy as np
import pytest

from intsim.formats import _grid
from test_formats import FLOATS, TAPERED
from intsim.formats import BF16, E4M3, FP134

FORMATS = [*FLOATS.values(), BF16, *TAPERED.values()]


def _inputs(rng, n=4000):
    """Random magnitudes over 2^-30..2^20, both signs, with zeros, +-inf, NaN,
    exact ties and float64 subnormals mixed in."""
    x = rng.standard_normal(n) * np.exp2(rng.uniform(-30, 20, n))
    x[::97] = 0.0
    x[1::113] = np.inf
    x[2::127] = -np.inf
    x[3::131] = np.nan
    x[4::137] = 5e-320
    x[5::139] = 1.5 * 2.0 ** rng.integers(-12, 6, x[5::139].size)   # mantissa ties
    return x


def _both(fmt, x, monkeypatch, **kw):
    out = []
    for fast in (True, False):
        monkeypatch.setattr(_grid, "FAST", fast)
        rng = np.random.default_rng(7)
        if "toward" in kw:
            out.append(fmt.quantize_detail(x, **kw))
        else:
            out.append(fmt.quantize_stats(x, rng=rng, **kw))
    return out


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True)
    assert np.array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fast_equals_reference(fmt, rounding, dtype, monkeypatch):
    x = _inputs(np.random.default_rng(1)).astype(dtype).reshape(40, 100)
    (qf, sf), (qr, sr) = _both(fmt, x, monkeypatch, rounding=rounding)
    _same(qf, qr)
    assert sf == sr


@pytest.mark.parametrize("fmt", [E4M3, FP134], ids=str)
def test_fast_equals_reference_with_per_channel_scale(fmt, monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 50)) * 10
    s = np.exp2(rng.integers(-4, 4, (16, 1))).astype(np.float64)
    (qf, sf), (qr, sr) = _both(fmt, x, monkeypatch, rounding="stochastic", scale=s)
    _same(qf, qr)
    assert sf == sr


def test_fast_equals_reference_directed(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(3000) * 0.3
    prev = x + rng.standard_normal(3000) * 0.01
    (qf, sf, of), (qr, sr, orf) = _both(FP134, x, monkeypatch, toward=prev)   # weights: tapered
    _same(qf, qr)
    assert sf == sr and np.array_equal(of, orf)
