"""Block Walsh-Hadamard transforms (docs/paper.md section 1).

``block_hadamard(n)`` is the dense reference: block-diagonal with n/bp2(n)
copies of the unnormalised Sylvester matrix H_bp2(n) (entries +-1, H H = p I).
``fwht(x, axis)`` applies it along one axis without forming the matrix.
"""
import numpy as np

from intsim.kernels import _fwht as _kf

__all__ = ["bp2", "block_hadamard", "sylvester", "fwht", "top_stage_first"]


def _check_size(n, what="n"):
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{what} must be a positive integer, got {n!r}")
    n = int(n)
    if n < 1:
        raise ValueError(f"{what} must be a positive integer, got {n}")
    return n


def bp2(n):
    """Largest power of two dividing the positive integer ``n`` (bp2(100) = 4, bp2(405) = 1)."""
    n = _check_size(n)
    return n & -n


def sylvester(p, dtype=np.int64):
    """Sylvester Hadamard matrix H_p, shape (p, p), entries +-1; p a power of two."""
    p = _check_size(p, "p")
    if p & (p - 1):
        raise ValueError(f"Sylvester Hadamard order must be a power of two, got {p}")
    h = np.ones((1, 1), dtype=dtype)
    while h.shape[0] < p:
        h = np.block([[h, h], [h, -h]])
    return h


def block_hadamard(n, dtype=np.int64):
    """Dense block-diagonal Hadamard of size n: n/bp2(n) copies of H_bp2(n).

    Returns an (n, n) array of ``dtype`` (default int64) with entries 0 and +-1;
    the identity for odd n. Symmetric; block_hadamard(n) @ block_hadamard(n) = bp2(n) I.
    """
    n = _check_size(n)
    p = n & -n
    return np.kron(np.eye(n // p, dtype=dtype), sylvester(p, dtype))


def top_stage_first(shape, axis):
    """Whether fwht of an array of ``shape`` along ``axis`` runs its butterfly stages as
    p/2, 1, 2, .., p/4 (an axis followed by others of more than one entry) rather than
    1, 2, .., p/2; float results depend on the order."""
    axis %= len(shape)
    return int(np.prod(shape[axis + 1:], dtype=np.int64)) > 1


def fwht(x, axis=-1):
    """Apply block_hadamard(x.shape[axis]) along ``axis`` (fast Walsh-Hadamard transform).

    x: any shape, real integer or float dtype. Returns a new C-contiguous array of
    x's dtype and shape, equal to ``np.moveaxis(H @ np.moveaxis(x, axis, -2), -2, axis)``
    with H = block_hadamard(n). Integer inputs are computed exactly (results that do
    not fit x's dtype wrap modulo 2^bits, as the int64 dense product cast to that
    dtype would); floats agree with the dense product up to float rounding.
    """
    x = np.asarray(x)
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.integer)
                                   or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"fwht needs a real integer or float array, got dtype {x.dtype}")
    if x.ndim == 0:
        raise ValueError("fwht needs an array with at least one dimension")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} out of range for an array with {x.ndim} dimensions")
    axis %= x.ndim
    n = x.shape[axis]
    if n == 0 or x.size == 0:
        return x.copy(order="C")
    return _kf.fwht_axis(x, axis)
