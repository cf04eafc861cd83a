"""Jindong Wang's 27 per-channel window features (the DSADS / PAMAP2 feature files).

The paper's DSADS (405 = 15 x 27) and PAMAP2 (243 = 9 x 27) inputs are the
feature files of Jindong Wang's cross-position activity recognition data set,
computed by FeatureExtraction2.m / MeanCrossingRate.m / ShapeAndAmpFeatures2.m
of jindongwang/activityrecognition (see the shared authors-har-data.md, 2.2 and
2.4; docs/har-features.md "Wang's 27 features"). Per channel window x of
length N, in this order:

  1 mean            2 std (sample, ddof=1)  3 min   4 max
  5 mode (most frequent value, smallest on ties)    6 range = max - min
  7 mean crossings: count of i in 1..N-1 with (x[i-1]-mean)*(x[i]-mean) < 0
  8 dc = |FFT(x)|[0]
  9-13  the 5 largest of A = |FFT(x)|[1..N-1] (both halves of the spectrum),
        ascending (5th largest first, largest last)
  14-18 their positions as MATLAB indices into |FFT(x)| (0-based bin + 1)
  19 energy = mean of A[1..N-1]^2
  20-23 spectral shape: with P = |FFT(x)|[1..M], M = N // 2, m = 1..M, S = sum P:
        mu = sum m P / S, sigma = sqrt(sum (m-mu)^2 P / S),
        skew = sum ((m-mu)/sigma)^3 P / S, kurt = sum ((m-mu)/sigma)^4 P / S - 3
  24-27 amplitude: mean of P, population std s of P, mean ((P-mean)/s)^3,
        mean ((P-mean)/s)^4 - 3

Choices where the MATLAB code is silent or not reproducible bit for bit (all
keyword options of :func:`wang27`, defaults = MATLAB's reading):
  - |FFT|: magnitudes of the real FFT (numpy rfft, unnormalised like MATLAB's
    fft; ``fft_norm`` = numpy's norm), computed as sqrt(re^2 + im^2); the
    negative-frequency half is an exact mirror of the positive half (for real
    input it is equal up to rounding), so a mirror pair k, N-k ties exactly and
    the stable ascending sort puts bin k before bin N-k. MATLAB's order inside
    a pair depends on rounding;
  - a constant window (max == min) has an exactly zero spectrum outside bin 0
    (the FFT would leave rounding noise there);
  - ``peaks="full"`` searches bins 1..N-1 as MATLAB does (peaks come in mirror
    pairs); ``peaks="half"`` searches only bins 1..M (distinct frequencies);
  - ``ddof`` of the std (MATLAB: 1);
  - ``mode_decimals``: the mode is taken over exact float64 values (MATLAB);
    an integer rounds the window to that many decimals first;
  - ``undefined``: the value of a shape feature when S == 0 or sigma == 0, and
    of amp skew/kurt when s == 0 (MATLAB gives NaN there); default 0.0.
The hot path is vectorised over windows and channels; every reduction runs along
a contiguous last axis and powers are plain products, so each window's features
do not depend on the other windows in the batch (bit for bit).
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["WANG27", "N_PEAKS", "wang27", "wang27_names", "magnitudes", "mapminmax",
           "authors_dsads", "authors_pamap", "write_authors_file"]

N_PEAKS = 5
WANG27 = (("mean", "std", "min", "max", "mode", "range", "mcr", "dc")
          + tuple(f"peak{i}" for i in range(1, N_PEAKS + 1))
          + tuple(f"peakpos{i}" for i in range(1, N_PEAKS + 1))
          + ("energy", "shape_mean", "shape_std", "shape_skew", "shape_kurt",
             "amp_mean", "amp_std", "amp_skew", "amp_kurt"))
assert len(WANG27) == 27


def magnitudes(x: np.ndarray) -> np.ndarray:
    """Euclidean norm of consecutive (x, y, z) column triplets along the last axis.

    x: (..., 3K) -> (..., K), sqrt(x^2 + y^2 + z^2) (the authors' way of
    turning one 3-axis sensor into one channel).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] % 3:
        raise ValueError(f"last axis must hold xyz triplets, got {x.shape[-1]} columns")
    t = x.reshape(*x.shape[:-1], x.shape[-1] // 3, 3)
    a, b, c = t[..., 0], t[..., 1], t[..., 2]
    return np.sqrt(a * a + b * b + c * c)


def _mode(x: np.ndarray) -> np.ndarray:
    """Most frequent value along the last axis, smallest on ties. x (..., T)."""
    s = np.sort(x, axis=-1)
    T = s.shape[-1]
    pos = np.arange(T)
    new = np.ones(s.shape, dtype=bool)
    new[..., 1:] = s[..., 1:] != s[..., :-1]
    run_start = np.maximum.accumulate(np.where(new, pos, 0), axis=-1)
    length = pos - run_start + 1          # grows along a run, max at its end
    at = np.argmax(length, axis=-1)       # first maximum = smallest value
    return np.take_along_axis(s, at[..., None], axis=-1)[..., 0]


def _safe_div(num, den, ok, fill):
    return np.where(ok, num / np.where(ok, den, 1.0), fill)


def wang27(win: np.ndarray, *, ddof: int = 1, peaks: str = "full", mode_decimals=None,
           fft_norm: str = "backward", undefined: float = 0.0) -> np.ndarray:
    """The 27 features of every channel of every window.

    win: (W, T, C) windows, T >= 2 samples, C channels, finite values.
    Returns float64 (W, C * 27), channel-major: the 27 features (WANG27 order)
    of channel 0, then of channel 1, ... (like FeatureExtraction2.m).
    Options: see the module docstring.
    """
    x = np.asarray(win, dtype=np.float64)
    if x.ndim != 3 or x.shape[1] < 2:
        raise ValueError(f"windows must be (W, T>=2, C), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("windows contain NaN or inf")
    if peaks not in ("full", "half"):
        raise ValueError(f"peaks must be 'full' or 'half', got {peaks!r}")
    W, N, C = x.shape
    M = N // 2
    if (N - 1 if peaks == "full" else M) < N_PEAKS:
        raise ValueError(f"windows of {N} samples have fewer than {N_PEAKS} peak bins")
    x = np.ascontiguousarray(np.swapaxes(x, 1, 2))          # (W, C, N)
    out = np.empty((W, C, 27))

    mean = x.mean(axis=-1)
    mn, mx = x.min(axis=-1), x.max(axis=-1)
    out[..., 0] = mean
    out[..., 1] = x.std(axis=-1, ddof=ddof)
    out[..., 2] = mn
    out[..., 3] = mx
    xm = x if mode_decimals is None else np.round(x, int(mode_decimals))
    out[..., 4] = _mode(xm)
    out[..., 5] = mx - mn
    d = x - mean[..., None]
    out[..., 6] = np.count_nonzero(d[..., :-1] * d[..., 1:] < 0, axis=-1)

    # |FFT|: rfft magnitudes, mirrored into the full length-N spectrum.
    R = np.fft.rfft(x, axis=-1, norm=fft_norm)               # (W, C, M + 1)
    half = np.sqrt(R.real * R.real + R.imag * R.imag)
    half[..., 1:] *= (mx > mn)[..., None]                    # constant window: exact zeros
    A = np.empty((W, C, N))
    A[..., :M + 1] = half
    A[..., M + 1:] = half[..., 1:(N + 1) // 2][..., ::-1]    # A[N-k] = A[k]
    out[..., 7] = A[..., 0]
    cand = A[..., 1:] if peaks == "full" else A[..., 1:M + 1]
    top = np.argsort(cand, axis=-1, kind="stable")[..., -N_PEAKS:]
    out[..., 8:8 + N_PEAKS] = np.take_along_axis(cand, top, axis=-1)
    out[..., 8 + N_PEAKS:8 + 2 * N_PEAKS] = top + 2          # MATLAB index into |FFT|
    a1 = A[..., 1:]
    out[..., 18] = np.mean(a1 * a1, axis=-1)

    # spectral shape (P as a distribution over m = 1..M) and amplitude moments
    P = np.ascontiguousarray(A[..., 1:M + 1])
    m = np.arange(1, M + 1, dtype=np.float64)
    S = P.sum(axis=-1)
    okS = S > 0
    mu = _safe_div((m * P).sum(axis=-1), S, okS, undefined)
    dm = m - mu[..., None]
    var = _safe_div((dm * dm * P).sum(axis=-1), S, okS, undefined)
    sd = np.sqrt(np.where(okS, var, 0.0))
    oks = okS & (sd > 0)
    z = dm / np.where(oks, sd, 1.0)[..., None]
    z2 = z * z
    out[..., 19] = mu
    out[..., 20] = np.where(okS, sd, undefined)
    out[..., 21] = _safe_div((z2 * z * P).sum(axis=-1), S, oks, undefined)
    out[..., 22] = np.where(oks, (z2 * z2 * P).sum(axis=-1) / np.where(oks, S, 1.0) - 3.0,
                            undefined)
    am = P.mean(axis=-1)
    dp = P - am[..., None]
    asd = np.sqrt(np.mean(dp * dp, axis=-1))
    oka = asd > 0
    y = dp / np.where(oka, asd, 1.0)[..., None]
    y2 = y * y
    out[..., 23] = am
    out[..., 24] = asd
    out[..., 25] = np.where(oka, np.mean(y2 * y, axis=-1), undefined)
    out[..., 26] = np.where(oka, np.mean(y2 * y2, axis=-1) - 3.0, undefined)
    return out.reshape(W, C * 27)


def wang27_names(channels) -> list[str]:
    """Feature names "<channel>-<feature>" in wang27's column order."""
    return [f"{c}-{f}" for c in channels for f in WANG27]


def mapminmax(X: np.ndarray, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """Scale each column of X to [lo, hi] with its own min/max over all rows.

    MATLAB mapminmax applied per feature (the authors' jdnorm.m): y =
    (hi - lo) * (x - min) / (max - min) + lo; a constant column maps to lo
    (MATLAB divides by a range of 1 there). float64 in, float64 out, exactly
    lo at each column's minimum and hi at its maximum.
    """
    X = np.asarray(X, dtype=np.float64)
    if not np.isfinite(X).all():
        raise ValueError("features contain NaN or inf")
    mn, mx = X.min(axis=0), X.max(axis=0)
    rg = mx - mn
    rg = np.where(rg > 0, rg, 1.0)
    return np.clip((hi - lo) * (X - mn) / rg + lo, lo, hi)


# ------------------------------------------------- the authors' file layouts
# (authors-har-data.md section 3). Rows keep the reader's order: DSADS by
# (activity, subject, segment), PAMAP2 by (subject, time), so subjects first
# appear in ascending order.

def authors_dsads(feats: dict) -> np.ndarray:
    """read_dsads(features="wang27") output -> the (N, 408) data_dsads matrix:
    columns 0-404 features scaled to [-1, 1] (mapminmax over all rows), 405
    activity sequence (segment 1..60), 406 label (1..19), 407 subject (1..8)."""
    X = np.asarray(feats["X"])
    if X.ndim != 2 or X.shape[1] != 405:
        raise ValueError(f"DSADS features must be (N, 405), got {X.shape}")
    return np.column_stack([mapminmax(X), feats["segment"], feats["y"],
                            feats["users"]]).astype(np.float64)


def authors_pamap(feats: dict) -> np.ndarray:
    """read_pamap2(features="wang27") output -> the (N, 245) data_pamap matrix:
    columns 0-242 features scaled to [-1, 1], 243 label (activityID), 244
    subject (1..9)."""
    X = np.asarray(feats["X"])
    if X.ndim != 2 or X.shape[1] != 243:
        raise ValueError(f"PAMAP2 features must be (N, 243), got {X.shape}")
    return np.column_stack([mapminmax(X), feats["y"], feats["users"]]).astype(np.float64)


def write_authors_file(arr: np.ndarray, out, var: str, n_int: int) -> None:
    """Write arr as OUT.mat (MATLAB v5, variable ``var``, doubles, readable by
    scipy.io.loadmat) or OUT.csv (comma-separated, no header, no index; the
    last ``n_int`` columns as integers, the others as the shortest decimal that
    reads back to the same double). Written to OUT.tmp, then renamed."""
    out = os.fspath(out)
    ext = os.path.splitext(out)[1].lower()
    if ext not in (".mat", ".csv"):
        raise ValueError(f"{out}: output must end in .mat or .csv")
    tmp = out + ".tmp"
    try:
        with open(tmp, "wb") as f:
            if ext == ".mat":
                from scipy.io import savemat    # 0.2 s to import: only .mat files need it
                savemat(f, {var: np.asarray(arr, dtype=np.float64)}, format="5")
            else:
                nf = arr.shape[1] - n_int
                ints = np.asarray(arr[:, nf:]).astype(np.int64).tolist()
                for row, tail in zip(np.asarray(arr[:, :nf], dtype=np.float64).tolist(), ints):
                    f.write((",".join(map(repr, row + tail)) + "\n").encode())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
