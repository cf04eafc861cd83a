"""Number formats (intsim.formats) against references that enumerate every value.

Nearest rounding is compared with "the nearest of all representable values"
(float formats: the values decoded from every bit pattern; ties to the
neighbour with the even mantissa, as documented); stochastic rounding gives
one of the two neighbours and is unbiased (fixed seeds, a 5-sigma z-test);
the presets' constants; overflow and underflow; scales; FP16 and bfloat16
against NumPy's float16 cast and float32 bit rounding; the tapered and
lptorch-fp formats against a scalar transcription of lptorch's CUDA kernels.
"""
import dataclasses
import math

import numpy as np
import pytest

from intsim.formats import (BF16, E4M3, E5M2, FP16, FP130, FP134, LPTORCH_MASTER, FloatFormat,
                            IntFormat, TaperedFormat, amax_scale, get_format)

FLOATS = {
    "e4m3": E4M3, "e5m2": E5M2, "fp16": FP16, "master": LPTORCH_MASTER,
    "e4m3-inf": dataclasses.replace(E4M3, overflow="inf"),
    "e5m2-inf": dataclasses.replace(E5M2, overflow="inf"),
    "e3m2-ftz": FloatFormat(3, 2, subnormals=False, specials="none"),
    "e4m2-bias3": FloatFormat(4, 2, bias=3, specials="ieee", overflow="inf"),
    "e2m3-none": FloatFormat(2, 3, specials="none"),
}
TAPERED = {"fp134": FP134, "fp130": FP130, "t4443": TaperedFormat((4, 4, 4, 3)),
           "t5553": TaperedFormat.from_string("5553"), "t32210": TaperedFormat((3, 2, 2, 1, 0))}
INTS = {"int4": IntFormat(4), "int4-2c": IntFormat(4, symmetric=False),
        "uint3": IntFormat(3, signed=False)}
ALL = {**FLOATS, **TAPERED, **INTS}


# ------------------------------------------------------------------ references
def _float_table(f):
    """(sorted finite values, their mantissa-LSB evenness) decoded from every code."""
    codes = np.arange(1 << f.total_bits)
    v = f.decode(codes)
    ok = np.isfinite(v)
    v, even = v[ok] + 0.0, (codes[ok] & 1) == 0
    order = np.argsort(v, kind="stable")
    v, even = v[order], even[order]
    keep = np.concatenate([[True], np.diff(v) > 0])   # +0 and -0: one zero, even
    v, even = v[keep], even[keep]
    even[v == 0] = True
    if not f.subnormals:
        assert not np.any((np.abs(v) > 0) & (np.abs(v) < f.min_normal))
    return v, even


def _overflow_neighbour(f):
    """(value just above max, its evenness): the rounding target that overflows."""
    top = f.max_value
    if isinstance(f, FloatFormat):
        ulp = 2.0 ** (f.emax - f.man_bits)
        # "fn": the NaN code max + ulp has an odd mantissa; else the next binade's 1.0
        return top + ulp, f.specials != "fn"
    return None, None


def _tie_even(f, lo, hi):
    """Which neighbour a tie between lo < hi (>= 0) goes to, by the documented rule."""
    if isinstance(f, IntFormat):
        return lo if lo % 2 == 0 else hi
    if isinstance(f, FloatFormat):
        raise AssertionError("float ties are resolved from the decoded table")
    # tapered: the mantissa integer k = v / step of the binade the tie lies in
    t = (lo + hi) / 2
    _, ex = math.frexp(t)
    d = min(max(1 - ex, 0), f.binades - 1)
    step = 2.0 ** (1 - d - f.man[d])
    return lo if (lo / step) % 2 == 0 else hi


def reference_nearest(f, x):
    """Nearest representable value of each x (Python over the sorted table)."""
    if isinstance(f, FloatFormat):
        V, even = _float_table(f)
    else:
        V = f.values()
        even = None
    vmax = V[-1]
    over_v, over_even = _overflow_neighbour(f)
    out = np.empty(len(x))
    for i, xi in enumerate(x):
        if np.isnan(xi):
            out[i] = np.nan
            continue
        a, sgn = abs(xi), (-1.0 if xi < 0 else 1.0)
        if isinstance(f, IntFormat) and not f.signed and xi < 0:
            out[i] = 0.0
            continue
        if isinstance(f, IntFormat) and f.signed and not f.symmetric and xi < 0:
            # two's complement: -2^(b-1) exists, search the signed table directly
            j = int(np.searchsorted(V, xi))
            if j == 0:
                out[i] = V[0]
                continue
            lo, hi = V[j - 1], V[j]
            dlo, dhi = xi - lo, hi - xi
            out[i] = lo if dlo < dhi else hi if dhi < dlo else (lo if lo % 2 == 0 else hi)
            continue
        cand_over = getattr(f, "overflow", "saturate") == "inf"
        if a >= vmax:
            if not cand_over or a == vmax:
                out[i] = sgn * vmax
            else:
                d_lo, d_hi = a - vmax, over_v - a
                if d_lo < d_hi or (d_lo == d_hi and not over_even):
                    out[i] = sgn * vmax
                else:
                    out[i] = sgn * np.inf if f.has_inf else np.nan
            continue
        j = int(np.searchsorted(V, a))
        if V[j] == a:
            out[i] = sgn * a
            continue
        lo, hi = V[j - 1], V[j]
        dlo, dhi = a - lo, hi - a
        if dlo < dhi:
            r = lo
        elif dhi < dlo:
            r = hi
        elif even is not None:
            e_lo, e_hi = even[j - 1], even[j]
            r = lo if (e_lo and not e_hi) or (e_lo == e_hi) else hi   # both even: to zero
        else:
            r = _tie_even(f, lo, hi)
        out[i] = sgn * r
    return out


def _probe_inputs(f, rng, n_random=3000):
    """Every value, every midpoint (ties), just either side of them, random values
    over the whole range, beyond max and below the smallest value."""
    V = f.values()
    if len(V) > 5000:
        V = np.unique(np.concatenate([V[:600], V[-600:], rng.choice(V, 3000, replace=False)]))
    mids = (V[:-1] + V[1:]) / 2
    pos = V[V > 0]
    lo, hi = np.log2(pos.min()) - 3, np.log2(V.max()) + 2
    rand = np.exp2(rng.uniform(lo, hi, n_random)) * rng.choice([-1.0, 1.0], n_random)
    x = np.concatenate([V, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf), rand,
                        [V.max() * 1.5, -V.max() * 3, pos.min() / 2, pos.min() / 3, 0.0]])
    return x


# ---------------------------------------------------------------------- nearest
@pytest.mark.parametrize("name", list(ALL))
def test_nearest_equals_the_nearest_enumerated_value(name):
    f = ALL[name]
    x = _probe_inputs(f, np.random.default_rng(1))
    got = f.quantize(x)
    ref = reference_nearest(f, x)
    both_nan = np.isnan(got) & np.isnan(ref)
    bad = ~((got == ref) | both_nan)
    assert not bad.any(), list(zip(x[bad][:5], got[bad][:5], ref[bad][:5]))


def test_bf16_random_values_against_the_decoded_table():
    rng = np.random.default_rng(2)
    x = np.exp2(rng.uniform(-135, 129, 4000)) * rng.choice([-1.0, 1.0], 4000)
    got = BF16.quantize(x)
    ref = reference_nearest(BF16, x)
    assert np.array_equal(got, ref)


def test_values_are_sorted_unique_and_quantize_to_themselves():
    for f in ALL.values():
        v = f.values()
        assert np.all(np.diff(v) > 0) and np.count_nonzero(v == 0) == 1
        assert np.array_equal(f.quantize(v), v)
        assert f.max_value == v.max()
        if not isinstance(f, IntFormat):
            assert f.min_positive == v[v > 0].min() and np.array_equal(-v[::-1], v)


# ---------------------------------------------------------------- independent casts
def test_fp16_equals_numpy_float16_cast():
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2 ** 32, 200000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x)]
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16).astype(np.float32)
    got = FP16.quantize(x)
    assert got.dtype == np.float32
    assert np.array_equal(got, ref, equal_nan=True)


def test_bf16_equals_float32_round_to_nearest_even_truncation():
    rng = np.random.default_rng(4)
    u = rng.integers(0, 2 ** 32, 200000, dtype=np.uint64).astype(np.uint32)
    x = u.view(np.float32)
    x = x[np.isfinite(x)]
    u = x.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    ref = r.view(np.float32)
    got = BF16.quantize(x)
    assert np.array_equal(got, ref)


# ---------------------------------------------------------------------- presets
def test_preset_constants():
    assert E4M3.max_value == 448.0 and E4M3.min_positive == 2.0 ** -9
    assert E4M3.min_normal == 2.0 ** -6 and len(E4M3.values()) == 253   # 256 - 2 NaN - (-0)
    assert E5M2.max_value == 57344.0 and E5M2.min_positive == 2.0 ** -16
    assert E5M2.min_normal == 2.0 ** -14
    assert FP16.max_value == 65504.0 and FP16.min_positive == 2.0 ** -24
    assert FP16.max_value == float(np.finfo(np.float16).max)
    assert BF16.max_value == (2 - 2 ** -7) * 2.0 ** 127
    assert abs(BF16.max_value - 3.3895313892515355e38) < 1e24
    assert BF16.min_normal == float(np.finfo(np.float32).tiny)
    assert FP134.max_value == 1.9375 and FP134.min_positive == 2.0 ** -10
    assert len(FP134.values()) == 255           # sign + 3 exponent + 4 mantissa bits
    assert FP130.max_value == 1.0 and FP130.min_positive == 2.0 ** -6
    assert LPTORCH_MASTER.max_value == 2.0 ** 33 - 2.0 ** 23
    assert LPTORCH_MASTER.min_positive == 2.0 ** -39
    assert get_format("e4m3") is E4M3 and get_format("555555543210").man == FP134.man
    with pytest.raises(ValueError):
        get_format("e9m9")


def test_fp134_is_a_1_3_4_float_with_subnormals():
    e3m4 = FloatFormat(3, 4, specials="none")        # bias 3: binades 2^-2 .. 2^4
    assert np.array_equal(FP134.values() * 2.0 ** 4, e3m4.values())


def test_bad_formats_raise():
    for bad in (lambda: FloatFormat(0, 3), lambda: FloatFormat(4, 3, specials="x"),
                lambda: FloatFormat(4, 3, overflow="wrap"), lambda: FloatFormat(4, 0, specials="fn"),
                lambda: TaperedFormat(()), lambda: TaperedFormat((0, 3)),
                lambda: TaperedFormat((3, 0, 2)), lambda: TaperedFormat.from_string("5a"),
                lambda: IntFormat(0), lambda: IntFormat(1)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError):
        E4M3.quantize(np.ones(3), rounding="stochastic")          # no rng
    with pytest.raises(ValueError):
        E4M3.quantize(np.ones(3), rounding="up")
    with pytest.raises(ValueError):
        E4M3.quantize(np.ones((2, 3)), scale=np.ones(2))            # does not broadcast
    with pytest.raises(ValueError):
        E4M3.quantize(np.ones(3), scale=0.0)


# ------------------------------------------------------------ overflow / underflow
def test_overflow_saturates_or_goes_to_inf_and_nan():
    x = np.array([448, 463.9, 464, 465, 1e6, -1e6, np.inf, -np.inf, np.nan])
    assert np.array_equal(E4M3.quantize(x), [448, 448, 448, 448, 448, -448, 448, -448, np.nan],
                          equal_nan=True)
    e4inf = dataclasses.replace(E4M3, overflow="inf")
    assert np.array_equal(e4inf.quantize(x), [448, 448, 448, np.nan, np.nan, np.nan, np.nan,
                                              np.nan, np.nan], equal_nan=True)
    e5inf = dataclasses.replace(E5M2, overflow="inf")
    assert np.array_equal(e5inf.quantize(np.array([61439.0, 61440.0, -7e4])),
                          [57344, np.inf, -np.inf])
    assert np.array_equal(E5M2.quantize(np.array([61440.0, -7e4])), [57344, -57344])
    assert np.array_equal(FP16.quantize(np.array([65519.0, 65520.0])), [65504, np.inf])
    assert FP134.quantize(np.array([1.96875, 5.0, -1e9])).tolist() == [1.9375, 1.9375, -1.9375]


def test_underflow_to_zero_and_the_subnormals():
    s = 2.0 ** -9                                    # E4M3's smallest subnormal
    x = np.array([s, s / 2, s / 2 * 1.0001, s * 1.5, s * 2.5, s / 3])
    assert np.array_equal(E4M3.quantize(x), [s, 0, s, 2 * s, 2 * s, 0])   # ties to even
    ftz = FloatFormat(4, 3, subnormals=False, specials="fn")
    mn = ftz.min_normal
    assert np.array_equal(ftz.quantize(np.array([mn, mn / 2, mn * 0.51, mn * 0.3, -mn * 0.9])),
                          [mn, 0, mn, 0, -mn])
    # FP134 at scale 2^0: the '0' binade only rounds to 0 or 2^-10
    t = 2.0 ** -10
    assert FP134.quantize(np.array([t, t / 2, t * 0.51, t * 0.49, t / 8])).tolist() == \
        [t, 0, t, 0, 0]


def test_stats_count_flushed_and_saturated_values():
    x = np.array([0.0, 1e-6, -1e-7, 3.0, 500.0, -1e5, np.inf, np.nan, 448.0])
    q, st = E4M3.quantize_stats(x)
    assert (st.count, st.flushed, st.saturated) == (7, 2, 3)   # inf counted, NaN not
    assert st.max_abs == 1e5
    _, st = IntFormat(4).quantize_stats(np.array([0.2, -0.4, 7.4, 9.0, -8.0, 3.0]))
    assert (st.flushed, st.saturated) == (2, 2)
    _, st = FP134.quantize_stats(np.array([1e-4, 2.5, 1.0]), scale=1.0)
    assert (st.flushed, st.saturated) == (1, 1)


# -------------------------------------------------------------------- stochastic
def _neighbours(V, x):
    j = np.searchsorted(V, x)
    j = np.clip(j, 1, len(V) - 1)
    exact = V[np.clip(np.searchsorted(V, x), 0, len(V) - 1)] == x
    return V[j - 1], V[j], exact


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "master", "e3m2-ftz", "fp134", "fp130",
                                  "t32210", "int4", "uint3"])
def test_stochastic_gives_only_the_two_neighbours(name):
    f = ALL[name]
    V = f.values()
    rng = np.random.default_rng(5)
    lo_v = V[V > 0].min() / 4 if not isinstance(f, IntFormat) else 0.0
    n = 20000
    a = np.exp2(rng.uniform(np.log2(max(lo_v, 1e-30)), np.log2(V.max()), n))
    x = np.concatenate([a * rng.choice([-1.0, 1.0], n), V])
    x = x[(x >= V.min()) & (x <= V.max())]
    q = f.quantize(x, rounding="stochastic", rng=np.random.default_rng(6))
    lo, hi, exact = _neighbours(V, x)
    assert np.all((q == lo) | (q == hi))
    assert np.array_equal(q[exact], x[exact])


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "fp134", "e3m2-ftz", "t32210", "int4"])
def test_stochastic_is_unbiased(name):
    """Mean of 40000 roundings of each of 12 values within 5 standard errors of x."""
    f = ALL[name]
    V = f.values()
    rng = np.random.default_rng(7)
    pos = V[V > 0]
    # between neighbours everywhere: subnormal/flush region, mid range, near max
    picks = np.concatenate([rng.uniform(0, pos[0], 3), rng.uniform(pos[0], pos[-1], 6),
                            rng.uniform(pos[-2], pos[-1], 3)])
    picks = picks * np.array([1, -1] * 6)
    if isinstance(f, IntFormat):
        picks = np.abs(picks) * np.array([1, -1] * 6)
    reps = 40000
    x = np.repeat(picks, reps)
    q = f.quantize(x, rounding="stochastic", rng=np.random.default_rng(8)).reshape(len(picks), reps)
    lo, hi, _ = _neighbours(V, picks)
    p = (picks - lo) / (hi - lo)
    se = (hi - lo) * np.sqrt(p * (1 - p) / reps)
    err = np.abs(q.mean(axis=1) - picks)
    assert np.all(err <= 5 * se + 1e-15), (picks, err / np.maximum(se, 1e-300))


def test_stochastic_draws_one_uniform_per_element_whatever_the_data():
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    E4M3.quantize(np.zeros((3, 5)), rounding="stochastic", rng=r1)
    r2.random((3, 5))
    assert r1.random() == r2.random()


# ------------------------------------------------------------------------ scales
def test_scale_per_tensor_and_per_channel():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 6)) * np.array([[1.0], [100.0], [1e-3], [0.0]])
    s = amax_scale(x, E4M3, axis=0)
    assert s.shape == (4, 1) and s[3, 0] == 1.0
    q = E4M3.quantize(x, scale=s)
    assert np.allclose(np.abs(q[:3]).max(axis=1), np.abs(x[:3]).max(axis=1), rtol=1e-12)
    for c in range(3):          # each channel = the format at its own scale
        assert np.array_equal(q[c], E4M3.quantize(x[c] / s[c, 0]) * s[c, 0])
    # a power-of-two scale is exact: scaling commutes with quantizing
    s2 = amax_scale(x, E5M2, pow2=True)
    assert math.log2(s2) == int(math.log2(s2)) and np.abs(x).max() / s2 <= E5M2.max_value
    assert np.array_equal(E5M2.quantize(x, scale=s2), E5M2.quantize(x / s2) * s2)
    assert amax_scale(np.zeros(3), E4M3) == 1.0


@pytest.mark.parametrize("k", [-30, -10, -1, 0, 2, 5, 40])
@pytest.mark.parametrize("ulps", [-1, 0, 1, 2])
def test_a_pow2_scale_keeps_the_max_in_range_next_to_a_power_of_two(k, ulps):
    """max|x| one float64 step from 2^k max_value: the pow2 scale is the smallest power
    of two with max|x| / s <= max_value (log2 rounds 2^k (1 + 2^-52) down to k)."""
    m = 2.0 ** k * E4M3.max_value
    for _ in range(abs(ulps)):
        m = np.nextafter(m, np.inf if ulps > 0 else -np.inf)
    s = amax_scale(np.array([m, -m / 3]), E4M3, pow2=True)
    assert s == 2.0 ** (k + (ulps > 0))
    assert m / s <= E4M3.max_value and m / (s / 2) > E4M3.max_value
    per = amax_scale(np.array([[m, m / 5], [0.0, 0.0]]), E4M3, axis=0, pow2=True)
    assert per[0, 0] == s and per[1, 0] == 1.0


def test_int_format_is_the_kernels_quantizer():
    from intsim.kernels import quant
    rng = np.random.default_rng(11)
    x = rng.standard_normal((7, 9))
    q, s = quant.quantize_f32(x, 4, signed=True, clip=0.975)
    got = IntFormat(4).quantize(x, scale=s)
    assert np.array_equal(got, q.astype(np.float64) * s)
    xu = np.abs(x)
    q, s = quant.quantize_f32(xu, 4, signed=None)
    assert np.array_equal(IntFormat(4, signed=False).quantize(xu, scale=s), q.astype(np.float64) * s)


def test_dtypes_follow_the_input():
    assert E4M3.quantize(np.ones(2, np.float32)).dtype == np.float32
    assert E4M3.quantize(np.ones(2)).dtype == np.float64
    assert E4M3.quantize(np.arange(3)).dtype == np.float64
    assert FP134.quantize(np.float32(1.3)).shape == ()


# ------------------------------------------------ lptorch's kernels, transcribed
def _f32(v):
    return float(np.float32(v))


def _lptorch_binade(x, man, sca):
    """The shared start of lptorch's custom_fp kernels: (vmax, mantissa t, exponent,
    index into man of the binade's mantissa width)."""
    mn = len(man)
    vmax = _f32(2.0 ** (sca + 1) - 2.0 ** (sca + 1 - man[0]))
    t, expo = math.frexp(x)
    diff = sca - expo + 1
    if mn <= diff:
        t = t * 2.0 ** (mn - 1 - diff)
        expo = sca - mn + 2
        diff = mn - 1
    return vmax, t, expo, diff


def lptorch_custom_fp(x, man, sca):
    """One element of lptorch's custom_fp_quantize (nearest): float32 frexp, shift
    into the binade, rint, shift back, clamp (transcribed from the semantics)."""
    vmax, t, expo, diff = _lptorch_binade(x, man, sca)
    if diff >= 0:
        t = float(np.rint(t * 2.0 ** man[diff])) * 2.0 ** -man[diff]
    t = t * 2.0 ** expo
    if t != 0:
        t = min(max(t, -vmax), vmax)
    return _f32(t)


def lptorch_fp(x, exp_bit, man_bit, bias):
    """One element of lptorch's fp_quantize (nearest)."""
    vmax = 2.0 ** (2 ** exp_bit - bias) - 2.0 ** (2 ** exp_bit - 1 - bias - man_bit)
    t, expo = math.frexp(x)
    t = t * 2.0 ** (man_bit + 1)
    if 2 - bias > expo:
        t = t * 2.0 ** (expo - 2 + bias)
        expo = 2 - bias
    t = float(np.rint(t)) * 2.0 ** (expo - man_bit - 1)
    return _f32(min(max(t, -vmax), vmax))


@pytest.mark.parametrize("digits", ["555555543210", "11111110", "4443", "32210"])
def test_tapered_equals_lptorch_custom_fp_kernel(digits):
    f = TaperedFormat.from_string(digits)
    rng = np.random.default_rng(12)
    for sca in (-7, 0, 3):
        V = f.values() * 2.0 ** sca
        x = np.concatenate([V, (V[:-1] + V[1:]) / 2,
                            np.exp2(rng.uniform(sca - 16, sca + 3, 1500)) *
                            rng.choice([-1.0, 1.0], 1500)]).astype(np.float32)
        got = f.quantize(x, scale=2.0 ** sca)
        ref = np.array([lptorch_custom_fp(float(v), f.man, sca) for v in x], np.float32)
        assert np.array_equal(got, ref), digits


def test_lptorch_master_format_equals_lptorch_fp_kernel():
    rng = np.random.default_rng(13)
    x = np.concatenate([np.exp2(rng.uniform(-45, 36, 3000)) * rng.choice([-1.0, 1.0], 3000),
                        [0.9, 2e-4, 5e-4, 0.1]]).astype(np.float32)
    got = LPTORCH_MASTER.quantize(x)
    ref = np.array([lptorch_fp(float(v), 6, 9, 31) for v in x], np.float32)
    assert np.array_equal(got, ref)


def lptorch_custom_fp_hysteresis(pre, x, man, sca):
    """One element of lptorch's custom_fp_hysteresis: as custom_fp_quantize, but the
    scaled mantissa is ceil'ed where pre > x and floor'ed elsewhere."""
    vmax, t, expo, diff = _lptorch_binade(x, man, sca)
    if diff >= 0:
        k = t * 2.0 ** man[diff]
        t = (math.ceil(k) if pre > x else math.floor(k)) * 2.0 ** -man[diff]
    t = t * 2.0 ** expo
    if t != 0:
        t = min(max(t, -vmax), vmax)
    return _f32(t)


def test_tapered_hysteresis_equals_lptorch_kernel():
    rng = np.random.default_rng(14)
    for sca in (-3, 0, 2):
        x = (np.exp2(rng.uniform(sca - 14, sca + 2, 2000)) * rng.choice([-1.0, 1.0], 2000))
        pre = FP134.quantize(x + rng.normal(0, 1, x.size) * np.abs(x) * 0.2, scale=2.0 ** sca)
        x, pre = x.astype(np.float32), pre.astype(np.float32)
        x[:5] = pre[:5]                                  # equal: floor, a grid value stays
        got, _, _ = FP134.quantize_detail(x, scale=2.0 ** sca, toward=pre)
        ref = np.array([lptorch_custom_fp_hysteresis(float(p), float(v), FP134.man, sca)
                        for p, v in zip(pre, x)], np.float32)
        assert np.array_equal(got, ref)
        assert np.array_equal(got[:5], pre[:5])
