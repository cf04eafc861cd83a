"""intsim.kernels.luq.log_quantize (the fused Numba kernels of intsim.kernels._luq)
against its NumPy reference log_quantize_ref bit for bit: codes, values (signs of
zeros included), alpha and the Generator's state after. Also run with
NUMBA_DISABLE_JIT=1 (shapes shrink)."""
import numba
import numpy as np
import pytest

from intsim.errors import NonFiniteError
from intsim.kernels import _luq, luq

NOJIT = bool(numba.config.DISABLE_JIT)
BIG = 5000 if NOJIT else 70001          # above _PAR_MIN with the JIT: the parallel build
BITS = (2, 4, 8) if NOJIT else range(2, 9)

# without the JIT the kernels run on NumPy scalars, which warn on overflow
pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning")] if NOJIT else []


def _bits_equal(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def check(g, bits, seed=0, pre=0):
    """log_quantize == log_quantize_ref on g (same seed, after ``pre`` float32 draws:
    an odd count leaves half an output cached), the Generators' states too."""
    r_fast, r_ref = np.random.default_rng(seed), np.random.default_rng(seed)
    for r in (r_fast, r_ref):
        r.random(pre, dtype=np.float32)
    c, v, a = luq.log_quantize(g, bits, r_fast)
    cr, vr, ar = luq.log_quantize_ref(g, bits, r_ref)
    _bits_equal(c, cr)
    _bits_equal(v, vr)
    assert a == ar and type(a) is type(ar)
    assert r_fast.bit_generator.state == r_ref.bit_generator.state
    return c, v, a


def _wide(rng, shape, lo=-40, hi=40):
    """float32 of random sign and magnitudes over 2^lo .. 2^hi, with +-0 sprinkled in."""
    g = rng.standard_normal(shape) * np.exp2(rng.uniform(lo, hi, shape))
    g = g.astype(np.float32)
    z = rng.random(shape) < 0.05
    g[z] = np.where(rng.random(shape) < 0.5, np.float32(0.0), np.float32(-0.0))[z]
    return g


@pytest.mark.parametrize("shape", [(1,), (7,), (4095,), (4097,), (3, 1234), (BIG,), (2, 3, 4, 5)])
def test_matches_reference(shape):
    rng = np.random.default_rng(sum(shape))
    for bits in BITS:
        check(_wide(rng, shape), bits, seed=bits)
        check(rng.standard_normal(shape).astype(np.float32), bits, seed=bits + 10)


@pytest.mark.parametrize("chunk", [1000, 5000])
def test_chunks_and_blocks(monkeypatch, chunk):
    """Many chunks (and blocks of _UBLOCK) that do not divide the size, parallel build."""
    monkeypatch.setattr(_luq, "_CHUNK", chunk)
    monkeypatch.setattr(_luq, "_PAR_MIN", 0)
    rng = np.random.default_rng(chunk)
    for n in (chunk - 1, 3 * chunk + 17, 2 * _luq._UBLOCK + 1):
        check(_wide(rng, (n,)), 4, seed=n)
        check(_wide(rng, (n,), -3, 3), 8, seed=n, pre=1)


def test_thread_count_does_not_change_result(monkeypatch):
    monkeypatch.setattr(_luq, "_CHUNK", 1000)
    monkeypatch.setattr(_luq, "_PAR_MIN", 0)
    g = _wide(np.random.default_rng(3), (10_007,))
    before = numba.get_num_threads()
    outs = []
    try:
        for nt in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(nt)
            outs.append(check(g, 5, seed=4))
    finally:
        numba.set_num_threads(before)
    for x, y in zip(outs[0][:2], outs[1][:2]):
        _bits_equal(x, y)


def test_powers_of_two_times_alpha():
    """y = |g| / alpha exactly at, just below and just above every power of two
    (NumPy's float32 log2 rounds up to k just below 2^k), and at 1 and below it."""
    for bits in (3, 4, 8):
        emax = 2 ** (bits - 1) - 2
        alpha = np.float32(2.0 ** -3)          # a power of two: g = y * alpha is exact
        pk = (0x3F800000 + (np.arange(0, emax + 1) << 23)).astype(np.int64)
        yb = (pk[:, None] + np.arange(-50, 51)[None, :]).reshape(-1)
        y = yb[(yb >= 0x3F000000) & (yb <= pk[-1])].astype(np.uint32).view(np.float32)
        g = y * alpha
        g[::2] *= -1
        g = np.concatenate([g, [np.float32(2.0 ** emax) * alpha, np.float32(-0.0),
                                np.float32(0.0), alpha, -alpha]])
        for seed in range(3):
            check(g, bits, seed)


def test_zero_empty_scalar_and_layouts():
    for g in (np.zeros(0, np.float32), np.zeros((3, 0), np.float32),
              np.array([0.0, -0.0, 0.0], np.float32), np.float32(-0.0)):
        rng = np.random.default_rng(1)
        st = rng.bit_generator.state
        check(g, 4, seed=1)
        c, v, a = luq.log_quantize(g, 4, rng)
        if not np.any(g):
            assert a == 0.0 and rng.bit_generator.state == st     # nothing drawn
    with pytest.raises(TypeError):      # the reference's 0-d failure, kept
        luq.log_quantize(np.float32(-2.5), 4, np.random.default_rng(1))
    x = _wide(np.random.default_rng(2), (40, 30))
    check(x.T, 4)                       # drawn in the C order of the transposed shape
    check(x[::3, 1::2], 6)
    check(x.astype(np.float64) * 1.0000001, 4)   # float64 in: rounded to float32 first
    check(list(x[0]), 4)


def test_subnormal_alpha_and_inputs():
    """alpha below float32's normal range (bits 8: gmax < 1) rounds in float32, so y can
    pass 2^emax; subnormal g and alpha; the smallest gmax whose alpha still rounds up."""
    rng = np.random.default_rng(7)
    check(_wide(rng, (3000,), -30, -2), 8, seed=1)      # alpha subnormal
    check(_wide(rng, (3000,), -140, -130), 4, seed=2)   # subnormal g, subnormal alpha
    for gmax in (1.4 * 2.0 ** -23, 1.5 * 2.0 ** -23, 1.6 * 2.0 ** -23):
        g = np.array([gmax, -gmax / 3, gmax / 1.7, 2.0 ** -40], np.float32)
        check(g, 8, seed=4)


@pytest.mark.parametrize("g, bits", [
    ((np.random.default_rng(3).standard_normal(3000) * 1e-30).astype(np.float32), 8),
    (np.array([2.0 ** -24, -2.0 ** -26, 0.0], np.float32), 8),    # alpha 2^-150 -> 0
    (np.array([3e-44, 0.0, -1e-45, 0.0], np.float32), 4),          # a gradient that vanished
])
def test_an_alpha_that_underflows_to_zero_is_a_divergence(g, bits):
    """alpha = max|g| / 2^emax that rounds to 0 in float32: the released quantizer divides
    by it (its gradient becomes NaN); both paths raise NonFiniteError, which a training
    run reports as diverged."""
    for f in (luq.log_quantize, luq.log_quantize_ref):
        with pytest.raises(NonFiniteError, match="alpha = max.g. / 2.* underflows to 0"):
            f(g, bits, np.random.default_rng(0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_raises_without_drawing(bad):
    g = np.ones(BIG, np.float32)
    g[BIG // 2] = bad
    for f in (luq.log_quantize, luq.log_quantize_ref):
        rng = np.random.default_rng(0)
        st = rng.bit_generator.state
        with pytest.raises(NonFiniteError, match="log_quantize: input contains NaN or inf"):
            f(g, 4, rng)
        assert rng.bit_generator.state == st


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # bits 9: the reference overflows
def test_other_generators_and_bits_take_the_reference(monkeypatch):
    g = _wide(np.random.default_rng(8), (500,))
    for make in (lambda: np.random.Generator(np.random.MT19937(3)),
                 lambda: np.random.Generator(np.random.PCG64DXSM(3))):
        r1, r2 = make(), make()
        out, ref = luq.log_quantize(g, 4, r1), luq.log_quantize_ref(g, 4, r2)
        _bits_equal(out[0], ref[0])
        _bits_equal(out[1], ref[1])
        _bits_equal(r1.random(5, dtype=np.float32), r2.random(5, dtype=np.float32))
        _bits_equal(r1.random(5), r2.random(5))
    check(g, np.int64(4))               # NumPy-integer bits: the reference's float64 codes
    check(g * np.float32(2.0 ** 80), 9)   # alpha = max|g| / 2^254 representable
    monkeypatch.setattr(_luq, "log2_table", lambda: None)   # a log2 of another shape
    check(g, 4)
    with pytest.raises(ValueError, match="Generator"):
        luq.log_quantize(g, 4, None)


def _floor_log2_cases():
    """uint32 bit patterns: a band around every power of two up to FLT_MAX, then every
    float32 in [1, 2^8) in slices (a sample without the JIT)."""
    w = 64 if NOJIT else 1 << 14
    pk = 0x3F800000 + (np.arange(1, 129, dtype=np.int64) << 23)
    band = (pk[:, None] + np.arange(-w, w)[None, :]).reshape(-1)
    yield band[band < 0x7F800000].astype(np.uint32)
    step = 997 if NOJIT else 1
    for b0 in range(0x3F800000, 0x43800000, 1 << 22):
        yield np.arange(b0, b0 + (1 << 22), step, dtype=np.uint32)


def test_floor_log2_matches_numpy():
    """The kernel's exponent (float32 exponent, corrected where NumPy's log2 rounds up
    to the next integer) is floor(np.log2(y)) for every case, as is the table alone."""
    thr, mlim = _luq.log2_table()
    for yb in _floor_log2_cases():
        want = np.log2(yb.view(np.float32))
        np.floor(want, out=want)
        for lim in (mlim, np.uint32(0)):
            got = _luq.floor_log2_bits(yb, thr, lim)
            bad = np.nonzero(got != want)[0]
            assert bad.size == 0, (yb[bad[:5]].view(np.float32), got[bad[:5]], want[bad[:5]])


def test_exp2_table_is_numpys():
    k = np.arange(-1, 127, dtype=np.float32)
    _bits_equal(_luq.EXP2, np.exp2(k))
    assert _luq.log2_table() is not None     # the fast path runs here
