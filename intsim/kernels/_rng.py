"""NumPy's PCG64 float32 uniform stream, reproduced bit for bit inside Numba kernels (private).

``rng.random(n, dtype=np.float32)`` on a ``np.random.Generator(PCG64)`` draws
float i as follows (NumPy's pcg64.h and distributions.c):
    state <- state * MULT + inc  (mod 2^128); out64 = XSL-RR(state)
    each out64 gives two uint32 draws, low half first; a leftover high half is
    kept in the generator (has_uint32 / uinteger) for the next call;
    float = (uint32 >> 8) * 2^-24  (float32).
A stream is therefore a pure function of (state, inc, has_uint32, uinteger)
and the draw's index, and an LCG can jump ahead in O(log n) steps, so a
kernel can draw any slice of the stream on any thread. ``Stream`` captures a
Generator's position; after a kernel has drawn n floats, ``consume`` moves the
Generator on exactly as ``rng.random(n, dtype=np.float32)`` would have.

128-bit products are emitted as LLVM i128 instructions (x86-64 lowers them to
three 64-bit multiplies). With NUMBA_DISABLE_JIT=1 the same functions run on
Python integers, so the kernels stay checkable without the JIT.
"""
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, types

MULT = (2549297995355413924 << 64) + 4865540595714422341   # PCG_DEFAULT_MULTIPLIER_128
_M64 = (1 << 64) - 1
_M128 = (1 << 128) - 1
U64 = np.uint64
MULT_HI = U64(MULT >> 64)
MULT_LO = U64(MULT & _M64)

if numba.config.DISABLE_JIT:
    def _mul128(ahi, alo, bhi, blo):
        r = (((int(ahi) << 64) | int(alo)) * ((int(bhi) << 64) | int(blo))) & _M128
        return U64(r >> 64), U64(r & _M64)

    def _add128(ahi, alo, bhi, blo):
        r = (((int(ahi) << 64) | int(alo)) + ((int(bhi) << 64) | int(blo))) & _M128
        return U64(r >> 64), U64(r & _M64)
else:
    from llvmlite import ir
    from numba.extending import intrinsic

    def _i128(builder, hi, lo):
        t = ir.IntType(128)
        return builder.or_(builder.shl(builder.zext(hi, t), ir.Constant(t, 64)),
                           builder.zext(lo, t))

    def _split(context, builder, sig, r):
        i64 = ir.IntType(64)
        hi = builder.trunc(builder.lshr(r, ir.Constant(ir.IntType(128), 64)), i64)
        return context.make_tuple(builder, sig.return_type, [hi, builder.trunc(r, i64)])

    def _binop128(op):
        @intrinsic
        def fn(typingctx, ahi, alo, bhi, blo):
            sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64,
                                                  types.uint64, types.uint64)

            def codegen(context, builder, signature, args):
                a = _i128(builder, args[0], args[1])
                b = _i128(builder, args[2], args[3])
                return _split(context, builder, signature, getattr(builder, op)(a, b))
            return sig, codegen
        return fn

    _mul128 = _binop128("mul")
    _add128 = _binop128("add")


@njit(inline="always")
def _step(shi, slo, ihi, ilo):
    """One LCG step: state * MULT + inc (mod 2^128)."""
    mhi, mlo = _mul128(shi, slo, MULT_HI, MULT_LO)
    return _add128(mhi, mlo, ihi, ilo)


@njit(inline="always")
def _output(shi, slo):
    """PCG's XSL-RR output function of a 128-bit state -> uint64."""
    x = shi ^ slo
    r = shi >> U64(58)
    return (x >> r) | (x << ((U64(64) - r) & U64(63)))


@njit
def _advance(shi, slo, ihi, ilo, delta):
    """The state after ``delta`` (uint64) LCG steps (Brown's jump-ahead)."""
    ahi, alo = U64(0), U64(1)          # accumulated multiplier
    phi, plo = U64(0), U64(0)          # accumulated increment
    chi, clo = MULT_HI, MULT_LO
    dhi, dlo = ihi, ilo
    d = U64(delta)
    while d > U64(0):
        if d & U64(1):
            ahi, alo = _mul128(ahi, alo, chi, clo)
            t1, t2 = _mul128(phi, plo, chi, clo)
            phi, plo = _add128(t1, t2, dhi, dlo)
        # inc' = (mult + 1) * inc; mult' = mult^2
        m1hi, m1lo = _add128(chi, clo, U64(0), U64(1))
        dhi, dlo = _mul128(m1hi, m1lo, dhi, dlo)
        chi, clo = _mul128(chi, clo, chi, clo)
        d = d >> U64(1)
    t1, t2 = _mul128(ahi, alo, shi, slo)
    return _add128(t1, t2, phi, plo)


_INV24 = np.float32(1.0 / 16777216.0)


@njit
def seek(p, f):
    """Position to draw float index f of the stream p (a uint64 array, see Stream.params).

    Returns (state hi, state lo, odd, cached uint32): odd says the next draw is
    the high half of the current output (then ``cached`` holds it).
    """
    shi, slo, ihi, ilo, has, ucache = p[0], p[1], p[2], p[3], p[4], p[5]
    if has and f == 0:
        return shi, slo, True, ucache
    j = U64(f) - has
    o = j >> U64(1)
    if j & U64(1):
        # the draw is the high half of output o: produce output o now
        shi, slo = _advance(shi, slo, ihi, ilo, o + U64(1))
        return shi, slo, True, _output(shi, slo) >> U64(32)
    shi, slo = _advance(shi, slo, ihi, ilo, o)
    return shi, slo, False, U64(0)


@njit(inline="always")
def draw(shi, slo, ihi, ilo, odd, cached):
    """Next float32 uniform from a position (see seek); returns (u, shi, slo, odd, cached)."""
    if odd:
        return np.float32(cached >> U64(8)) * _INV24, shi, slo, False, cached
    shi, slo = _step(shi, slo, ihi, ilo)
    v = _output(shi, slo)
    return (np.float32((v & U64(0xFFFFFFFF)) >> U64(8)) * _INV24, shi, slo, True,
            v >> U64(32))


@dataclass(frozen=True)
class Stream:
    """The float32 stream position of a PCG64 Generator, for kernels.

    params: uint64 array (state hi, state lo, inc hi, inc lo, has_uint32, uinteger).
    """
    params: np.ndarray

    @staticmethod
    def of(rng):
        """The Stream of ``rng``, or None when its bit generator is not PCG64."""
        bg = rng.bit_generator
        if type(bg) is not np.random.PCG64:
            return None
        st = bg.state
        s, inc = st["state"]["state"], st["state"]["inc"]
        return Stream(np.array([s >> 64, s & _M64, inc >> 64, inc & _M64,
                                int(st["has_uint32"]), int(st["uinteger"])], np.uint64))

    def consume(self, rng, n):
        """Set rng's state to this stream's position after n float32 draws."""
        p = [int(v) for v in self.params]
        s, inc, has, ucache = (p[0] << 64) | p[1], (p[2] << 64) | p[3], p[4], p[5]
        if n > 0:
            if has:
                n -= 1
                has = 0
            outs = (n + 1) // 2
            if outs:
                # NumPy keeps the last output's high half even once it is used
                s = python_advance(s, inc, outs)
                has, ucache = n % 2, python_output(s) >> 32
        rng.bit_generator.state = {"bit_generator": "PCG64",
                                   "state": {"state": s, "inc": inc},
                                   "has_uint32": has, "uinteger": ucache}


def python_output(s):
    """XSL-RR of a Python-int state (reference)."""
    hi, lo = s >> 64, s & _M64
    x, r = hi ^ lo, hi >> 58
    return ((x >> r) | (x << ((64 - r) & 63))) & _M64


def python_advance(s, inc, n):
    """The Python-int state after n LCG steps (reference jump-ahead)."""
    am, ap, cm, cp = 1, 0, MULT, inc
    while n:
        if n & 1:
            am, ap = (am * cm) & _M128, (ap * cm + cp) & _M128
        cp, cm = ((cm + 1) * cp) & _M128, (cm * cm) & _M128
        n >>= 1
    return (am * s + ap) & _M128


@njit
def fill_range(p, f0, f1, buf):
    """buf[:f1 - f0] = floats f0..f1-1 of the stream p (see seek).

    Whole outputs are unrolled into two stores (independent chains stepped
    together measured no faster: the loop is bound by multiplier throughput).
    """
    f0 = np.int64(f0)
    f1 = np.int64(f1)
    ihi, ilo = p[2], p[3]
    shi, slo, odd, cached = seek(p, f0)
    f = f0
    if odd and f < f1:       # finish the current output's high half first
        u, shi, slo, odd, cached = draw(shi, slo, ihi, ilo, odd, cached)
        buf[0] = u
        f += 1
    o = f - f0
    for t in range((f1 - f) // 2):
        shi, slo = _step(shi, slo, ihi, ilo)
        v = _output(shi, slo)
        buf[o] = np.float32((v & U64(0xFFFFFFFF)) >> U64(8)) * _INV24
        buf[o + 1] = np.float32(v >> U64(40)) * _INV24
        o += 2
    if o < f1 - f0:
        shi, slo = _step(shi, slo, ihi, ilo)
        buf[o] = np.float32((_output(shi, slo) & U64(0xFFFFFFFF)) >> U64(8)) * _INV24


def _fill_impl(p, out, chunk):
    n = out.size
    nch = (n + chunk - 1) // chunk
    for c in numba.prange(nch):
        f0 = c * chunk
        f1 = min(n, f0 + chunk)
        fill_range(p, f0, f1, out[f0:f1])


_fill = njit(parallel=True, cache=True)(_fill_impl)
_CHUNK = 1 << 16


def random_f32(rng, shape):
    """``rng.random(shape, dtype=np.float32)``, bit for bit (and the same state after),
    drawn in parallel for a PCG64 Generator; other bit generators take NumPy's path."""
    st = Stream.of(rng)
    if st is None:
        return rng.random(shape, dtype=np.float32)
    out = np.empty(shape, np.float32)
    _fill(st.params, out.reshape(-1), _CHUNK)
    st.consume(rng, out.size)
    return out
