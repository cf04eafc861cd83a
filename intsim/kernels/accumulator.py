"""The integer accumulator's width and overflow modes, defined once.

``bits`` is the accumulator width (2..32, :data:`ACC_BITS_RANGE`); None is
the only way to say "no limit" (an exact, unbounded sum). ``tile`` is the
reduction length summed before the accumulator's bound applies (None: the
whole reduction). ``mode`` says what happens beyond the bound (see
intsim.kernels.intmm): "clamp", "saturate", "wrap", or "wide" (no limit,
whatever ``bits`` says). The largest magnitude it holds is
``2^(bits-1) - 1`` (:func:`acc_range`).
"""
from __future__ import annotations

ACC_BITS_RANGE = (2, 32)
ACC_MODES = ("clamp", "saturate", "wrap", "wide")


def check_acc_bits(bits, name: str = "acc_bits") -> None:
    """ValueError unless ``bits`` is None or an int in ACC_BITS_RANGE."""
    lo, hi = ACC_BITS_RANGE
    if bits is None:
        return
    if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= hi:
        raise ValueError(f"{name} must be an int in {lo}..{hi} or None (no limit), got {bits!r}")


def acc_limit(bits: int | None, mode: str) -> int | None:
    """Effective accumulator bits: None when there is no limit (bits None or mode "wide")."""
    return None if bits is None or mode == "wide" else int(bits)


def acc_range(bits: int | None) -> int | None:
    """Largest magnitude a signed ``bits`` accumulator holds (None: unlimited)."""
    return None if bits is None else (1 << (int(bits) - 1)) - 1
