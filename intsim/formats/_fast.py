"""Numba kernels of the format quantizers: one pass per tensor, no temporaries.

Bit for bit the NumPy reference in intsim.formats._grid / floating.py /
tapered.py (tests/test_formats_fast.py compares them on random inputs, also
with NUMBA_DISABLE_JIT=1): every step is an exact IEEE operation (frexp,
ldexp, division by a power of two, rint half to even, floor, ceil) on the
same float64 values, and the uniforms are the same array drawn by the
caller's Generator. The optimizer of FP134 quantizes every parameter, its
gradient and momentum at every step, so the NumPy version's ~15 float64
temporaries per call dominated an FP134 run (about 2/3 of it, profiled).

y: float64 1-D (x / scale); u: float64 1-D uniforms (stochastic) or empty;
up: bool 1-D (directed rounding) or empty. mode: 0 nearest, 1 stochastic,
2 directed. Returns (q float64 1-D: sign(y) * the rounded magnitude with the
overflow rule, before the scale; over bool 1-D: rounded magnitude above the
max, NaN excluded; count, flushed, saturated (int64), max_abs (float64)).
"""
import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _round(af, step, mode, u, up):
    k = af / step
    if mode == 0:
        kr = np.rint(k)
    elif mode == 1:
        fl = math.floor(k)
        kr = fl + (1.0 if u < k - fl else 0.0)
    else:
        kr = math.ceil(k) if up else math.floor(k)
    return kr * step


#: 2^k for k in [-_P2_OFF, 1023] (exact; 0 below float64's smallest subnormal;
#: steps never exceed 2^1023): a table lookup instead of a libm ldexp per element
_P2_OFF = 1100
_POW2 = np.ldexp(1.0, np.arange(-_P2_OFF, 1024))


@njit(cache=True, inline="always")
def _binade(a, bits):
    """floor(log2 a) for a > 0; -1 for a == 0 (as np.frexp). bits: a's (or -a's)
    IEEE bits as int64: the exponent field directly, frexp only for 0 and
    subnormals."""
    ex = (bits >> 52) & 0x7FF
    if ex == 0:
        return math.frexp(a)[1] - 1
    return ex - 1023


@njit(cache=True, inline="always")
def _pow2(k):
    return _POW2[min(max(k, -_P2_OFF), 1023) + _P2_OFF]


_NO_STEPS = np.empty(0)


@njit(cache=True)
def quantize(y, u, up, mode, steps, emin, man_bits, subnormals, min_normal, max_value, ov):
    """One format's rounding and finish (see the module docstring). The step of a
    magnitude a with binade E: steps[clip(-E, 0, len(steps) - 1)] for a tapered
    format (steps non-empty; TaperedFormat), else 2^(max(E, emin) - man_bits)
    (FloatFormat, with its no-subnormal rule below min_normal). Magnitudes
    above max_value become ov."""
    n = y.size
    nb = steps.size
    yb = y.view(np.int64)
    q = np.empty(n, np.float64)
    over = np.empty(n, np.bool_)
    count = flushed = saturated = 0
    mx = 0.0
    for i in range(n):
        v = y[i]
        a = abs(v)
        if math.isnan(v):
            q[i] = np.nan
            over[i] = False
            continue
        if a != np.inf:
            count += 1
            mx = max(mx, a)
            E = _binade(a, yb[i])
            ui = u[i] if mode == 1 else 0.0
            step = steps[min(max(-E, 0), nb - 1)] if nb else _pow2(max(E, emin) - man_bits)
            qm = _round(a, step, mode, ui, up[i] if mode == 2 else False)
            if not nb and not subnormals and a < min_normal:
                hit = a > min_normal / 2 if mode == 0 else ui < a / min_normal
                qm = min_normal if hit else 0.0
        else:
            qm = np.inf
        o = qm > max_value
        r = math.copysign(ov if o else qm, v)
        q[i] = r
        over[i] = o
        flushed += 1 if (v != 0.0) & (r == 0.0) else 0
        saturated += 1 if o else 0
    return q, over, count, flushed, saturated, mx
