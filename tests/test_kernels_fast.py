"""The fast paths against the plain references they replace, bit for bit.

- the in-kernel PCG64 float32 stream against Generator.random (values and the
  Generator's state after, from any position of the stream);
- stochastic quantization with draws in the kernel against NumPy's draws (a
  PCG64 subclass takes the reference path), and quantize_items against
  quantize_f32 of the transposed array;
- the K-major im2col/col2im against the per-image ones;
- the few-rows tiled matmul and the K-major per-image products against the
  int64 reference of test_intmm (values and audit counters, every mode).
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intsim.kernels import _rng as kr
from intsim.kernels import intmm, quant
from intsim.kernels.intmm import Audit
from intsim.kernels.im2col import col2im, col2im_km, im2col, im2col_km

from test_intmm import ref_tiled


class RefPCG64(np.random.PCG64):
    """Same stream as PCG64, but not the exact type: intsim draws it through NumPy."""


def ref_rng(seed):
    return np.random.Generator(RefPCG64(seed))


def pos(rng):
    """A Generator's position in its stream (its state without the class name)."""
    st = dict(rng.bit_generator.state)
    st.pop("bit_generator")
    return st


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), pre=st.integers(0, 5), n=st.integers(0, 70000))
def test_stream_matches_numpy(seed, pre, n):
    a = np.random.default_rng(seed)
    b = np.random.default_rng(seed)
    a.random(pre, dtype=np.float32)
    b.random(pre, dtype=np.float32)
    x = a.random(n, dtype=np.float32)
    y = kr.random_f32(b, n)
    assert np.array_equal(x.view(np.uint32), y.view(np.uint32))
    assert a.bit_generator.state == b.bit_generator.state
    assert np.array_equal(a.random(3), b.random(3))


def test_stream_jump_ahead_reference():
    """The Numba jump-ahead agrees with the Python-int one and with stepping."""
    s, inc = (7 << 100) + 12345, (3 << 90) | 1
    t = s
    for _ in range(37):
        t = (t * kr.MULT + inc) & ((1 << 128) - 1)
    assert kr.python_advance(s, inc, 37) == t
    hi, lo = kr._advance(np.uint64(s >> 64), np.uint64(s & (2**64 - 1)),
                         np.uint64(inc >> 64), np.uint64(inc & (2**64 - 1)), np.uint64(37))
    assert (int(hi) << 64) | int(lo) == t


def test_stream_other_bit_generators_use_numpy():
    a = np.random.Generator(np.random.Philox(3))
    b = np.random.Generator(np.random.Philox(3))
    assert np.array_equal(kr.random_f32(a, 1000), b.random(1000, dtype=np.float32))


@pytest.mark.parametrize("shape,bd", [((1000,), 0), ((3, 70001), 1), ((5, 7, 300), 1),
                                      ((2, 3, 40000), 2), ((200001,), 0)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantize_draws_in_kernel_match_numpy(shape, bd, seed):
    x = np.random.default_rng(99 + seed).standard_normal(shape).astype(np.float32)
    if bd:
        x[0] = 0      # an all-zero item still consumes its draws
    a, b = np.random.default_rng(seed), ref_rng(seed)
    a.random(seed, dtype=np.float32)
    b.random(seed, dtype=np.float32)
    qa, sa = quant.quantize_f32(x, 4, rounding="stochastic", signed=True, rng=a, batch_dims=bd)
    qb, sb = quant.quantize_f32(x, 4, rounding="stochastic", signed=True, rng=b, batch_dims=bd)
    assert np.array_equal(qa, qb) and np.array_equal(sa, sb)
    assert pos(a) == pos(b)


@settings(max_examples=40, deadline=None)
@given(A=st.integers(1, 40), S=st.integers(1, 9), M=st.integers(1, 300),
       seed=st.integers(0, 1000), rounding=st.sampled_from(["stochastic", "nearest"]),
       signed=st.sampled_from([None, True, False]), ref=st.booleans())
def test_quantize_items_matches_quantize_f32(A, S, M, seed, rounding, signed, ref):
    r = np.random.default_rng(seed)
    x = (r.standard_normal((A, S, M)) * r.choice([1e-3, 1.0, 50.0])).astype(np.float32)
    x[:, r.integers(0, S)] = 0
    mk = ref_rng if ref else np.random.default_rng
    a, b = mk(seed), ref_rng(seed)
    q1, s1 = quant.quantize_items(x, 4, rounding=rounding, signed=signed, clip=0.9, rng=a)
    q2, s2 = quant.quantize_f32(np.moveaxis(x, 1, 0), 4, rounding=rounding, signed=signed,
                                clip=0.9, rng=b, batch_dims=1)
    assert np.array_equal(q1, np.moveaxis(q2, 0, 1)) and np.array_equal(s1, s2)
    assert pos(a) == pos(b)


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 3), C=st.integers(1, 4), H=st.integers(3, 9), k=st.sampled_from([1, 3]),
       stride=st.sampled_from([1, 2]), pad=st.sampled_from([0, 1]), seed=st.integers(0, 99))
def test_im2col_kmajor_matches_per_image(B, C, H, k, stride, pad, seed):
    r = np.random.default_rng(seed)
    x = r.standard_normal((B, C, H, H + 1)).astype(np.float32)
    c_ref, hw = im2col(x, k, stride, pad)
    c_km, hw2 = im2col_km(x, k, stride, pad)
    assert hw == hw2 and np.array_equal(c_km, c_ref.transpose(1, 0, 2))
    d = r.standard_normal(c_ref.shape).astype(np.float32)
    x_ref = col2im(d, x.shape, k, stride, pad)
    x_km = col2im_km(np.ascontiguousarray(d.transpose(1, 0, 2)), x.shape, k, stride, pad)
    assert np.array_equal(x_ref, x_km)        # same float sums, same order


@settings(max_examples=40, deadline=None)
@given(R=st.integers(1, 11), K=st.integers(1, 100), J=st.integers(4096, 5000),
       tile=st.sampled_from([3, 8, 32]), mode=st.sampled_from(["wide", "clamp", "wrap"]),
       acc_bits=st.sampled_from([6, 8, 12]), seed=st.integers(0, 999))
def test_few_rows_wide_path(R, K, J, tile, mode, acc_bits, seed):
    """Few rows of a against a wide b (the K-major conv forward) in the direct kernel."""
    r = np.random.default_rng(seed)
    a = r.integers(-7, 8, (R, K))
    b = r.integers(0, 16, (K, J))
    aud = Audit()
    got = intmm.matmul_acc(a.astype(np.float32), b.astype(np.float32), acc_bits=acc_bits,
                           tile=tile, mode=mode, audit=aud)
    want, (tiles, sat, mx) = ref_tiled(a, b, tile, mode, acc_bits)
    assert np.array_equal(got, want)
    assert (aud.tiles, aud.saturated, aud.max_abs) == (tiles, sat, mx)


@settings(max_examples=40, deadline=None)
@given(K=st.integers(1, 20), S=st.integers(1, 4), M=st.integers(1, 90), N=st.integers(1, 9),
       tile=st.sampled_from([None, 5, 32]), mode=st.sampled_from(["wide", "clamp", "wrap",
                                                                  "saturate"]),
       seed=st.integers(0, 999))
def test_matmul_acc_km(K, S, M, N, tile, mode, seed):
    r = np.random.default_rng(seed)
    x = r.integers(-7, 8, (K, S, M)).astype(np.float32)
    g = r.integers(-7, 8, (N, S, M)).astype(np.float32)
    a1, a2 = Audit(), Audit()
    got = intmm.matmul_acc_km(x, g, acc_bits=8, tile=tile, mode=mode, audit=a1, a_max=7, b_max=7)
    want = intmm.matmul_acc(x.transpose(1, 0, 2), g.transpose(1, 2, 0), acc_bits=8, tile=tile,
                            mode=mode, audit=a2, a_max=7, b_max=7)
    assert got.shape == (S, K, N) and got.dtype == want.dtype
    assert np.array_equal(got, want) and a1 == a2
    if mode != "saturate":
        ref, (tiles, sat, mx) = ref_tiled(x.transpose(1, 0, 2).astype(np.int64),
                                          g.transpose(1, 2, 0).astype(np.int64), tile, mode, 8)
        assert np.array_equal(got, ref) and (a1.tiles, a1.saturated, a1.max_abs) == (tiles, sat, mx)


@settings(max_examples=60, deadline=None)
@given(nP=st.integers(1, 4), R=st.integers(1, 150), N=st.integers(1, 40),
       mode=st.sampled_from([0, 1, 2]), want=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 999))
def test_reduce_flat_planes_matches_reduce_planes(nP, R, N, mode, want, dtype, seed):
    """The unpacked tile-plane reduction of the narrow tiled path against _reduce_planes
    with S = 0 (its plain reference): the same sums, saturation count and max."""
    from intsim.kernels import _mm
    r = np.random.default_rng(seed)
    acc_bits = int(r.choice([4, 6, 8]))
    half = 1 << (acc_bits - 1)
    L = float(half - 1)
    P = r.integers(-3 * half, 3 * half + 1, (nP, R, N)).astype(dtype)
    out0 = r.integers(-1000, 1001, (R, N)).astype(dtype)
    want_out, got_out = out0.copy(), out0.copy()
    ref = _mm._reduce_planes(P, want_out, L, half, mode, want, 0.0)
    got = _mm._reduce_flat_planes(P, got_out, L, half, mode, want)
    assert np.array_equal(got_out, want_out)
    assert (int(got[0]), float(got[1])) == (int(ref[0]), float(ref[1]))


@settings(max_examples=60, deadline=None)
@given(S=st.integers(1, 40), M=st.integers(1, 20), K=st.integers(1, 20), N=st.integers(1, 20),
       tile=st.sampled_from([None, 32, 20]), mode=st.sampled_from(["wide", "clamp", "wrap"]),
       acc_bits=st.sampled_from([4, 6, 8]), layout=st.sampled_from(["CC", "CT", "TC", "B1"]),
       seed=st.integers(0, 999))
def test_batched_one_tile_path(S, M, K, N, tile, mode, acc_bits, layout, seed):
    """Batched products with one tile along K (attention's Q K^T and A V): the batched BLAS
    product clipped in place against the int64 reference, values and audit, operands
    C-contiguous, transposed views or a broadcast batch of 1."""
    r = np.random.default_rng(seed)
    a = r.integers(-7, 8, (S, M, K))
    b = r.integers(-7, 8, (1 if layout == "B1" else S, K, N))
    want, (tiles, sat, mx) = ref_tiled(a, b, tile, mode, acc_bits)
    af, bf = a.astype(np.float32), b.astype(np.float32)
    if layout[0] == "T":
        af = np.swapaxes(np.ascontiguousarray(np.swapaxes(af, -1, -2)), -1, -2)
    if layout[1:] == "T":
        bf = np.swapaxes(np.ascontiguousarray(np.swapaxes(bf, -1, -2)), -1, -2)
    aud = Audit()
    got = intmm.matmul_acc(af, bf, acc_bits=acc_bits, tile=tile, mode=mode, audit=aud,
                           a_max=7, b_max=7)
    assert got.shape == want.shape
    assert np.array_equal(got, want)
    assert (aud.tiles, aud.saturated, aud.max_abs) == (tiles, sat, mx)


def ref_quantize_items(x, bits, rounding, signed, clip, u):
    """Plain NumPy per-item quantizer (quant's module docstring), item by item: the max and
    min by NumPy reductions, the float64 scale, the float32 divide / clip / round; u the
    float32 uniforms of x's shape (stochastic)."""
    S = x.shape[0]
    xf, uf = x.reshape(S, -1), u.reshape(S, -1)
    q = np.zeros(xf.shape, np.float32)
    sc = np.zeros(S, np.float64)
    Ls = float((1 << (bits - 1)) - 1)
    for i in range(S):
        xmax, xmin = float(xf[i].max()), float(xf[i].min())
        m = clip * max(xmax, -xmin)
        sgn = xmin < 0 if signed is None else signed
        L = Ls if sgn else float((1 << bits) - 1)
        s = m / L
        if not s > 0:
            continue
        y = np.minimum(np.maximum(xf[i] / np.float32(s), np.float32(-Ls if sgn else 0.0)),
                       np.float32(L))
        q[i] = (np.minimum(np.floor(y + uf[i]), np.float32(L)) if rounding == "stochastic"
                else np.rint(y))
        sc[i] = s
    return q.reshape(x.shape), sc


@settings(max_examples=40, deadline=None)
@given(S=st.integers(1, 700), m=st.integers(1, 300), seed=st.integers(0, 999),
       rounding=st.sampled_from(["stochastic", "nearest"]),
       signed=st.sampled_from([None, True, False]), pre=st.integers(0, 3))
def test_quantize_short_items_match_reference(S, m, seed, rounding, signed, pre):
    """Many short items (attention's per-item operands; more than one _UBLOCK of draws and
    more than one task when large): values, scales and the Generator's position after,
    against the plain per-item reference with NumPy's draws. Items with zeros, -0.0,
    only negative and only positive entries."""
    r = np.random.default_rng(seed)
    x = (r.standard_normal((S, m)) * r.choice([1e-3, 1.0, 50.0])).astype(np.float32)
    x[r.integers(0, S)] = 0
    x[r.integers(0, S)] = -0.0
    x[r.integers(0, S)] = -np.abs(x[r.integers(0, S)])
    x[r.integers(0, S)] = np.abs(x[r.integers(0, S)])
    x[r.integers(0, S), 0] = -0.0
    _check_items_against_reference(x, rounding, signed, seed, pre)


def _check_items_against_reference(x, rounding, signed, seed, pre):
    """quantize_f32 of the items of x (batch_dims=1) against ref_quantize_items fed
    NumPy's draws, from two Generators of ``seed`` after ``pre`` float32 draws: the
    values, the scales and the Generators' positions after."""
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    a.random(pre, dtype=np.float32)
    b.random(pre, dtype=np.float32)
    q, s = quant.quantize_f32(x, 4, rounding=rounding, signed=signed, clip=0.975, rng=a,
                              batch_dims=1)
    u = (b.random(x.shape, dtype=np.float32) if rounding == "stochastic"
         else np.zeros(x.shape, np.float32))
    qr, sr = ref_quantize_items(x, 4, rounding, signed, 0.975, u)
    assert np.array_equal(q, qr) and np.array_equal(s, sr)
    assert pos(a) == pos(b)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_quantize_items_non_finite_raises(bad):
    x = np.ones((50, 7), np.float32)
    x[31, 3] = bad
    with pytest.raises(ValueError):
        quant.quantize_f32(x, 4, batch_dims=1)


@pytest.mark.parametrize("shape", [(2000, 77), (512, 256), (3, 70001), (4097, 1)])
@pytest.mark.parametrize("rounding", ["stochastic", "nearest"])
def test_quantize_large_short_items_match_reference(shape, rounding):
    """As test_quantize_short_items_match_reference on arrays past the parallel size and
    past a task's chunk of draws, rows crossing the chunk and buffer boundaries."""
    r = np.random.default_rng(sum(shape))
    x = r.standard_normal(shape).astype(np.float32)
    x[1] = 0
    _check_items_against_reference(x, rounding, None, 7, 1)
