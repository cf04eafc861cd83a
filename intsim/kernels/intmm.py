"""Tiled integer matmul with low-bit accumulators (docs/paper.md section 3) and its audit.

The reduction axis K is split into consecutive tiles of ``tile`` entries (the last
may be shorter). Per output element and tile, with L = 2^(acc_bits-1) - 1:
  "wide"      the exact tile sum (no accumulator limit);
  "clamp"     the exact tile sum clipped to [-L, L] (the paper's behaviour);
  "saturate"  a running sum from 0 over increasing k, clipped to [-L, L] after
              every addition (a real saturating accumulator);
  "wrap"      the exact tile sum wrapped modulo 2^acc_bits into [-L-1, L].
Tile results are then summed without limit.

Speed: wide/clamp/wrap run the tiles as one batched float BLAS matmul on the
integer operands, exact because the dtype is chosen from the operands' maxima
(float32 while |tile sum| < 2^24, else float64 below 2^53, else int64);
the tile reduction + audit counting are Numba kernels; with two or more threads,
blocks of rows run in parallel, each on its own BLAS calls. saturate is one Numba
kernel: the additions in order, vectorised across output columns in int16 lanes
where they hold the sums, skipping zero entries of a.
"""
from dataclasses import dataclass

import numpy as np

from intsim.kernels import _mm as _km
from intsim.kernels.accumulator import ACC_BITS_RANGE, ACC_MODES

__all__ = ["Audit", "int_matmul", "matmul_acc", "matmul_acc_km", "MODES"]

#: the accumulator modes (intsim.kernels.accumulator.ACC_MODES)
MODES = ACC_MODES
_F32_EXACT = 2.0 ** 24
_F64_EXACT = 2.0 ** 53


@dataclass
class Audit:
    """Accumulator counters, added to by every matmul given this object.

    tiles: output elements x tiles computed; saturated: tile results that left the
    accumulator range (clamp/wide: exact tile sums outside [-L, L]; wrap: outside
    [-L-1, L], since two's complement holds -2^(acc_bits-1); saturate: tiles in
    which any addition left [-L, L]); max_abs: largest |exact tile sum| seen.
    """
    tiles: int = 0
    saturated: int = 0
    max_abs: int = 0

    @property
    def frac(self):
        """Saturated fraction saturated / tiles (0.0 when no tiles were computed)."""
        return self.saturated / self.tiles if self.tiles else 0.0

    def add(self, other):
        """Add another Audit's (or an as_dict() dict's) counters into this one; returns self."""
        if isinstance(other, dict):
            other = Audit(int(other["tiles"]), int(other["saturated"]), int(other["max_abs"]))
        if not isinstance(other, Audit):
            raise ValueError(f"Audit.add needs an Audit or dict, got {type(other).__name__}")
        self.tiles += other.tiles
        self.saturated += other.saturated
        self.max_abs = max(self.max_abs, other.max_abs)
        return self


    def reset(self):
        """Zero all counters; returns self."""
        self.tiles = self.saturated = self.max_abs = 0
        return self

    def as_dict(self):
        """{"tiles", "saturated", "max_abs" (ints), "frac" (float)}."""
        return {"tiles": int(self.tiles), "saturated": int(self.saturated),
                "max_abs": int(self.max_abs), "frac": float(self.frac)}


def _check_params(acc_bits, tile, mode, audit):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if acc_bits is not None:
        if isinstance(acc_bits, (bool, np.bool_)) or not isinstance(acc_bits, (int, np.integer)) \
                or not ACC_BITS_RANGE[0] <= int(acc_bits) <= ACC_BITS_RANGE[1]:
            raise ValueError(f"acc_bits must be an integer in {ACC_BITS_RANGE[0]}.."
                             f"{ACC_BITS_RANGE[1]} or None, got {acc_bits!r}")
        acc_bits = int(acc_bits)
    if tile is not None:
        if isinstance(tile, (bool, np.bool_)) or not isinstance(tile, (int, np.integer)) or tile < 1:
            raise ValueError(f"tile must be a positive integer or None, got {tile!r}")
        tile = int(tile)
    if audit is not None and not isinstance(audit, Audit):
        raise ValueError(f"audit must be an intsim.kernels.intmm.Audit or None, got {type(audit).__name__}")
    return acc_bits, tile


def _check_shapes(a, b):
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"matmul operands need >= 2 dimensions, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"shape mismatch: a {a.shape} and b {b.shape} (K {a.shape[-1]} != {b.shape[-2]})")
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"batch dimensions of a {a.shape} and b {b.shape} do not broadcast") from None
    return batch


def _absmax(x):
    if x.size == 0:
        return 0.0
    return float(max(x.max(), -x.min()))


def _dtypes(amax, bmax, K, T, nT, L, acc_bits, mode):
    """(compute dtype exact for every tile sum, output dtype exact for the result)."""
    tile_bound = amax * bmax * T
    if mode == "wrap":
        tile_bound += 2.0 ** acc_bits  # the wrap arithmetic adds 2^(acc_bits-1) to tile sums
    out_bound = amax * bmax * K
    if mode != "wide":
        out_bound = min(out_bound, nT * (L + 1.0))
    if tile_bound < _F32_EXACT:
        cdt = np.float32
    elif tile_bound < _F64_EXACT:
        cdt = np.float64
    else:
        cdt = np.int64
    if cdt is np.int64 or out_bound >= _F64_EXACT:
        odt = np.int64
    elif out_bound < _F32_EXACT:
        odt = np.float32
    else:
        odt = np.float64
    return cdt, odt


def matmul_acc_km(x, g, *, acc_bits=8, tile=32, mode="clamp", audit=None, a_max, b_max):
    """Per-image products of K-major operands: x (K, S, M) @ g (N, S, M) over M.

    Equals ``matmul_acc(x.transpose(1, 0, 2), g.transpose(1, 2, 0), ...)``, an
    (S, K, N) array, bit for bit, audit included, without BLAS on strided views
    (the HDQT conv's weight gradient). x, g: C-contiguous float arrays of
    integers; a_max / b_max: bounds on max|x| / max|g| (required).
    """
    acc_bits, tile = _check_params(acc_bits, tile, mode, audit)
    K, S, M = x.shape
    if acc_bits is None:
        mode = "wide"
    T = M if tile is None else min(tile, M)
    nT = -(-M // T) if M else 0
    L = (1 << (acc_bits - 1)) - 1 if acc_bits is not None else 0
    cdt, odt = _dtypes(float(a_max), float(b_max), M, T, nT, L, acc_bits, mode)
    if mode == "saturate" or cdt is np.int64 or nT == 0 or x.dtype != g.dtype \
            or x.dtype != cdt or not (x.flags.c_contiguous and g.flags.c_contiguous):
        return matmul_acc(x.transpose(1, 0, 2), g.transpose(1, 2, 0), acc_bits=acc_bits,
                          tile=tile, mode=mode, audit=audit, a_max=a_max, b_max=b_max)
    out, nsat, mx = _km.rowdot_tiled(x, g, T, L, mode, odt, audit is not None, acc_bits)
    if audit is not None:
        audit.tiles += out.size * nT
        audit.saturated += int(nsat) if acc_bits is not None else 0
        audit.max_abs = max(audit.max_abs, int(mx))
    return out


def matmul_acc(a, b, *, acc_bits=8, tile=32, mode="clamp", audit=None, a_max=None, b_max=None):
    """Tiled accumulator matmul on float arrays holding integers (engine entry point).

    a: (..., M, K), b: (K, N) or (..., K, N); float32 (or float64 / integer) arrays of
    integer values with |value| < 2^15 (not checked). tile=None: one tile over all of K.
    acc_bits=None: no accumulator limit (same as mode="wide"). a_max / b_max: optional
    caller-guaranteed bounds on max|a| / max|b| (saves a pass; must be true).
    Returns (..., M, N) exact integer values: float32 when |result| < 2^24 is provable
    from the bounds, else float64 (int64 only if even float64 could not be exact).
    """
    acc_bits, tile = _check_params(acc_bits, tile, mode, audit)
    a = np.asarray(a)
    b = np.asarray(b)
    for name, x in (("a", a), ("b", b)):
        if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.floating)
                                       or np.issubdtype(x.dtype, np.integer)):
            raise ValueError(f"{name} must hold integers in a float or integer dtype, got {x.dtype}")
    batch = _check_shapes(a, b)
    if acc_bits is None:
        mode = "wide"
    M, K = a.shape[-2:]
    N = b.shape[-1]
    out_shape = batch + (M, N)
    T = K if tile is None else min(tile, K)
    nT = -(-K // T) if K else 0
    amax = _absmax(a) if a_max is None else float(a_max)
    bmax = _absmax(b) if b_max is None else float(b_max)
    L = (1 << (acc_bits - 1)) - 1 if acc_bits is not None else 0
    cdt, odt = _dtypes(amax, bmax, K, T, nT, L, acc_bits, mode)
    if nT == 0 or M == 0 or N == 0 or int(np.prod(batch, dtype=np.int64)) == 0:
        return np.zeros(out_shape, odt)
    b = b.astype(cdt, copy=False)
    if mode == "saturate":
        a = a.astype(cdt, copy=False)   # the other modes cast a per row block where they can
        out, nsat, mx = _km.saturate_matmul(a, b, batch, T, L, odt, audit is not None,
                                            amax, bmax)
    else:
        out, nsat, mx = _km.tiled_matmul(a, b, batch, T, L, mode, odt, audit is not None,
                                         acc_bits, amax * bmax * T)
    if audit is not None:
        audit.tiles += int(np.prod(out_shape, dtype=np.int64)) * nT
        audit.saturated += int(nsat) if acc_bits is not None else 0
        audit.max_abs = max(audit.max_abs, int(mx))
    return out


def int_matmul(a, b, *, acc_bits=8, tile=32, mode="clamp", audit=None):
    """Tiled integer matmul with a low-bit accumulator; returns int64 (..., M, N).

    a: (..., M, K), b: (K, N) or (..., K, N), integer dtypes with values within int16.
    acc_bits: accumulator bits (2..32; None = unlimited), tile: K entries per tile
    (None = one tile), mode: "wide" | "clamp" | "saturate" | "wrap" (module docstring).
    audit: an Audit whose counters are increased. Non-integer dtypes, values outside
    int16, wrong shapes and bad parameters raise ValueError.
    """
    _check_params(acc_bits, tile, mode, audit)
    a = np.asarray(a)
    b = np.asarray(b)
    bounds = []
    for name, x in (("a", a), ("b", b)):
        if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"int_matmul needs integer arrays; {name} has dtype {x.dtype}")
        if x.size:
            lo, hi = int(x.min()), int(x.max())
            if lo < -32768 or hi > 32767:
                raise ValueError(f"int_matmul: {name} has values outside the int16 range "
                                 f"([{lo}, {hi}])")
            bounds.append(float(max(hi, -lo)))
        else:
            bounds.append(0.0)
    _check_shapes(a, b)
    out = matmul_acc(a, b, acc_bits=acc_bits, tile=tile, mode=mode, audit=audit,
                     a_max=bounds[0], b_max=bounds[1])
    # accumulating in float (exact) and converting once is faster than int64 lanes
    return out.astype(np.int64)
