"""Block Hadamard transform and per-item quantizer in one pass (private; intsim.kernels.quant).

For an (A, S, M) float32 array whose items are along axis 1 (a convolution's
per-image backward operands, K-major), each item's (A, M) slice is gathered into
an L2-resident scratch, transformed there in blocks of p along A or M, reduced
to its max and min, scaled and rounded into the output. The transformed tensor
and its quantized copy are never written as full float tensors, and the uniforms
of stochastic rounding are drawn in the kernel.

Bit for bit, this equals intsim.kernels.hadamard.fwht (or BlockHadamard.apply)
followed by intsim.kernels.quant.quantize_items: the butterflies of each output
entry are the same float32 adds in the same order (the stage order is passed in:
the last-axis FWHT kernel runs the stages at strides 1, 2, .., p/2; the kernel
for other axes runs p/2 first, then 1, 2, .., p/4), the scale is the same
float64 formula, and the uniform of entry (a, s, m) is draw (s A + a) M + m
of the PCG64 stream. Items are independent, so the result does not depend on
the number of threads.
"""
import numpy as np
from numba import njit, prange

from intsim.kernels._floatbits import NONFINITE as NONFINITE_BITS, abs_max_bits
from intsim.kernels._fwht import _r8, _stages, top_stage
from intsim.kernels._rng import fill_range

U = np.uint64
_UBLOCK = 4096            # uniforms drawn per block into an L1-resident buffer
_F32_TINY = np.finfo(np.float32).tiny

#: flags[s] values
OK, NONFINITE, SUBNORMAL = 0, 1, 2


@njit(inline="always")
def _transform_cols(sc, A, M, p):
    """In place on the (A, M) scratch sc (flat): blocks of p along M, stages 1, 2, .., p/2."""
    pu = U(p)
    for a in range(A):
        r0 = U(a) * U(M)
        for blk in range(U(M) // pu):
            b0 = r0 + U(blk) * pu
            if pu >= U(8):
                for g in range(pu // U(8)):
                    _r8(sc, sc, b0 + U(g) * U(8))
                _stages(sc, b0, U(8), pu)
            else:
                _stages(sc, b0, U(1), pu)


@njit(inline="always")
def _transform_rows(sc, A, M, p, top_first):
    """In place on the (A, M) scratch sc (flat): blocks of p rows along A; stages p/2,
    1, 2, .., p/4 (top_first) or 1, 2, .., p/2."""
    Mu = U(M)
    hp = U(p // 2)
    for blk in range(A // p):
        base = U(blk * p) * Mu
        if top_first:
            top_stage(sc, base, Mu, sc, base, Mu, hp, Mu)
            if hp > U(1):
                _stages(sc, base, Mu, hp * Mu)
                _stages(sc, base + hp * Mu, Mu, hp * Mu)
        else:
            _stages(sc, base, Mu, U(p) * Mu)


@njit(inline="always")
def _any_negative(sc):
    """Whether some entry of the flat float32 array sc is < 0 (-0.0 is not)."""
    neg = False
    for i in range(U(sc.size)):
        neg |= sc[i] < np.float32(0.0)
    return neg


@njit(parallel=True, cache=True)
def hadamard_quantize_items(src, along_rows, p, top_first, stream, stochastic, bits, signed,
                            clip, out, scales, flags):
    """Transform, then quantize, every item of src; see the module docstring.

    src: (A, S, M) float32 (any strides); along_rows: transform along A (else M);
    p: block size (1: no transform; p divides the axis); top_first: stage order of
    the non-last-axis kernel; stream: PCG64 params (intsim.kernels._rng.Stream);
    stochastic: floor(y + u) (else round half to even); bits: 2..16; signed: 1, 0,
    or -1 (signed iff the item has a negative entry); clip: factor on the max.
    out: (A, S, M) float32 C; scales: (S,) float64, 0 for an all-zero item;
    flags: (S,) uint8 set to NONFINITE or SUBNORMAL where the item cannot be done
    here (the caller then raises or takes the float64 path).
    """
    A, S, M = src.shape
    Ls = float((1 << (bits - 1)) - 1)
    Lu = float((1 << bits) - 1)
    for s in prange(S):
        sc = np.empty(A * M, np.float32)
        for a in range(A):
            row = src[a, s]
            o = a * M
            for t in range(M):
                sc[o + t] = row[t]
        if p > 1:
            if along_rows:
                _transform_rows(sc, A, M, p, top_first)
            else:
                _transform_cols(sc, A, M, p)
        mbits = abs_max_bits(sc.view(np.uint32))
        flags[s] = OK
        if mbits >= NONFINITE_BITS:
            flags[s] = NONFINITE
            continue
        # clip * max(max, -min) of quant._item_scales: both are max|v|, exact in float64
        mb = np.empty(1, np.uint32)
        mb[0] = mbits
        m = clip * np.float64(mb.view(np.float32)[0])
        sgn = signed == 1 or (signed == -1 and _any_negative(sc))
        L = Ls if sgn else Lu
        sv = m / L
        zero = not sv > 0
        sdiv = 1.0 if zero else sv
        if np.float32(sdiv) < _F32_TINY:
            flags[s] = SUBNORMAL
            continue
        scales[s] = 0.0 if zero else sv
        if zero:
            for a in range(A):
                row = out[a, s]
                for t in range(M):
                    row[t] = 0
            continue
        sd = np.float32(sdiv)
        qa = np.float32(-Ls if sgn else 0.0)
        qb = np.float32(L)
        ub = np.empty(_UBLOCK, np.float32)
        for a in range(A):
            row = out[a, s]
            for t0 in range(0, M, _UBLOCK):
                n = U(min(M - t0, _UBLOCK))
                o = U(a * M + t0)
                w = row[t0:]
                if stochastic:
                    d0 = (s * A + a) * M + t0
                    fill_range(stream, d0, d0 + np.int64(n), ub)
                    for t in range(n):
                        y = min(max(sc[o + U(t)] / sd, qa), qb)
                        w[t] = min(np.floor(y + ub[t]), qb)
                else:
                    for t in range(n):
                        w[t] = np.rint(min(max(sc[o + U(t)] / sd, qa), qb))
