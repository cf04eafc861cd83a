"""intsim.kernels.intmm: every mode bit for bit against plain int64 / pure-Python references."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intsim.kernels.intmm import Audit, int_matmul, matmul_acc, matmul_acc_km

MODES = ("wide", "clamp", "saturate", "wrap")


def ref_tiled(a, b, tile, mode, acc_bits):
    """int64 NumPy reference: loop over tiles, exact tile sums, then the mode's rule."""
    a = a.astype(np.int64)
    b = b.astype(np.int64)
    K = a.shape[-1]
    T = K if tile is None else tile
    L = (1 << (acc_bits - 1)) - 1 if acc_bits else None
    out = 0
    tiles = sat = mx = 0
    for t0 in range(0, K, T):
        P = a[..., t0:t0 + T] @ b[..., t0:t0 + T, :]
        tiles += P.size
        mx = max(mx, int(np.abs(P).max()))
        if L is not None:
            lo = -L - 1 if mode == "wrap" else -L      # two's complement holds -2^(b-1)
            sat += int(np.count_nonzero((P > L) | (P < lo)))
        if mode == "clamp" and L is not None:
            P = np.clip(P, -L, L)
        elif mode == "wrap" and L is not None:
            P = (P + L + 1) % (2 * (L + 1)) - (L + 1)
        out = out + P
    return out, (tiles, sat, mx)


def _broadcast_int(a, b, tile, acc_bits):
    """The references' common set-up: int64 operands broadcast over their batch axes,
    (a, b, batch, M, K, N, tile T, limit L)."""
    a = a.astype(np.int64)
    b = b.astype(np.int64)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    M, K = a.shape[-2:]
    N = b.shape[-1]
    T = K if tile is None else tile
    L = (1 << (acc_bits - 1)) - 1
    return a, b, batch, M, K, N, T, L


def ref_saturate(a, b, tile, acc_bits):
    """Pure-Python saturating accumulator over increasing k within each tile."""
    a, b, batch, M, K, N, T, L = _broadcast_int(a, b, tile, acc_bits)
    out = np.zeros(batch + (M, N), np.int64)
    tiles = sat = mx = 0
    for idx in np.ndindex(*batch):
        for i in range(M):
            for j in range(N):
                total = 0
                for t0 in range(0, K, T):
                    acc = 0
                    exact = 0
                    hit = False
                    for k in range(t0, min(t0 + T, K)):
                        p = int(a[idx + (i, k)]) * int(b[idx + (k, j)])
                        exact += p
                        acc += p
                        if acc > L:
                            acc, hit = L, True
                        elif acc < -L:
                            acc, hit = -L, True
                    total += acc
                    tiles += 1
                    sat += hit
                    mx = max(mx, abs(exact))
                out[idx + (i, j)] = total
    return out, (tiles, sat, mx)


def reference(a, b, tile, mode, acc_bits):
    if mode == "saturate" and acc_bits is not None:
        return ref_saturate(a, b, tile, acc_bits)
    return ref_tiled(a, b, tile, mode, acc_bits)


def check(a, b, tile, mode, acc_bits):
    au = Audit()
    got = int_matmul(a, b, acc_bits=acc_bits, tile=tile, mode=mode, audit=au)
    want, (tiles, sat, mx) = reference(a, b, tile, mode, acc_bits)
    assert got.dtype == np.int64
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert (au.tiles, au.saturated, au.max_abs) == (tiles, sat, mx)
    # the float32 engine entry point agrees, and its result dtype is exact
    au2 = Audit()
    f = matmul_acc(a.astype(np.float32), b.astype(np.float32), acc_bits=acc_bits, tile=tile,
                   mode=mode, audit=au2)
    assert f.dtype in (np.float32, np.float64, np.int64)
    np.testing.assert_array_equal(f.astype(np.int64), want)
    assert au2.as_dict() == au.as_dict()


@settings(max_examples=40, deadline=None)
@given(M=st.integers(1, 6), K=st.integers(1, 80), N=st.integers(1, 6),
       tile=st.sampled_from([1, 3, 8, 32, None]), mode=st.sampled_from(MODES),
       acc_bits=st.sampled_from([2, 4, 8, 12]), bits=st.sampled_from([2, 4, 8]),
       seed=st.integers(0, 2**31 - 1))
def test_random_shapes_all_modes(M, K, N, tile, mode, acc_bits, bits, seed):
    rng = np.random.default_rng(seed)
    hi = 1 << (bits - 1)
    a = rng.integers(-hi + 1, hi, (M, K), dtype=np.int8 if bits < 8 else np.int16)
    b = rng.integers(-hi + 1, hi, (K, N))
    check(a, b, tile, mode, acc_bits)


@pytest.mark.parametrize("mode", MODES)
def test_batched_a_and_b(mode):
    rng = np.random.default_rng(1)
    a = rng.integers(-7, 8, (2, 3, 4, 45))
    b2 = rng.integers(-7, 8, (45, 5))
    b4 = rng.integers(-7, 8, (3, 45, 5))  # broadcasts against a's batch dims
    check(a, b2, 16, mode, 8)
    check(a, b4, 16, mode, 8)


@pytest.mark.parametrize("mode", ["wide", "clamp", "wrap"])
def test_large_values_need_float64(mode):
    # |a|,|b| up to 2^15 with a 32-wide tile: float32 cannot be exact, float64 must be used
    rng = np.random.default_rng(2)
    a = rng.integers(-32768, 32768, (4, 70))
    b = rng.integers(-32768, 32768, (70, 3))
    check(a, b, 32, mode, 32)
    check(a, b, None, mode, 20)


def test_saturate_large_values():
    rng = np.random.default_rng(3)
    a = rng.integers(-32768, 32768, (3, 20))
    b = rng.integers(-32768, 32768, (20, 2))
    check(a, b, 7, "saturate", 32)
    check(a, b, 7, "saturate", 16)


def test_fast_path_size_matches_reference():
    # big enough to exercise blocked / parallel paths
    rng = np.random.default_rng(4)
    a = rng.integers(-7, 8, (300, 200), dtype=np.int8)
    b = rng.integers(-7, 8, (200, 40), dtype=np.int8)
    for mode in ("wide", "clamp", "wrap"):
        au = Audit()
        got = int_matmul(a, b, mode=mode, audit=au)
        want, counts = ref_tiled(a, b, 32, mode, 8)
        np.testing.assert_array_equal(got, want)
        assert (au.tiles, au.saturated, au.max_abs) == counts


@pytest.mark.parametrize("mode", ["wide", "clamp", "wrap"])
@pytest.mark.parametrize("K,tile", [(576, 32), (610, 32), (97, 8), (64, 32), (130, 13)])
@pytest.mark.parametrize("vmax", [7, 15, 120])
def test_narrow_output_path_packed_and_not(mode, K, tile, vmax):
    # outputs of >= 2^14 elements and N < 256: the row-blocked batched path; at
    # small values two tile sums are packed into one float (even and odd tile
    # counts, partial last tiles), at vmax 120 they cannot be
    rng = np.random.default_rng(K + tile + vmax)
    a = rng.integers(-vmax, vmax + 1, (700, K)).astype(np.int16)
    b = rng.integers(-vmax, vmax + 1, (K, 24)).astype(np.int16)
    for acc_bits in (6, 10):
        au = Audit()
        got = int_matmul(a, b, acc_bits=acc_bits, tile=tile, mode=mode, audit=au)
        want, counts = ref_tiled(a, b, tile, mode, acc_bits)
        np.testing.assert_array_equal(got, want)
        assert (au.tiles, au.saturated, au.max_abs) == counts
        f = matmul_acc(a.astype(np.float32), b.astype(np.float32), acc_bits=acc_bits,
                       tile=tile, mode=mode, a_max=vmax, b_max=vmax)
        np.testing.assert_array_equal(f.astype(np.int64), want)


def test_pack_scale_fits_exactly():
    from intsim.kernels._mm import pack_scale
    # 4-bit signed operands, tile 32: |tile sum| <= 1568 packs with S = 4096
    assert pack_scale(32 * 7 * 7, np.float32) == 4096.0
    # unsigned 4-bit activations: 3360 * (8192 + 1) >= 2^24, no packing in float32
    assert pack_scale(32 * 15 * 7, np.float32) == 0.0
    assert pack_scale(32 * 15 * 7, np.float64) == 8192.0
    for pmax in (0, 1, 5, 1000, 2895, 2896, 4000):
        S = pack_scale(pmax, np.float32)
        if S:
            assert S > 2 * pmax and pmax * (S + 1) < 2 ** 24


def test_saturate_rare_clips_are_counted():
    # mostly tiny values with rare +-7 outliers: few tiles clip at acc 6, so the
    # additions' order and the counts matter
    rng = np.random.default_rng(0)
    a = rng.integers(-1, 2, (40, 75))
    a[rng.random((40, 75)) < 0.03] = 7
    b = rng.integers(-1, 2, (75, 9))
    b[rng.random((75, 9)) < 0.05] = -7
    check(a, b, 16, "saturate", 6)
    au = Audit()
    int_matmul(a, b, tile=16, mode="saturate", acc_bits=6, audit=au)
    assert 0 < au.saturated < 0.1 * au.tiles


def test_saturate_fast_size_matches_tiled_reference_when_no_overflow():
    # with a wide accumulator saturate equals the exact product
    rng = np.random.default_rng(5)
    a = rng.integers(-7, 8, (200, 100), dtype=np.int8)
    b = rng.integers(-7, 8, (100, 30), dtype=np.int8)
    np.testing.assert_array_equal(int_matmul(a, b, mode="saturate", acc_bits=16),
                                  a.astype(np.int64) @ b)


def test_acc_none_is_wide_and_tile_none_is_one_tile():
    rng = np.random.default_rng(6)
    a = rng.integers(-7, 8, (5, 50))
    b = rng.integers(-7, 8, (50, 4))
    for mode in MODES:
        np.testing.assert_array_equal(int_matmul(a, b, acc_bits=None, mode=mode), a @ b)
    np.testing.assert_array_equal(int_matmul(a, b, tile=None, acc_bits=8),
                                  np.clip(a @ b, -127, 127))


def test_float32_result_dtype_when_provably_exact():
    a = np.full((2, 64), 7, np.float32)
    b = np.full((64, 2), 7, np.float32)
    r = matmul_acc(a, b, tile=32, acc_bits=8)
    assert r.dtype == np.float32
    np.testing.assert_array_equal(r, np.full((2, 2), 254, np.float32))


def test_empty_and_zero():
    a = np.zeros((3, 0), np.int8)
    b = np.zeros((0, 2), np.int8)
    au = Audit()
    r = int_matmul(a, b, audit=au)
    assert r.shape == (3, 2) and not r.any() and au.tiles == 0
    z = int_matmul(np.zeros((2, 5), np.int8), np.zeros((5, 3), np.int8), audit=au)
    assert not z.any() and au.tiles == 6 and au.saturated == 0 and au.max_abs == 0


def test_audit_methods():
    a = Audit(tiles=10, saturated=2, max_abs=300)
    b = Audit(tiles=5, saturated=3, max_abs=100)
    a.add(b)
    assert a.as_dict() == {"tiles": 15, "saturated": 5, "max_abs": 300, "frac": 5 / 15}
    a.add({"tiles": 5, "saturated": 0, "max_abs": 400})
    assert (a.tiles, a.saturated, a.max_abs) == (20, 5, 400)
    assert a.frac == 0.25
    a.reset()
    assert a.as_dict() == {"tiles": 0, "saturated": 0, "max_abs": 0, "frac": 0.0}
    with pytest.raises(ValueError):
        a.add(3)


def test_errors():
    a = np.ones((2, 3), np.int8)
    b = np.ones((3, 4), np.int8)
    with pytest.raises(ValueError, match="integer"):
        int_matmul(a.astype(np.float32), b)
    with pytest.raises(ValueError, match="integer"):
        int_matmul(a, b.astype(bool))
    with pytest.raises(ValueError, match="shape mismatch"):
        int_matmul(a, np.ones((4, 4), np.int8))
    with pytest.raises(ValueError, match="dimensions"):
        int_matmul(np.ones(3, np.int8), b)
    with pytest.raises(ValueError, match="broadcast"):
        int_matmul(np.ones((2, 2, 3), np.int8), np.ones((3, 3, 4), np.int8))
    with pytest.raises(ValueError, match="int16"):
        int_matmul(a.astype(np.int32) * 40000, b)
    with pytest.raises(ValueError, match="mode"):
        int_matmul(a, b, mode="round")
    for t in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="tile"):
            int_matmul(a, b, tile=t)
    for acc in (1, 33, 8.0):
        with pytest.raises(ValueError, match="acc_bits"):
            int_matmul(a, b, acc_bits=acc)
    with pytest.raises(ValueError, match="audit"):
        int_matmul(a, b, audit={})
    with pytest.raises(ValueError, match="shape mismatch"):
        matmul_acc(np.ones((2, 3), np.float32), np.ones((4, 4), np.float32))


def test_a_16_bit_accumulator_is_real():
    """acc_bits=16 clamps at 2^15 - 1 (it once meant "no limit"); None does not clamp."""
    a = np.full((1, 5000), 7.0, np.float32)
    b = np.full((5000, 1), 7.0, np.float32)
    au = Audit()
    out = matmul_acc(a, b, acc_bits=16, tile=None, mode="clamp", audit=au, a_max=7, b_max=7)
    assert out[0, 0] == 2 ** 15 - 1 and au.saturated == 1 and au.max_abs == 245000
    wide = matmul_acc(a, b, acc_bits=None, tile=None, audit=Audit(), a_max=7, b_max=7)
    assert wide[0, 0] == 245000


@pytest.mark.parametrize("shape", [(5, 24, 4), (300, 64, 40), (700, 96, 24), (40, 64, 300)])
def test_wrap_counts_only_sums_outside_twos_complement_range(shape):
    # Operands in {-1, 0} x {0, 1} (mostly nonzero), tiles of 12: tile sums in
    # [-12, 0], so with 4-bit accumulators many are exactly -8 = -2^(4-1). Two's complement
    # holds -8, so wrap does not count it; clamp (range +-7) does. Every
    # kernel path (small, blocked, packed, wide-N) against the reference.
    M, K, N = shape
    rng = np.random.default_rng(M + K + N)
    a = -(rng.random((M, K)) < 0.8).astype(np.int8)
    b = (rng.random((K, N)) < 0.8).astype(np.int8)
    ex = np.concatenate([(a[:, t:t + 12].astype(np.int64) @ b[t:t + 12].astype(np.int64)).ravel()
                         for t in range(0, K, 12)])
    at_min = int(np.count_nonzero(ex == -8))
    below = int(np.count_nonzero(ex < -8))
    assert at_min > 0 and below > 0
    counts = {}
    for mode in ("clamp", "wrap"):
        au = Audit()
        got = matmul_acc(a.astype(np.float32), b.astype(np.float32), acc_bits=4, tile=12,
                         mode=mode, audit=au)
        want, (tiles, sat, mx) = ref_tiled(a, b, 12, mode, 4)
        np.testing.assert_array_equal(got.astype(np.int64), want)
        assert (au.tiles, au.saturated, au.max_abs) == (tiles, sat, mx)
        counts[mode] = au.saturated
    assert counts["clamp"] == at_min + below
    assert counts["wrap"] == below


def test_wrap_count_km_matches_row_major():
    # the K-major conv weight-gradient kernel counts like matmul_acc
    rng = np.random.default_rng(9)
    K, S, M, N = 6, 3, 40, 5
    x = -(rng.random((K, S, M)) < 0.8).astype(np.float32)
    g = (rng.random((N, S, M)) < 0.8).astype(np.float32)
    for mode in ("clamp", "wrap"):
        au_km, au = Audit(), Audit()
        got = matmul_acc_km(x, g, acc_bits=4, tile=12, mode=mode, audit=au_km, a_max=1, b_max=1)
        want = matmul_acc(x.transpose(1, 0, 2), g.transpose(1, 2, 0), acc_bits=4, tile=12,
                          mode=mode, audit=au)
        np.testing.assert_array_equal(got, want)
        assert au_km.as_dict() == au.as_dict()
        assert au.saturated > 0


# --- saturate: the kernel against the additions one at a time ----------------------

def ref_saturate_np(a, b, tile, acc_bits):
    """NumPy saturating accumulator: one addition at a time over k within each tile,
    every output element at once (ref_saturate's rule, for sizes too large for it)."""
    a, b, batch, M, K, N, T, L = _broadcast_int(a, b, tile, acc_bits)
    out = np.zeros(batch + (M, N), np.int64)
    tiles = sat = mx = 0
    for t0 in range(0, K, T):
        acc = np.zeros_like(out)
        exact = np.zeros_like(out)
        hit = np.zeros(out.shape, bool)
        for k in range(t0, min(t0 + T, K)):
            p = a[..., :, k:k + 1] * b[..., k:k + 1, :]
            exact += p
            s = acc + p
            hit |= (s > L) | (s < -L)
            acc = np.clip(s, -L, L)
        out += acc
        tiles += out.size
        sat += int(np.count_nonzero(hit))
        mx = max(mx, int(np.abs(exact).max()))
    return out, (tiles, sat, mx)


def check_saturate(a, b, tile, acc_bits, ref=ref_saturate_np):
    """int_matmul and the float32 entry point, with and without an audit, against ``ref``."""
    want, counts = ref(a, b, tile, acc_bits)
    au = Audit()
    got = int_matmul(a, b, acc_bits=acc_bits, tile=tile, mode="saturate", audit=au)
    np.testing.assert_array_equal(got, want)
    assert (au.tiles, au.saturated, au.max_abs) == counts
    np.testing.assert_array_equal(int_matmul(a, b, acc_bits=acc_bits, tile=tile,
                                             mode="saturate"), want)
    au2 = Audit()
    f = matmul_acc(a.astype(np.float32), b.astype(np.float32), acc_bits=acc_bits, tile=tile,
                   mode="saturate", audit=au2)
    np.testing.assert_array_equal(f.astype(np.int64), want)
    assert au2.as_dict() == au.as_dict()
    return au


def test_numpy_saturate_reference_matches_the_python_one():
    rng = np.random.default_rng(11)
    for shape, tile, acc_bits in (((3, 40, 5), 8, 6), ((2, 33, 4), None, 8), ((4, 9, 3), 1, 2)):
        M, K, N = shape
        a = rng.integers(-7, 8, (M, K))
        b = rng.integers(-7, 8, (K, N))
        want, counts = ref_saturate(a, b, tile, acc_bits)
        got, got_counts = ref_saturate_np(a, b, tile, acc_bits)
        np.testing.assert_array_equal(got, want)
        assert got_counts == counts and counts[1] > 0


@settings(max_examples=25, deadline=None)
@given(M=st.integers(1, 8), K=st.integers(1, 70), N=st.integers(1, 72),
       tile=st.sampled_from([1, 3, 8, 16, 32, None]), acc_bits=st.sampled_from([2, 4, 6, 8]),
       bits=st.sampled_from([2, 4, 8]), extreme=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_saturate_random_shapes(M, K, N, tile, acc_bits, bits, extreme, seed):
    # N from 1 to 72: narrow outputs (computed as b^T a^T when a has more rows), a
    # partial last block of 32 lanes, and outputs of 64 columns and more
    rng = np.random.default_rng(seed)
    q = (1 << (bits - 1)) - 1
    if extreme:
        a = q * rng.choice([-1, 1], (M, K))
        b = q * rng.choice([-1, 1], (K, N))
    else:
        a = rng.integers(-q, q + 1, (M, K))
        b = rng.integers(-q, q + 1, (K, N))
    check_saturate(a, b, tile, acc_bits)


@pytest.mark.parametrize("shape", [(5, 37, 70), (70, 37, 5), (4, 37, 4)])
@pytest.mark.parametrize("acc_bits", [4, 8])
def test_saturate_operands_at_qmax(shape, acc_bits):
    # every operand at +-7 (random signs, then all +7): almost every tile clips, the
    # last tile of 37 = 4 * 8 + 5 is partial
    M, K, N = shape
    rng = np.random.default_rng(M * K + N)
    a = 7 * rng.choice([-1, 1], (M, K))
    b = 7 * rng.choice([-1, 1], (K, N))
    au = check_saturate(a, b, 8, acc_bits)
    assert au.saturated > 0.5 * au.tiles
    au = check_saturate(np.full((M, K), 7), np.full((K, N), 7), 8, acc_bits)
    assert au.saturated == au.tiles


@pytest.mark.parametrize("swap_below", [0, 10 ** 9])
def test_saturate_both_operand_orders(swap_below, monkeypatch):
    # out = a b or (b^T a^T)^T: the same additions in the same order
    import intsim.kernels._mm as km
    monkeypatch.setattr(km, "_SAT_MIN_LANES", swap_below)
    rng = np.random.default_rng(12)
    for M, K, N in ((30, 45, 7), (7, 45, 30), (3, 20, 600)):
        a = rng.integers(-7, 8, (M, K)) * (rng.random((M, K)) < 0.7)
        b = rng.integers(-7, 8, (K, N))
        check_saturate(a, b, 16, 6)


def test_saturate_batches_and_strided_operands():
    rng = np.random.default_rng(13)
    a = rng.integers(-7, 8, (2, 3, 4, 45))
    for b in (rng.integers(-7, 8, (3, 45, 70)), rng.integers(-7, 8, (45, 70)),
              rng.integers(-7, 8, (1, 45, 5))):
        check_saturate(a, b, 16, 8)
    check_saturate(a[0, 0], rng.integers(-7, 8, (2, 45, 6)), 16, 8)   # a broadcast
    # transposed views (not C-contiguous), as the engine passes them
    A = rng.integers(-7, 8, (50, 9))
    B = rng.integers(-7, 8, (70, 50))
    check_saturate(A.T, B.T, 16, 6)


def test_saturate_km_entry_point():
    # the K-major weight gradient's products go through the same kernel
    rng = np.random.default_rng(14)
    for K, S, M, N in ((6, 3, 40, 5), (3, 2, 40, 70)):
        x = rng.integers(-7, 8, (K, S, M)).astype(np.float32)
        g = rng.integers(-7, 8, (N, S, M)).astype(np.float32)
        au = Audit()
        got = matmul_acc_km(x, g, acc_bits=6, tile=16, mode="saturate", audit=au,
                            a_max=7, b_max=7)
        want, counts = ref_saturate_np(x.transpose(1, 0, 2), g.transpose(1, 2, 0), 16, 6)
        np.testing.assert_array_equal(got.astype(np.int64), want)
        assert (au.tiles, au.saturated, au.max_abs) == counts and counts[1] > 0


def test_saturate_exact_sums_beyond_int16():
    # one tile of 700 at 8-bit accumulators: the running sums fit int16 lanes, but rows
    # of 7s have exact sums of 34300 (> 2^15), which take int64 lanes; the other rows
    # stay in int16 in the same call
    rng = np.random.default_rng(15)
    a = rng.integers(-2, 3, (3, 700))
    a[0] = 7
    b = rng.integers(-7, 8, (700, 5))
    b[:, 2] = 7
    au = check_saturate(a, b, None, 8)
    assert au.max_abs == 34300
    check_saturate(b.T.copy(), a.T.copy(), None, 8)


@pytest.mark.parametrize("acc_bits", [12, 16])
def test_saturate_wider_lanes(acc_bits):
    # L + max|a*b| beyond int16 (acc 16): int32 lanes; acc 12 stays in int16
    rng = np.random.default_rng(acc_bits)
    a = rng.integers(-127, 128, (6, 50))
    b = rng.integers(-127, 128, (50, 66))
    au = check_saturate(a, b, 16, acc_bits)
    assert au.saturated > 0


def test_saturate_thread_count_does_not_change_bits():
    import numba
    rng = np.random.default_rng(16)
    a = rng.integers(-7, 8, (24, 30))
    b = rng.integers(-7, 8, (30, 600))     # two blocks of columns, several tasks
    want, counts = ref_saturate_np(a, b, 8, 6)
    n0 = numba.get_num_threads()
    try:
        for n in sorted({1, 2, n0}):
            if n > numba.config.NUMBA_NUM_THREADS:
                continue
            numba.set_num_threads(n)
            au = Audit()
            got = int_matmul(a, b, acc_bits=6, tile=8, mode="saturate", audit=au)
            np.testing.assert_array_equal(got, want)
            assert (au.tiles, au.saturated, au.max_abs) == counts
    finally:
        numba.set_num_threads(n0)


@pytest.mark.parametrize("mode", ["wide", "clamp", "wrap"])
@pytest.mark.parametrize("M,K,N,tile", [(128, 561, 561, 32), (700, 97, 24, 8), (33, 130, 300, 13),
                                        (16, 64, 1100, 32), (40, 70, 600, 32)])
def test_row_blocks_in_parallel_match_the_reference_at_each_thread_count(mode, M, K, N, tile):
    """With two or more threads, blocks of rows run in Python threads, each on its own BLAS
    products (NumPy's OpenBLAS at one thread meanwhile); one thread takes the serial
    paths: the same bits and counts."""
    import numba

    from intsim.kernels import _mm
    rng = np.random.default_rng(M + K + N + tile)
    a = rng.integers(-7, 8, (M, K)).astype(np.int8)
    b = rng.integers(-8, 8, (K, N)).astype(np.int8)
    want, counts = ref_tiled(a, b, tile, mode, 8)
    n0 = numba.get_num_threads()
    try:
        for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n)
            au = Audit()
            got = int_matmul(a, b, acc_bits=8, tile=tile, mode=mode, audit=au)
            np.testing.assert_array_equal(got, want)
            assert (au.tiles, au.saturated, au.max_abs) == counts
    finally:
        numba.set_num_threads(n0)
    # the threaded path itself, also in three blocks and on float64 operands; NumPy's
    # OpenBLAS count is back where it was afterwards
    from intsim.kernels.threads import openblas_threads
    code = {"wide": 0, "clamp": 1, "wrap": 2}[mode]
    blas = openblas_threads()
    for dt, threads in ((np.float32, 2), (np.float64, 3)):
        out = np.empty((M, N), np.float64)
        nsat, mx = _mm.threaded_row_tiles(a.astype(dt), b.astype(dt), tile, 127.0, 128, code,
                                          True, out, threads)
        np.testing.assert_array_equal(out, want)
        assert (nsat, mx) == counts[1:]
    assert openblas_threads() == blas
