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


@njit(cache=True, inline="always")
def _binade(a):
    """floor(log2 a) for a > 0; -1 for a == 0 (as np.frexp)."""
    return math.frexp(a)[1] - 1


@njit(cache=True, inline="always")
def _finish(y, qmag, max_value, ov, q, over, i, acc):
    """One element of _grid.finish; acc: [count, flushed, saturated] int64, updated."""
    v = y[i]
    if math.isnan(v):
        q[i] = np.nan
        over[i] = False
        return
    o = qmag > max_value
    m = ov if o else qmag
    r = math.copysign(m, v)
    q[i] = r
    over[i] = o
    if math.isfinite(v):
        acc[0] += 1
    if v != 0.0 and r == 0.0:
        acc[1] += 1
    if o:
        acc[2] += 1


@njit(cache=True)
def float_quantize(y, u, up, mode, emin, man_bits, subnormals, min_normal, max_value, ov):
    """FloatFormat._quantize's rounding and finish (see the module docstring)."""
    n = y.size
    q = np.empty(n, np.float64)
    over = np.empty(n, np.bool_)
    acc = np.zeros(3, np.int64)
    mx = 0.0
    for i in range(n):
        v = y[i]
        a = abs(v)
        if math.isfinite(a):
            mx = max(mx, a)
            E = max(_binade(a), emin)
            step = math.ldexp(1.0, E - man_bits)
            ui = u[i] if mode == 1 else 0.0
            qm = _round(a, step, mode, ui, up[i] if mode == 2 else False)
            if not subnormals and a < min_normal:
                if mode == 0:
                    hit = a > min_normal / 2
                else:
                    hit = ui < a / min_normal
                qm = min_normal if hit else 0.0
        else:
            qm = np.inf
        _finish(y, qm, max_value, ov, q, over, i, acc)
    return q, over, acc[0], acc[1], acc[2], mx


@njit(cache=True)
def tapered_quantize(y, u, up, mode, steps, max_value):
    """TaperedFormat._quantize's rounding and finish: step = steps[clip(-binade, 0,
    len(steps) - 1)]; saturates at max_value."""
    n = y.size
    nb = steps.size
    q = np.empty(n, np.float64)
    over = np.empty(n, np.bool_)
    acc = np.zeros(3, np.int64)
    mx = 0.0
    for i in range(n):
        v = y[i]
        a = abs(v)
        if math.isfinite(a):
            mx = max(mx, a)
            d = min(max(-_binade(a), 0), nb - 1)
            qm = _round(a, steps[d], mode, u[i] if mode == 1 else 0.0,
                        up[i] if mode == 2 else False)
        else:
            qm = np.inf
        _finish(y, qm, max_value, max_value, q, over, i, acc)
    return q, over, acc[0], acc[1], acc[2], mx
