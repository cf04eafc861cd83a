"""intsim.kernels.floatacc: the Numba float accumulator against its NumPy reference bit
for bit (values, signs of zeros, NaN, audit), against exact rational rounding, and
on known cases. Also run with NUMBA_DISABLE_JIT=1 (make test-nojit): shapes shrink."""
import dataclasses
import math
from fractions import Fraction

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intsim.formats import BF16, E4M3, E5M2, FP16, LPTORCH_MASTER, FP134, FloatFormat
from intsim.kernels.floatacc import (ORDERS, FloatAccAudit, float_matmul_acc,
                                     float_matmul_acc_ref)

NOJIT = bool(numba.config.DISABLE_JIT)
KMAX = 40 if NOJIT else 300
MNMAX = 3 if NOJIT else 6

# without the JIT the kernels run on NumPy scalars, which warn on inf - inf and overflow
pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning")] if NOJIT else []

FP32 = FloatFormat(8, 23, name="fp32")
FORMATS = {
    "fp16": FP16, "fp16-sat": dataclasses.replace(FP16, overflow="saturate"),
    "bf16": BF16, "e5m2": E5M2, "e5m2-inf": dataclasses.replace(E5M2, overflow="inf"),
    "e4m3": E4M3, "e4m3-inf": dataclasses.replace(E4M3, overflow="inf"),
    "fp32": FP32, "fp32-inf": dataclasses.replace(FP32, overflow="inf"),
    "e5m10-ftz": FloatFormat(5, 10, subnormals=False), "master": LPTORCH_MASTER,
    "e11m40": FloatFormat(11, 40), "fp64": FloatFormat(11, 52, overflow="inf"),
    "e11m2-b1070": FloatFormat(11, 2, bias=1070),     # normals among float64's subnormals
}
OUTERS = [None, "fp32", "bf16", "e11m40"]


def _same(x, y):
    assert x.dtype == y.dtype and x.shape == y.shape
    assert np.array_equal(x, y, equal_nan=True)
    assert np.array_equal(np.signbit(x), np.signbit(y))


def _operands(rng, M, K, N, fmt, dtype):
    """Random operands whose products span the format's range: mixed magnitudes,
    zeros, repeated small integers (exact ties), and a scale picked so that some
    draws overflow and some reach the subnormals."""
    lg = math.log2(fmt.max_value)
    scale = 2.0 ** rng.choice([0.0, lg / 2 - 3, lg / 2 - 0.5, fmt.emin / 2])
    spread = int(rng.integers(0, 12))
    a = rng.standard_normal((M, K)) * np.exp2(rng.integers(-spread, spread + 1, (M, K)))
    b = rng.standard_normal((K, N)) * np.exp2(rng.integers(-spread, spread + 1, (K, N)))
    a[rng.random((M, K)) < 0.1] = 0.0
    ints = rng.random((K, N)) < 0.2
    b[ints] = rng.integers(-3, 4, int(ints.sum()))
    a = np.minimum(np.abs(a * scale), 3e38) * np.sign(a)       # finite in float32
    b = np.minimum(np.abs(b * scale), 3e38) * np.sign(b)
    return a.astype(dtype), b.astype(dtype)


def check(a, b, **kw):
    """fast == reference bit for bit, audits equal; returns (result, audit)."""
    au_f, au_r = FloatAccAudit(), FloatAccAudit()
    got = float_matmul_acc(a, b, audit=au_f, **kw)
    want = float_matmul_acc_ref(a, b, audit=au_r, **kw)
    _same(got, want)
    assert au_f.as_dict() == au_r.as_dict()
    return got, au_f


@settings(max_examples=30 if NOJIT else 200, deadline=None)
@given(M=st.integers(1, MNMAX), K=st.integers(1, KMAX), N=st.integers(1, MNMAX),
       tile=st.one_of(st.none(), st.integers(1, KMAX + 5)), order=st.sampled_from(ORDERS),
       fmt=st.sampled_from(sorted(FORMATS)), outer=st.sampled_from(OUTERS),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_fast_equals_reference(M, K, N, tile, order, fmt, outer, dtype, seed):
    rng = np.random.default_rng(seed)
    f = FORMATS[fmt]
    a, b = _operands(rng, M, K, N, f, dtype)
    check(a, b, fmt=f, order=order, tile=tile,
          outer_fmt=None if outer is None else FORMATS.get(outer, outer))


@pytest.mark.parametrize("order", ORDERS)
def test_thread_count_does_not_change_result(order):
    rng = np.random.default_rng(5)
    M, K, N = (4, 30, 3) if NOJIT else (24, 260, 10)
    a, b = _operands(rng, M, K, N, BF16, np.float32)
    before = numba.get_num_threads()
    outs = []
    try:
        for nt in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(nt)
            outs.append(check(a, b, fmt=FP16, order=order, tile=37, outer_fmt=FP32))
    finally:
        numba.set_num_threads(before)
    _same(outs[0][0], outs[1][0])
    assert outs[0][1] == outs[1][1]


# ------------------------------------------------------------ exact rounding
def _round_exact(v, fmt):
    """A Fraction rounded to fmt (nearest, ties to even; overflow rule) as a float."""
    if v == 0:
        return 0.0
    a = abs(v)
    E = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** E > a:
        E -= 1
    step = Fraction(2) ** (max(E, fmt.emin) - fmt.man_bits)
    k = a / step
    fl = math.floor(k)
    rem = k - fl
    kr = fl + 1 if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2) else fl
    q = kr * step
    if not fmt.subnormals and a < fmt.min_normal:
        q = Fraction(fmt.min_normal) if a > Fraction(fmt.min_normal) / 2 else Fraction(0)
    if q > Fraction(fmt.max_value):
        q = fmt.max_value if fmt.overflow == "saturate" else (math.inf if fmt.has_inf
                                                              else math.nan)
    return math.copysign(float(q), v)


@pytest.mark.parametrize("fmt", ["fp16", "bf16", "e4m3", "fp32", "e5m10-ftz", "e11m40",
                                 "fp64", "master"])
def test_sums_are_correctly_rounded(fmt):
    """s + x for format values s, x (K = 2, naive: 0 + s, then s + x) against exact
    rational rounding, with exponent gaps wider than float64's 53 bits."""
    f = FORMATS[fmt]
    rng = np.random.default_rng(11)
    n = 60 if NOJIT else 400
    lo, hi = max(f.emin - f.man_bits, -1000), min(int(math.log2(f.max_value)), 1000)
    e = rng.integers(lo, hi + 1, (n, 2))
    e[: n // 2, 1] = np.minimum(e[: n // 2, 0] - rng.integers(0, 70, n // 2), hi)
    a = rng.uniform(1, 2, (n, 2)) * np.exp2(e.astype(float)) * rng.choice([-1, 1], (n, 2))
    a = f.quantize(a)
    a = a[np.all(np.isfinite(a), axis=1)]
    b = np.ones((2, 1))
    got, _ = check(a, b, fmt=f, order="naive")
    want = [_round_exact(Fraction(s) + Fraction(x), f) for s, x in a]
    _same(got[:, 0], np.array(want, got.dtype))


def test_tie_decided_by_the_bits_float64_lost():
    """2^60 + (2^19 + 2^-21) in a 41-bit format: the float64 sum 2^60 + 2^19 is a tie
    (which would round to 2^60) but the exact sum lies above it: 2^60 + 2^20."""
    f = FORMATS["e11m40"]
    a = np.array([[2.0 ** 60, 2.0 ** 19 + 2.0 ** -21], [-(2.0 ** 60), -(2.0 ** 19 + 2.0 ** -21)]])
    got, au = check(a, np.ones((2, 1)), fmt=f, order="naive")
    assert got[:, 0].tolist() == [2.0 ** 60 + 2.0 ** 20, -(2.0 ** 60 + 2.0 ** 20)]
    assert au.swamped == 2 and au.absorbed == 0


# ------------------------------------------------------------ known cases
def _sum_ones(n, **kw):
    au = FloatAccAudit()
    r = float_matmul_acc(np.ones((1, n), np.float32), np.ones((n, 1), np.float32), audit=au,
                         **kw)
    return float(r[0, 0]), au


def test_fp16_sum_of_ones_stops_at_2048():
    r, au = _sum_ones(4096, fmt=FP16, order="naive")
    assert r == 2048.0
    assert (au.adds, au.swamped, au.absorbed, au.overflows) == (4096, 2048, 2048, 0)
    assert au.max_abs == 2048.0
    assert _sum_ones(4096, fmt=FP16, order="pairwise")[0] == 4096.0
    assert _sum_ones(4096, fmt=FP16, order="kahan")[0] == 4096.0
    # blocks of 256 summed exactly in fp16, block sums added in fp32
    r, au = _sum_ones(4096, fmt=FP16, tile=256, outer_fmt=FP32)
    assert r == 4096.0 and au.swamped == 0 and au.outer_adds == 16
    _, au = _sum_ones(4096, fmt=FP16, order="pairwise")
    assert au.adds == 4095 and au.swamped == 0


def test_pairwise_tree():
    """n = 7: ((x0+x1)+(x2+x3)) + ((x4+x5)+x6). In fp16 with x = 2048, 1, ..., 1:
    (2048 + 2) + (2 + 1) = 2053, a tie that rounds to 2052 (naive: 2048; a split
    at n // 2 would give 2054, the exact sum)."""
    x = np.array([[2048.0] + [1.0] * 6])
    b = np.ones((7, 1))
    assert check(x, b, fmt=FP16, order="pairwise")[0][0, 0] == 2052.0
    assert check(x, b, fmt=FP16, order="naive")[0][0, 0] == 2048.0


def test_kahan_beats_naive():
    """1500 fp16 values in [0.01, 0.1]: Kahan (and here pairwise) end within half an
    ulp of the exact sum, the naive sum is off by more than 10 ulps."""
    x = FP16.quantize(np.random.default_rng(3).uniform(0.01, 0.1, 1500))
    exact = math.fsum(x)
    ulp = 2.0 ** (math.floor(math.log2(exact)) - FP16.man_bits)
    err = {}
    for order in ORDERS:
        r, _ = check(x[None, :], np.ones((x.size, 1)), fmt=FP16, order=order)
        err[order] = abs(float(r[0, 0]) - exact)
    assert err["kahan"] <= ulp / 2 and err["naive"] > 10 * ulp
    assert err["pairwise"] < err["naive"]


def test_bf16_swamping():
    """1 then 256 addends 2^-8: each 1 + 2^-8 is a tie of bf16's 8-bit significand
    that rounds back to 1 (even), so every addend is absorbed; fp32 keeps them all."""
    x = np.r_[1.0, np.full(256, 2.0 ** -8)][None, :]
    b = np.ones((257, 1))
    r, au = check(x, b, fmt=BF16, order="naive")
    assert r[0, 0] == 1.0 and (au.swamped, au.absorbed) == (256, 256)
    r, au = check(x, b, fmt=FP32, order="naive")
    assert r[0, 0] == 2.0 and au.swamped == 0
    r, au = check(x, b, fmt=BF16, order="kahan")
    assert r[0, 0] == 2.0
    # 3 * 2^-9 is not a tie: partly lost (swamped), not absorbed
    r, au = check(np.array([[1.0, 3 * 2.0 ** -9]]), np.ones((2, 1)), fmt=BF16)
    assert r[0, 0] == 1.0 + 2.0 ** -7 and (au.swamped, au.absorbed) == (1, 0)


def test_float64_format_is_sequential_float64_sum():
    rng = np.random.default_rng(4)
    M, K, N = (2, 30, 3) if NOJIT else (5, 300, 4)
    a = rng.standard_normal((M, K)) * np.exp2(rng.integers(-20, 20, (M, K)))
    b = rng.standard_normal((K, N))
    got = float_matmul_acc(a, b, fmt=FloatFormat(11, 52), order="naive")
    want = np.cumsum(a[:, :, None] * b[None, :, :], axis=1)[:, -1, :]    # sequential
    assert got.dtype == np.float64 and np.array_equal(got, want)


@pytest.mark.parametrize("fmt,dt", [(dataclasses.replace(FP32, overflow="inf"), np.float32),
                                    (FP16, np.float16)])
def test_ieee_formats_are_numpy_sequential_sums(fmt, dt):
    """FloatFormat(8, 23) / FP16 naive = NumPy's float32 / float16 running sum of the
    products rounded to that type (NumPy's float16 goes through float32: exact)."""
    rng = np.random.default_rng(6)
    M, K, N = (2, 30, 2) if NOJIT else (6, 200, 5)
    a = rng.standard_normal((M, K)).astype(dt)
    b = (rng.standard_normal((K, N)) * 8).astype(dt)
    got = float_matmul_acc(a, b, fmt=fmt)
    p = a[:, :, None] * b[None, :, :]
    want = np.cumsum(p, axis=1, dtype=dt)[:, -1, :]
    assert np.array_equal(got, want.astype(got.dtype))


def test_overflow_saturate_and_inf():
    a = np.full((1, 40), 2000.0)
    b = np.ones((40, 1))
    r, au = check(a, b, fmt=FP16)                       # overflow to inf
    assert r[0, 0] == np.inf and au.overflows == 1 and au.max_abs == np.inf
    r, au = check(a, b, fmt=FORMATS["fp16-sat"])        # 32 adds reach 64000, then +-max
    assert r[0, 0] == 65504.0 and au.overflows == 8 and au.max_abs == 65504.0
    # E4M3 products above 448: saturated products; with overflow "inf", NaN
    r, au = check(np.array([[30.0, -30.0]]), np.full((2, 1), 20.0), fmt=E4M3)
    assert r[0, 0] == 0.0 and au.prod_overflows == 2
    r, au = check(np.array([[30.0, 1.0]]), np.full((2, 1), 20.0), fmt=FORMATS["e4m3-inf"])
    assert np.isnan(r[0, 0]) and au.prod_overflows == 1 and au.overflows == 0
    # a float64 product overflowing float64 itself
    r, au = check(np.array([[1e200, 1.0]]), np.array([[1e200], [1.0]]), fmt=FORMATS["fp64"])
    assert r[0, 0] == np.inf and au.prod_overflows == 1
    r, au = check(np.array([[1e200, -1.0]]), np.array([[1e200], [1.0]]), fmt=FloatFormat(11, 52))
    assert r[0, 0] == FloatFormat(11, 52).max_value and au.prod_overflows == 1
    # inf + -inf in fp16: NaN, counted in adds only
    r, au = check(np.array([[300.0, -300.0, 1.0]]), np.full((3, 1), 300.0), fmt=FP16)
    assert np.isnan(r[0, 0]) and au.prod_overflows == 2 and au.adds == 3
    assert au.swamped == au.overflows == 0


def test_audit_counts_and_helpers():
    a = np.ones((3, 10), np.float32)
    b = np.ones((10, 2), np.float32)
    au = FloatAccAudit()
    float_matmul_acc(a, b, fmt=FP16, order="pairwise", tile=4, audit=au)
    # blocks 4, 4, 2: 3 + 3 + 1 adds per output; outer: 3 per output
    assert au.adds == 6 * 7 and au.outer_adds == 6 * 3 and au.max_abs == 4.0
    assert au.outer_max_abs == 10.0
    d = au.as_dict()
    assert set(d) >= {"adds", "swamped", "absorbed", "overflows", "max_abs", "prod_overflows",
                      "outer_adds", "outer_swamped", "outer_absorbed", "outer_overflows",
                      "outer_max_abs", "frac_swamped"}
    twice = FloatAccAudit().add(au).add(d)
    assert twice.adds == 2 * au.adds and twice.max_abs == au.max_abs
    assert twice.reset() == FloatAccAudit()


def test_shapes_dtypes_and_errors():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5))
    b = rng.standard_normal((5, 2))
    assert float_matmul_acc(a, b, fmt="bf16").dtype == np.float32
    assert float_matmul_acc(a, b, fmt=FloatFormat(11, 52)).dtype == np.float64
    assert float_matmul_acc(a, b, fmt=FP16, outer_fmt=FloatFormat(11, 52)).dtype == np.float64
    z = float_matmul_acc(np.zeros((3, 0)), np.zeros((0, 2)), fmt=FP16)
    assert z.shape == (3, 2) and not z.any()
    bad = a.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        float_matmul_acc(bad, b, fmt=FP16)
    with pytest.raises(ValueError, match="NaN or inf"):
        float_matmul_acc_ref(a, np.full((5, 2), np.inf), fmt=FP16)
    for kw in ({"order": "sorted"}, {"tile": 0}, {"tile": 2.5}, {"audit": object()}):
        with pytest.raises(ValueError):
            float_matmul_acc(a, b, fmt=FP16, **kw)
    with pytest.raises(ValueError, match="FloatFormat"):
        float_matmul_acc(a, b, fmt=FP134)
    with pytest.raises(ValueError, match="shape mismatch"):
        float_matmul_acc(a, b[:4], fmt=FP16)
    with pytest.raises(ValueError, match="2-D"):
        float_matmul_acc(a[None], b, fmt=FP16)
