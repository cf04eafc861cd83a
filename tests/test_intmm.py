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


def ref_saturate(a, b, tile, acc_bits):
    """Pure-Python saturating accumulator over increasing k within each tile."""
    a = a.astype(np.int64)
    b = b.astype(np.int64)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    M, K = a.shape[-2:]
    N = b.shape[-1]
    T = K if tile is None else tile
    L = (1 << (acc_bits - 1)) - 1
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


@pytest.mark.parametrize("acc_bits", [4, 7, 10])
def test_saturate_replay_path_and_fallback(acc_bits, monkeypatch):
    # 2-D b: BLAS tile sums decide which tiles can clip; only those are replayed
    # (acc 7 and 10 here); with too many such tiles (acc 4) the replay-everything
    # kernel runs. Both must match the pure-Python saturating accumulator.
    import intsim.kernels._mm as km
    calls = []
    orig = km._saturate_risky

    def spy(*args):
        calls.append(1)
        return orig(*args)
    monkeypatch.setattr(km, "_saturate_risky", spy)
    rng = np.random.default_rng(acc_bits)
    a = rng.integers(-3, 4, (40, 75)) * (rng.random((40, 75)) < 0.6)
    b = rng.integers(-3, 4, (75, 9))
    check(a, b, 16, "saturate", acc_bits)
    assert bool(calls) == (acc_bits > 4)


def test_saturate_replay_path_counts_real_clips():
    # mostly tiny values with rare +-7 outliers: few tiles can clip (replay path) and
    # some of those do clip at acc 6, so the replayed additions and the counts matter
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
