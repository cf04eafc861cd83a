"""OCP MX block formats (intsim.formats.mx) against an independent reference.

The reference does the spec's conversion (OCP MX v1.0, section 6.3) with
ml_dtypes: the shared exponent from the IEEE exponent field of the block
max, the scale X through float8_e8m0fnu, V / X clipped to the element max
and cast to the ml_dtypes element type (round to nearest even), cast back,
times X; MXINT8 through a real int8. Blocks are made by zero padding
(not by the implementation's reduceat). Compared bit for bit (sign of
zero included) on inputs of many magnitudes, ties, subnormals, zeros,
NaN/inf, ragged last blocks, several axes, float32 and float64. Also:
element values against every finite ml_dtypes value, the scale rule,
stochastic rounding (unbiased, reproducible, one uniform per element),
the stats, errors and the preset names.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from intsim.formats import (MXFP4_E2M1, MXFP6_E2M3, MXFP6_E3M2, MXFP8_E4M3, MXFP8_E5M2, MXINT8,
                            E4M3, FloatFormat, IntFormat, MXFormat, get_format)

ml = pytest.importorskip("ml_dtypes")

MX = {"mxfp8_e4m3": MXFP8_E4M3, "mxfp8_e5m2": MXFP8_E5M2, "mxfp6_e3m2": MXFP6_E3M2,
      "mxfp6_e2m3": MXFP6_E2M3, "mxfp4_e2m1": MXFP4_E2M1, "mxint8": MXINT8}
FLOAT_MX = [k for k in MX if k != "mxint8"]
#: name -> (ml_dtypes element type, bits, spec's max, min subnormal, emax_elem)
SPEC = {"mxfp8_e4m3": (ml.float8_e4m3fn, 8, 448.0, 2.0 ** -9, 8),
        "mxfp8_e5m2": (ml.float8_e5m2, 8, 57344.0, 2.0 ** -16, 15),
        "mxfp6_e3m2": (ml.float6_e3m2fn, 6, 28.0, 2.0 ** -4, 4),
        "mxfp6_e2m3": (ml.float6_e2m3fn, 6, 7.5, 2.0 ** -3, 2),
        "mxfp4_e2m1": (ml.float4_e2m1fn, 4, 6.0, 2.0 ** -1, 2),
        "mxint8": (None, 8, 127 / 64, 2.0 ** -6, 0)}


# ------------------------------------------------------------------ reference
def _floor_log2_field(a):
    """floor(log2 a) of finite positive a from the IEEE exponent field; 0 and
    subnormals give -10**6 (below E8M0's range), inf/NaN give None's stand-in 10**6."""
    if a.dtype == np.float32:
        ef = (a.view(np.uint32).astype(np.int64) >> 23) & 0xFF
        bias, top = 127, 0xFF
    else:
        ef = (a.view(np.uint64) >> np.uint64(52)).astype(np.int64) & 0x7FF
        bias, top = 1023, 0x7FF
    return np.where(ef == 0, -10 ** 6, np.where(ef == top, 10 ** 6, ef - bias))


def _float32_round_to_odd(y):
    """float64 -> float32 rounded to odd (exact values kept, others truncated with the
    last bit set): a later rounding to a format of <= 22 significand bits is then the
    correct rounding of y. ml_dtypes before 0.7 casts float64 through float32 with
    round-to-nearest, a double rounding."""
    r = y.astype(np.float32)
    bits = r.view(np.uint32)
    away = np.abs(r.astype(np.float64)) > np.abs(y)          # rounded away from zero
    t = np.where(away, bits - np.uint32(1), bits)            # truncated (sign-magnitude)
    return np.where(r.astype(np.float64) == y, bits, t | np.uint32(1)).view(np.float32)


def reference(name, x, axis=-1, block=32):
    """The MX conversion of x (float32/float64), through ml_dtypes."""
    T, _, vmax, _, emax = SPEC[name]
    x = np.asarray(x)
    dt = x.dtype
    xm = np.moveaxis(x, axis, -1)
    n = xm.shape[-1]
    nb = -(-n // block)
    pad = np.zeros(xm.shape[:-1] + (nb * block - n,), dt)
    xb = np.concatenate([xm, pad], axis=-1).reshape(xm.shape[:-1] + (nb, block))
    amax = np.abs(xb).max(axis=-1)                       # NaN propagates
    fl = _floor_log2_field(amax)
    e = np.clip(fl - emax, -127, 127)
    code = np.where(fl == 10 ** 6, 0xFF, e + 127).astype(np.uint8)
    X = code.view(ml.float8_e8m0fnu).astype(np.float64)[..., None]   # 0xFF: NaN
    with np.errstate(invalid="ignore"):
        y = xb.astype(np.float64) / X
        if T is None:                                    # MXINT8: a real int8, k / 64
            k = np.clip(np.rint(np.nan_to_num(y * 64)), -127, 127).astype(np.int8)
            P = k.astype(np.float64) / 64
        else:
            P = np.clip(np.nan_to_num(y), -vmax, vmax)
            P = _float32_round_to_odd(P).astype(T).astype(np.float64)
        v = (P * X).reshape(xm.shape[:-1] + (nb * block,))[..., :n]
    return np.moveaxis(v, -1, axis).astype(dt)


def assert_bits_equal(got, ref):
    assert got.dtype == ref.dtype and got.shape == ref.shape
    gn, rn = np.isnan(got), np.isnan(ref)
    assert np.array_equal(gn, rn), (np.argwhere(gn != rn)[:5])
    ui = np.uint32 if got.dtype == np.float32 else np.uint64
    bad = (got.view(ui) != ref.view(ui)) & ~gn
    assert not bad.any(), list(zip(got[bad][:5], ref[bad][:5]))


def _grid_points(name):
    """Element values, the midpoints between them (ties) and just either side."""
    V = MX[name].values()
    mids = (V[:-1] + V[1:]) / 2
    return np.concatenate([V, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf)])


def _inputs(name, rng, dtype):
    """(rows, 32 * 3 + 7): every row one magnitude; blocks pinned to a scale so that
    ties and subnormal-range elements are exact; random blocks; special blocks."""
    f = MX[name]
    n = 32 * 3 + 7                                        # a ragged last block of 7
    rows = []
    pts = _grid_points(name)
    for s in (-130, -127, -20, -3, 0, 5, 60, 100, 119):
        r = rng.choice(pts, n) * rng.choice([-1.0, 1.0], n)
        r[::32] = f.element_max                           # pins X = 2^s in each block
        r[-7] = f.element_max
        rows.append(np.ldexp(r, s))
    for _ in range(12):                                   # random blocks, any magnitudes
        mag = rng.uniform(-40, 40)
        rows.append(np.exp2(mag + rng.normal(0, rng.uniform(0, 12), n)) *
                    rng.choice([-1.0, 1.0], n) * (rng.random(n) > 0.05))
    special = np.exp2(rng.uniform(-10, 10, n))
    special[:32] = 0.0                                    # a block of zeros
    special[32:64] = -0.0
    special[40] = np.nan                                  # a NaN block
    special[64:96] *= -1
    special[70] = np.inf                                  # an inf block
    special[-3] = -0.0                                    # ragged block with -0
    rows.append(special)
    tiny = np.exp2(rng.uniform(-160, -126, n)) * rng.choice([-1.0, 1.0], n)   # f32 subnormals
    rows.append(tiny)
    x = np.array(rows)
    if dtype == np.float32:
        big = np.exp2(rng.uniform(120, 127.99, n))       # up to float32's max
        x = np.vstack([x, big[None]])
    else:
        big = np.exp2(rng.uniform(300, 1000, n)) * rng.choice([-1.0, 1.0], n)   # above 2^127
        x = np.vstack([x, big[None], np.exp2(rng.uniform(-1074, -1000, n))[None]])
    with np.errstate(over="ignore", under="ignore"):
        return x.astype(dtype)


# ------------------------------------------------------------- against ml_dtypes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(MX))
def test_nearest_equals_the_ml_dtypes_reference_bit_for_bit(name, dtype):
    f = MX[name]
    rng = np.random.default_rng(1)
    x = _inputs(name, rng, dtype)
    got = f.quantize(x)
    assert got.dtype == dtype
    assert_bits_equal(got, reference(name, x))
    # other axes: blocks along the rows (ragged: 23 rows), and a 3-d array
    assert_bits_equal(f.quantize(x, axis=0), reference(name, x, axis=0))
    x3 = x[:, :96].reshape(x.shape[0], 3, 32).transpose(2, 0, 1).copy()     # (32, rows, 3)
    for ax in (0, 1, 2, -2):
        assert_bits_equal(f.quantize(x3, axis=ax), reference(name, x3, axis=ax))


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(list(MX)),
       x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=2, max_side=70),
                    elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_hypothesis_float32_equals_the_reference(name, x):
    assert_bits_equal(MX[name].quantize(x), reference(name, x))


def test_other_block_sizes_equal_the_reference():
    rng = np.random.default_rng(2)
    x = np.exp2(rng.uniform(-8, 8, (5, 50))) * rng.choice([-1.0, 1.0], (5, 50))
    for k in (1, 7, 16, 64):
        f = MXFormat(MXFP6_E2M3.element, block_size=k)
        assert_bits_equal(f.quantize(x), reference("mxfp6_e2m3", x, block=k))


# ----------------------------------------------------------- element formats
@pytest.mark.parametrize("name", FLOAT_MX)
def test_element_values_are_every_finite_ml_dtypes_value(name):
    f = MX[name]
    T, bits, vmax, sub, emax = SPEC[name]
    v = np.arange(1 << bits, dtype=np.uint8).view(T).astype(np.float64)
    v = np.unique(v[np.isfinite(v)] + 0.0)
    assert np.array_equal(f.values(), v)
    fi = ml.finfo(T)
    assert f.element_max == vmax == float(fi.max)
    assert f.element.min_positive == sub == float(fi.smallest_subnormal)
    assert f.element.min_normal == float(fi.smallest_normal)
    assert f.emax_elem == emax == int(fi.maxexp) - 1
    assert f.max_value == vmax * 2.0 ** 127 and f.min_positive == sub * 2.0 ** -127


def test_mxint8_elements_are_k_over_64():
    assert np.array_equal(MXINT8.values(), np.arange(-127, 128) / 64)
    assert MXINT8.element_max == 127 / 64 and MXINT8.emax_elem == 0
    assert MXINT8.min_positive == 2.0 ** -6 * 2.0 ** -127
    # one block pinned at X = 1 (max in [1, 2)): ties to even k, symmetric saturation
    x = np.zeros(32)
    x[:10] = [1.0, 0.5 / 64, 1.5 / 64, -2.5 / 64, 127.5 / 64, -1.999, -127.5 / 64,
              0.3, -1e-9, -0.0]
    e, ex = MXINT8.encode(x)
    assert ex.tolist() == [0]
    assert (e[:10] * 64).tolist() == [64, 0, 2, -2, 127, -127, -127, 19, 0, 0]
    assert not np.signbit(e[e == 0]).any()          # int8 has no -0
    assert np.array_equal(MXINT8.quantize(x), e)
    x4 = x * 2.0 ** 40                              # the same block at X = 2^40
    assert np.array_equal(MXINT8.quantize(x4), e * 2.0 ** 40)


def test_e8m0_scale_codes_and_decode():
    e = np.arange(-127, 129)
    X = (e + 127).astype(np.uint8).view(ml.float8_e8m0fnu).astype(np.float64)
    assert np.array_equal(X[:-1], np.exp2(e[:-1].astype(float))) and np.isnan(X[-1])
    p = np.ones((1, 256 * 32))
    assert np.array_equal(MXFP4_E2M1.decode(p, e[None]), np.repeat(X, 32)[None], equal_nan=True)


# ------------------------------------------------------------------- scales
@pytest.mark.parametrize("name", list(MX))
def test_shared_exponent_is_floor_log2_amax_minus_emax_elem(name):
    f = MX[name]
    rng = np.random.default_rng(3)
    x = np.exp2(rng.uniform(-60, 60, (40, 1)) + rng.normal(0, 3, (40, 100))) * \
        rng.choice([-1.0, 1.0], (40, 100))
    P, ex = f.encode(x)
    assert ex.shape == (40, 4) and ex.dtype == np.int64 and P.shape == x.shape
    for i in range(40):
        for j in range(4):
            blk = x[i, 32 * j:32 * j + 32]
            want = math.floor(math.log2(np.abs(blk).max())) - f.emax_elem
            assert ex[i, j] == want
            pb = P[i, 32 * j:32 * j + 32]
            # the block's largest element is in the element format's top binade
            assert 2.0 ** f.emax_elem <= np.abs(pb).max() <= f.element_max
    assert np.array_equal(f.decode(P, ex), f.quantize(x))
    assert np.all(np.abs(P) <= f.element_max)


def test_scale_clamps_zeros_nan_inf_and_ragged_blocks():
    f = MXFP8_E4M3
    x = np.zeros((6, 40))
    x[1, :] = 2.0 ** -140                          # clamped to -127: elements 2^-13 -> 0
    x[1, 0] = 2.0 ** -126 * 1.5
    x[2, :] = 1e300                                # clamped to 127: saturate
    x[3, 5] = np.nan
    x[4, 33] = -np.inf
    x[5, :] = 1.0
    x[5, 35] = 1000.0                              # the ragged block (8) has its own scale
    P, ex = f.encode(x)
    assert ex[0].tolist() == [-127, -127]
    assert ex[1, 0] == -127 and P[1, 0] == 2.0 * 1.5 and P[1, 1] == 0
    assert ex[2].tolist() == [127, 127] and np.all(P[2] == 448)
    assert ex[3].tolist() == [128, -127] and np.isnan(P[3, :32]).all() and (P[3, 32:] == 0).all()
    assert ex[4].tolist() == [-127, 128] and np.isnan(P[4, 32:]).all() and (P[4, :32] == 0).all()
    assert ex[5].tolist() == [-8, 9 - 8]
    q = f.quantize(x)
    assert np.isnan(q[3, :32]).all() and np.isnan(q[4, 32:]).all()
    assert np.array_equal(q[2], np.full(40, 448 * 2.0 ** 127))
    # a ragged last block is quantized as if alone
    rng = np.random.default_rng(4)
    y = rng.standard_normal((3, 70)) * np.exp2(rng.uniform(-5, 5, (3, 70)))
    assert np.array_equal(f.quantize(y)[:, 64:], f.quantize(y[:, 64:]))
    assert np.array_equal(f.quantize(y, axis=0), f.quantize(y.T).T)
    # 0-d: one block of one
    assert f.quantize(np.float32(3.3)).shape == () and f.quantize(3.3) == 3.25
    e0, x0 = f.encode(3.3)
    assert e0.shape == () and x0.tolist() == [1 - 8]


# -------------------------------------------------------------------- stochastic
def _pinned_rows(f, picks, reps):
    """reps rows of one block: element_max (pins X = 1) then the picks."""
    row = np.concatenate([[f.element_max], picks])
    return np.tile(row, (reps, 1))


@pytest.mark.parametrize("name", ["mxfp4_e2m1", "mxfp8_e4m3", "mxfp6_e3m2", "mxint8"])
def test_stochastic_is_unbiased_and_gives_the_two_neighbours(name):
    f = MX[name]
    V = f.values()
    rng = np.random.default_rng(5)
    pos = V[V > 0]
    picks = np.concatenate([rng.uniform(0, pos[0], 3), rng.uniform(pos[0], pos[-1], 6),
                            rng.uniform(pos[-2], pos[-1], 3)]) * np.array([1, -1] * 6)
    reps = 20000
    x = _pinned_rows(f, picks, reps)
    q = f.quantize(x, rounding="stochastic", rng=np.random.default_rng(6))[:, 1:]
    j = np.searchsorted(V, picks)
    lo, hi = V[j - 1], V[j]
    assert np.all((q == lo) | (q == hi))
    p = (picks - lo) / (hi - lo)
    se = (hi - lo) * np.sqrt(p * (1 - p) / reps)
    err = np.abs(q.mean(axis=0) - picks)
    assert np.all(err <= 5 * se + 1e-15), err / se


@pytest.mark.parametrize("name", ["mxfp4_e2m1", "mxint8"])
def test_stochastic_uses_one_uniform_per_element_in_c_order(name):
    f = MX[name]
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 45)) * np.exp2(rng.integers(-9, 9, (6, 1)))
    x[2, 3] = np.nan                                # data does not change the stream
    q1 = f.quantize(x, rounding="stochastic", rng=np.random.default_rng(8))
    q2 = f.quantize(x, rounding="stochastic", rng=np.random.default_rng(8))
    q3 = f.quantize(x, rounding="stochastic", rng=np.random.default_rng(9))
    assert_bits_equal(q1, q2)
    assert not np.array_equal(q1, q3, equal_nan=True)
    r1, r2 = np.random.default_rng(10), np.random.default_rng(10)
    f.quantize(x, rounding="stochastic", rng=r1, axis=0)
    r2.random(x.shape)
    assert r1.random() == r2.random()
    # element i's magnitude goes up iff u[i] < its fraction between the two neighbours
    u = np.random.default_rng(8).random(x.shape)
    P, ex = f.encode(x, rounding="stochastic", rng=np.random.default_rng(8))
    X = np.exp2(np.repeat(np.clip(ex, -127, 127), 32, axis=1)[:, :45].astype(float))
    V = f.values()
    V = V[V >= 0]
    a = np.minimum(np.abs(x / X), V[-1])
    j = np.clip(np.searchsorted(V, a, side="right"), 1, len(V) - 1)
    lo, hi = V[j - 1], V[j]
    want = np.where(a == V[-1], V[-1], np.where(u < (a - lo) / (hi - lo), hi, lo))
    want = np.copysign(want, x)
    ok = ~np.isnan(x[:, :32].max(axis=1))
    assert np.array_equal(P[ok], want[ok])


# --------------------------------------------------------------------- stats
def test_stats_count_flushed_saturated_and_max_abs():
    f = MXFP4_E2M1
    x = np.zeros(70)
    x[:5] = [7.9, -7.0, 6.5, 0.2, 1.0]             # X = 1: 8, -8 saturate, 6.5 -> 6, 0.2 -> 0
    x[32:36] = [np.inf, 1.0, 2.0, np.nan]          # a NaN-scale block
    x[64:67] = [1e-3, 3.0, -0.0]                   # ragged block, X = 2^-1
    q, s = f.quantize_stats(x)
    assert (s.count, s.flushed, s.saturated) == (68, 2, 3)   # inf saturated; 1e-3 / 0.5 flushed
    assert s.max_abs == 7.9
    assert q[:5].tolist() == [6, -6, 6, 0, 1] and q[65] == 3.0
    _, s = MXINT8.quantize_stats(np.array([1.999, 0.5, 1e-5]))
    assert (s.count, s.flushed, s.saturated, s.max_abs) == (3, 1, 1, 1.999)
    _, s = MXFP8_E4M3.quantize_stats(np.zeros((0, 5)))
    assert (s.count, s.max_abs) == (0, 0.0)


# -------------------------------------------------------- API, dtypes, presets
def test_dtypes_and_errors():
    f = MXFP8_E5M2
    assert f.quantize(np.ones(3, np.float32)).dtype == np.float32
    assert f.quantize(np.ones(3)).dtype == np.float64
    assert f.quantize(np.arange(40)).dtype == np.float64
    assert f.quantize(np.ones((2, 0))).shape == (2, 0)
    for bad in (dict(scale=2.0), dict(scale=np.ones(3)), dict(axis=1), dict(axis=1.0),
                dict(rounding="stochastic"), dict(rounding="up")):
        with pytest.raises(ValueError):
            f.quantize(np.ones(3), **bad)
    with pytest.raises(ValueError, match="scale must be None"):
        f.quantize_stats(np.ones(3), scale=1.0)
    for bad in (lambda: MXFormat(E4M3.__class__(4, 3, specials="fn", overflow="inf")),
                lambda: MXFormat(IntFormat(8, signed=False)), lambda: MXFormat(E4M3, block_size=0),
                lambda: MXFormat("e4m3")):
        with pytest.raises(ValueError):
            bad()


def test_preset_names():
    for key, f in MX.items():
        assert get_format(key) is f and get_format(key.upper()) is f
        assert get_format(f" {f.name} ") is f and get_format(f) is f
        assert str(f) == f.name
    assert MXFP8_E4M3.element == E4M3 and MXFP8_E4M3.block_size == 32
    custom = MXFormat(FloatFormat(3, 4, specials="none"), block_size=16)
    assert get_format(custom) is custom
    with pytest.raises(ValueError):
        get_format("mxfp5")
