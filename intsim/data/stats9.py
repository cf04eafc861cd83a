"""The 9 per-channel window statistics used for DSADS (45 x 9 = 405 features)
and PAMAP2 (27 x 9 = 243 features).

The paper does not document its 9 statistics; intsim fixes this set, per
channel, in this order: mean, std (sample, ddof=1), min, max, median,
p25, p75 (25th/75th percentiles, linear interpolation), skewness (biased),
kurtosis (biased, NOT excess: 3 for a normal sample). Skewness and kurtosis are
0 for a constant channel. Feature columns are channel-major: all 9 statistics
of channel 0, then of channel 1, ...; names are "<channel>-<stat>".
"""
from __future__ import annotations

import numpy as np

__all__ = ["STATS9", "stats9", "stats9_names"]

STATS9 = ("mean", "std", "min", "max", "median", "p25", "p75", "skewness", "kurtosis")


def stats9(win: np.ndarray) -> np.ndarray:
    """win: (W, T, C) windows (T >= 2 samples, C channels, finite).

    Returns float64 (W, C * 9), channel-major (see module docstring).
    """
    x = np.asarray(win, dtype=np.float64)
    if x.ndim != 3 or x.shape[1] < 2:
        raise ValueError(f"windows must be (W, T>=2, C), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("windows contain NaN or inf")
    mean = x.mean(axis=1)
    d = x - mean[:, None, :]
    m2 = np.mean(d * d, axis=1)
    ok = m2 > 0
    safe = np.where(ok, m2, 1.0)
    skew = np.where(ok, np.mean(d ** 3, axis=1) / safe ** 1.5, 0.0)
    kurt = np.where(ok, np.mean(d ** 4, axis=1) / safe ** 2, 0.0)
    p25, med, p75 = np.percentile(x, [25, 50, 75], axis=1)
    out = np.stack([mean, x.std(axis=1, ddof=1), x.min(axis=1), x.max(axis=1), med, p25, p75,
                    skew, kurt], axis=-1)  # (W, C, 9)
    return out.reshape(x.shape[0], -1)


def stats9_names(channels) -> list[str]:
    """Feature names for the given channel names, in stats9's column order."""
    return [f"{c}-{s}" for c in channels for s in STATS9]
