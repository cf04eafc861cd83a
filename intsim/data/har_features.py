"""The 561 UCI-HAR / HAPT features from raw 50 Hz accelerometer + gyroscope signals.

Pipeline (har-features.md), per experiment (continuous recording):
  1. median filter over 3 samples (edges: nearest sample repeated);
  2. 3rd-order Butterworth low-pass at 20 Hz, applied forward-backward
     (scipy sosfiltfilt: zero phase, so windows stay aligned with their labels);
  3. acceleration -> gravity = 3rd-order Butterworth low-pass at 0.3 Hz of the
     step-2 signal (also zero phase); body acceleration = step-2 signal - gravity;
     the gyroscope is not split;
  4. jerk = time derivative * fs of body acceleration and of the gyroscope,
     np.gradient central differences on the continuous signal (one-sided at the
     recording's ends), so every window keeps 128 samples;
  then windows of 128 samples (2.56 s) with step 64 are cut inside each labelled
  segment (``window_starts``), and ``features_561`` computes, vectorised over
  windows, the 561 statistics below. Magnitudes are Euclidean norms of the 3
  axes. Frequency signals: |FFT| of the window / 128, the first 64 bins
  (bin k = k * 50/128 Hz, k = 0..63, DC included; no window function, mean
  not removed).

Choices the description leaves open (fixed here):
  - std: sample standard deviation (ddof=1, MATLAB's default);
  - mad: median of |x - median(x)|; iqr: 75th - 25th percentile (linear
    interpolation, numpy default);
  - energy: mean of squares; bandsEnergy: SUM of squared magnitudes in the
    band (bins numbered 1..64 as in the UCI names, i.e. "1,8" = k 0..7);
  - sma: mean over samples (or bins) of |x|+|y|+|z| (|x| for a magnitude);
  - entropy: Shannon entropy (bits) of a 16-bin histogram of the window's
    values, bins spanning the window's own min..max (0 for a constant window);
  - arCoeff: Burg AR(4) a1..a4 in MATLAB arburg's sign convention
    (x[n] + a1 x[n-1] + ... + a4 x[n-4] = e[n]), signal not demeaned;
    0 when the window is all zeros;
  - correlation: Pearson coefficient, 0 when either axis is constant;
  - maxInds: 0-based bin index k of the largest magnitude (first on ties);
  - meanFreq: magnitude-weighted mean of k (bin units, like maxInds);
    0 for an all-zero spectrum;
  - skewness / kurtosis of the 64 magnitudes as a sample, biased moments,
    kurtosis NOT excess (3 for a normal sample); both 0 when the 64 bins are
    equal;
  - angle(u, v) = arccos(u.v / |u||v|) in radians, with u, v the window means
    of the signals ("X" = unit x axis); pi/2 when a vector is zero.
Names and order follow the official features.txt, except: the UCI typos
"fBodyBody..." are written "fBody...", the stray ")" in
"angle(tBodyAccJerkMean),gravityMean)" is dropped, and bandsEnergy names get
the axis appended ("fBodyAcc-bandsEnergy()-1,8-X"), since the official file
repeats each name for X, Y and Z and names here are unique.
"""
from __future__ import annotations

import numpy as np

__all__ = ["FS", "WINDOW", "STEP", "N_BINS", "prepare_signals", "window_starts",
           "cut_windows", "features_561", "feature_names_561", "burg_ar"]

FS = 50.0          # Hz
WINDOW = 128       # samples
STEP = 64          # samples
N_BINS = 64        # FFT bins used
N_HIST = 16        # entropy histogram bins
BANDS = [(1, 8), (9, 16), (17, 24), (25, 32), (33, 40), (41, 48), (49, 56), (57, 64),
         (1, 16), (17, 32), (33, 48), (49, 64), (1, 24), (25, 48)]
AXES = "XYZ"

# Column layout of the prepared per-experiment signal array (N, 15).
_SIG = {"tBodyAcc": slice(0, 3), "tGravityAcc": slice(3, 6), "tBodyAccJerk": slice(6, 9),
        "tBodyGyro": slice(9, 12), "tBodyGyroJerk": slice(12, 15)}


def prepare_signals(acc: np.ndarray, gyro: np.ndarray, fs: float = FS) -> np.ndarray:
    """Filter one continuous recording; see the module docstring.

    acc: (N, 3) acceleration in g; gyro: (N, 3) angular velocity in rad/s; N >= 13
    (the filters' padding needs it). Returns float64 (N, 15): body acc XYZ,
    gravity XYZ, body acc jerk XYZ, gyro XYZ, gyro jerk XYZ.
    """
    acc = np.asarray(acc, dtype=np.float64)
    gyro = np.asarray(gyro, dtype=np.float64)
    if acc.ndim != 2 or acc.shape[1] != 3 or gyro.shape != acc.shape:
        raise ValueError(f"acc and gyro must both be (N, 3), got {acc.shape} and {gyro.shape}")
    if acc.shape[0] < 13:
        raise ValueError(f"recording too short for the filters: {acc.shape[0]} samples")
    if not (np.isfinite(acc).all() and np.isfinite(gyro).all()):
        raise ValueError("acc/gyro contain NaN or inf")
    # loaded on first use: 0.7 s to import, and readers of stored features need neither
    from scipy import ndimage, signal
    noise = signal.butter(3, 20.0, btype="low", fs=fs, output="sos")
    grav = signal.butter(3, 0.3, btype="low", fs=fs, output="sos")
    both = np.concatenate([acc, gyro], axis=1)
    both = ndimage.median_filter(both, size=(3, 1), mode="nearest")
    both = signal.sosfiltfilt(noise, both, axis=0)
    a, g = both[:, :3], both[:, 3:]
    gravity = signal.sosfiltfilt(grav, a, axis=0)
    body = a - gravity
    return np.concatenate([body, gravity, np.gradient(body, axis=0) * fs,
                           g, np.gradient(g, axis=0) * fs], axis=1)


def window_starts(first: int, last: int, size: int = WINDOW, step: int = STEP) -> np.ndarray:
    """Start rows of the windows inside segment rows first..last (inclusive).

    Windows never extend past `last`; a segment shorter than `size` gives none.
    """
    n = (last - first + 1 - size) // step + 1
    return first + step * np.arange(max(n, 0), dtype=np.int64)


def cut_windows(sig: np.ndarray, starts: np.ndarray, size: int = WINDOW) -> np.ndarray:
    """sig (N, C), starts (W,) -> windows (W, size, C) (a copy)."""
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(size)
    return sig[idx]


# ---------------------------------------------------------------- statistics
# All take x of shape (W, C, T) (T samples or bins along the last axis) and
# return (W, C) float64.

def _mad(x):
    return np.median(np.abs(x - np.median(x, axis=-1, keepdims=True)), axis=-1)


def _iqr(x):
    q75, q25 = np.percentile(x, [75, 25], axis=-1)
    return q75 - q25


def _entropy(x, nbins=N_HIST):
    mn = x.min(axis=-1, keepdims=True)
    rg = x.max(axis=-1, keepdims=True) - mn
    z = np.where(rg > 0, (x - mn) / np.where(rg > 0, rg, 1.0), 0.0)
    idx = np.minimum((z * nbins).astype(np.int64), nbins - 1)
    rows = np.arange(idx.shape[0] * idx.shape[1]).reshape(idx.shape[:2])[..., None]
    counts = np.bincount((rows * nbins + idx).ravel(), minlength=rows.size * nbins)
    p = counts.reshape(idx.shape[0], idx.shape[1], nbins) / x.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def burg_ar(x: np.ndarray, order: int = 4) -> np.ndarray:
    """Burg AR coefficients, vectorised over leading axes.

    x: (..., T) float. Returns (..., order) = a1..a_order in MATLAB arburg's
    convention (x[n] + sum_i a_i x[n-i] = e[n]). Zero signals give zeros.
    """
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    a = np.ones((x2.shape[0], 1))
    ef, eb = x2.copy(), x2.copy()
    for _ in range(order):
        efp, ebp = ef[:, 1:], eb[:, :-1]
        num = -2.0 * np.sum(ebp * efp, axis=1)
        den = np.sum(efp * efp, axis=1) + np.sum(ebp * ebp, axis=1)
        k = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        ef, eb = efp + k[:, None] * ebp, ebp + k[:, None] * efp
        z = np.zeros((a.shape[0], 1))
        a = np.concatenate([a, z], axis=1) + k[:, None] * np.concatenate([z, a[:, ::-1]], axis=1)
    return a[:, 1:].reshape(*lead, order)


def _moments(x):
    """Biased skewness and (non-excess) kurtosis along the last axis; 0 if constant."""
    d = x - x.mean(axis=-1, keepdims=True)
    m2 = np.mean(d * d, axis=-1)
    m3 = np.mean(d ** 3, axis=-1)
    m4 = np.mean(d ** 4, axis=-1)
    ok = m2 > 1e-300 * np.maximum(1.0, np.abs(x).max(axis=-1)) ** 2
    safe = np.where(ok, m2, 1.0)
    return np.where(ok, m3 / safe ** 1.5, 0.0), np.where(ok, m4 / safe ** 2, 0.0)


def _corr(x):
    """x (W, 3, T) -> Pearson correlations (W, 3) for pairs XY, XZ, YZ; 0 if constant."""
    d = x - x.mean(axis=-1, keepdims=True)
    out = []
    for i, j in ((0, 1), (0, 2), (1, 2)):
        num = np.sum(d[:, i] * d[:, j], axis=-1)
        den = np.sqrt(np.sum(d[:, i] ** 2, axis=-1) * np.sum(d[:, j] ** 2, axis=-1))
        out.append(np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0))
    return np.stack(out, axis=1)


def _angle(u, v):
    """u, v (W, 3) -> angle in radians (W,); pi/2 when either is zero."""
    nu, nv = np.linalg.norm(u, axis=1), np.linalg.norm(v, axis=1)
    den = nu * nv
    c = np.where(den > 0, np.sum(u * v, axis=1) / np.where(den > 0, den, 1.0), 0.0)
    return np.arccos(np.clip(c, -1.0, 1.0))


def _spectrum(x):
    """x (W, C, T) -> |FFT| / T, first N_BINS bins (W, C, N_BINS)."""
    return np.abs(np.fft.rfft(x, axis=-1)[..., :N_BINS]) / x.shape[-1]


def _common(x):
    """mean, std, mad, max, min as a list of (W, C) arrays."""
    return [x.mean(axis=-1), x.std(axis=-1, ddof=1), _mad(x), x.max(axis=-1), x.min(axis=-1)]


def _time_xyz(name, x):
    """x (W, 3, T) -> (names, columns (W, 40))."""
    cols, names = [], []
    for stat, v in zip(["mean", "std", "mad", "max", "min"], _common(x)):
        cols.append(v)
        names += [f"{name}-{stat}()-{a}" for a in AXES]
    cols.append(np.abs(x).sum(axis=1).mean(axis=-1)[:, None])
    names.append(f"{name}-sma()")
    for stat, v in (("energy", np.mean(x * x, axis=-1)), ("iqr", _iqr(x)),
                    ("entropy", _entropy(x))):
        cols.append(v)
        names += [f"{name}-{stat}()-{a}" for a in AXES]
    cols.append(burg_ar(x, 4).reshape(x.shape[0], 12))
    names += [f"{name}-arCoeff()-{a},{i}" for a in AXES for i in range(1, 5)]
    cols.append(_corr(x))
    names += [f"{name}-correlation()-{p}" for p in ("X,Y", "X,Z", "Y,Z")]
    return names, cols


def _time_mag(name, m):
    """m (W, 1, T) -> 13 columns."""
    cols, names = [], []
    for stat, v in zip(["mean", "std", "mad", "max", "min"], _common(m)):
        cols.append(v)
        names.append(f"{name}-{stat}()")
    cols += [np.abs(m).mean(axis=-1), np.mean(m * m, axis=-1), _iqr(m), _entropy(m)]
    names += [f"{name}-{s}()" for s in ("sma", "energy", "iqr", "entropy")]
    cols.append(burg_ar(m, 4).reshape(m.shape[0], 4))
    names += [f"{name}-arCoeff(){i}" for i in range(1, 5)]
    return names, cols


def _freq_stats(s):
    """s (W, C, 64) spectrum -> maxInds, meanFreq, skewness, kurtosis (each (W, C))."""
    k = np.arange(s.shape[-1], dtype=np.float64)
    tot = s.sum(axis=-1)
    mf = np.where(tot > 0, (s * k).sum(axis=-1) / np.where(tot > 0, tot, 1.0), 0.0)
    sk, ku = _moments(s)
    return np.argmax(s, axis=-1).astype(np.float64), mf, sk, ku


def _freq_xyz(name, s):
    """s (W, 3, 64) -> 79 columns."""
    cols, names = [], []
    for stat, v in zip(["mean", "std", "mad", "max", "min"], _common(s)):
        cols.append(v)
        names += [f"{name}-{stat}()-{a}" for a in AXES]
    cols.append(np.abs(s).sum(axis=1).mean(axis=-1)[:, None])
    names.append(f"{name}-sma()")
    for stat, v in (("energy", np.mean(s * s, axis=-1)), ("iqr", _iqr(s)),
                    ("entropy", _entropy(s))):
        cols.append(v)
        names += [f"{name}-{stat}()-{a}" for a in AXES]
    mi, mf, sk, ku = _freq_stats(s)
    cols += [mi, mf]
    names += [f"{name}-maxInds-{a}" for a in AXES] + [f"{name}-meanFreq()-{a}" for a in AXES]
    cols.append(np.stack([sk, ku], axis=-1).reshape(s.shape[0], 6))
    names += [f"{name}-{st}()-{a}" for a in AXES for st in ("skewness", "kurtosis")]
    p2 = s * s
    cs = np.concatenate([np.zeros(p2.shape[:2] + (1,)), np.cumsum(p2, axis=-1)], axis=-1)
    be = np.stack([cs[..., hi] - cs[..., lo - 1] for lo, hi in BANDS], axis=-1)  # (W,3,14)
    cols.append(be.reshape(s.shape[0], 3 * len(BANDS)))
    names += [f"{name}-bandsEnergy()-{lo},{hi}-{a}" for a in AXES for lo, hi in BANDS]
    return names, cols


def _freq_mag(name, s):
    """s (W, 1, 64) -> 13 columns."""
    cols, names = [], []
    for stat, v in zip(["mean", "std", "mad", "max", "min"], _common(s)):
        cols.append(v)
        names.append(f"{name}-{stat}()")
    cols += [np.abs(s).mean(axis=-1), np.mean(s * s, axis=-1), _iqr(s), _entropy(s)]
    names += [f"{name}-{x}()" for x in ("sma", "energy", "iqr", "entropy")]
    mi, mf, sk, ku = _freq_stats(s)
    cols += [mi, mf, sk, ku]
    names += [f"{name}-maxInds", f"{name}-meanFreq()", f"{name}-skewness()",
              f"{name}-kurtosis()"]
    return names, cols


def _features(win: np.ndarray):
    if win.ndim != 3 or win.shape[2] != 15 or win.shape[1] < 8:
        raise ValueError(f"windows must be (W, T>=8, 15) prepared signals, got {win.shape}")
    x = np.ascontiguousarray(np.transpose(np.asarray(win, dtype=np.float64), (0, 2, 1)))
    sig = {k: x[:, s] for k, s in _SIG.items()}
    names, cols = [], []

    def add(res):
        names.extend(res[0])
        cols.extend(c if c.ndim == 2 else c[:, None] for c in res[1])
    for k in ("tBodyAcc", "tGravityAcc", "tBodyAccJerk", "tBodyGyro", "tBodyGyroJerk"):
        add(_time_xyz(k, sig[k]))
    mags = {k + "Mag": np.linalg.norm(sig[k], axis=1, keepdims=True) for k in
            ("tBodyAcc", "tGravityAcc", "tBodyAccJerk", "tBodyGyro", "tBodyGyroJerk")}
    for k, m in mags.items():
        add(_time_mag(k, m))
    for k in ("BodyAcc", "BodyAccJerk", "BodyGyro"):
        add(_freq_xyz("f" + k, _spectrum(sig["t" + k])))
    for k in ("BodyAccMag", "BodyAccJerkMag", "BodyGyroMag", "BodyGyroJerkMag"):
        add(_freq_mag("f" + k, _spectrum(mags["t" + k])))
    means = {k: v.mean(axis=-1) for k, v in sig.items()}
    g = means["tGravityAcc"]
    eye = np.eye(3)
    angles = [("angle(tBodyAccMean,gravity)", means["tBodyAcc"]),
              ("angle(tBodyAccJerkMean,gravityMean)", means["tBodyAccJerk"]),
              ("angle(tBodyGyroMean,gravityMean)", means["tBodyGyro"]),
              ("angle(tBodyGyroJerkMean,gravityMean)", means["tBodyGyroJerk"])]
    angles += [(f"angle({a},gravityMean)", np.broadcast_to(eye[i], g.shape))
               for i, a in enumerate(AXES)]
    for n, u in angles:
        names.append(n)
        cols.append(_angle(u, g)[:, None])
    return names, cols


def features_561(win: np.ndarray) -> np.ndarray:
    """Prepared windows (W, 128, 15) (see prepare_signals) -> float64 (W, 561)."""
    names, cols = _features(win)
    out = np.concatenate(cols, axis=1)
    assert out.shape[1] == 561 == len(names)
    return out


def feature_names_561() -> list[str]:
    """The 561 feature names, in column order (unique)."""
    rng = np.random.default_rng(0)
    return _features(rng.standard_normal((1, WINDOW, 15)))[0]
