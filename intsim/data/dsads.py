"""DSADS (UCI "Daily and Sports Activities") raw reader: 405 features per segment.

Official layout: data/aAA/pP/sSS.txt (AA = 01..19 activity, P = 1..8 subject,
SS = 01..60 segment), each 125 rows (5 s at 25 Hz) x 45 comma-separated
columns = 5 units (T torso, RA right arm, LA left arm, RL right leg, LL left
leg) x 9 channels (x/y/z acc, gyro, mag). One segment is one sample (one
window of N = 125 samples, as in the authors' 9120-row feature file). The root
may be the folder holding data/, data/ itself, or a zip (any leading folder).
Files are read in sorted (activity, subject, segment) order.

Feature pipelines (option ``features``):
  - "wang27" (default): Jindong Wang's 27 features (intsim.data.wang27) of the
    15 sensor magnitudes sqrt(x^2+y^2+z^2), in the authors' order: units T, RA,
    LA, RL, LL, each [acc, gyro, mag] -> 5 x 3 x 27 = 405 columns;
  - "stats9": intsim's earlier stand-in, 9 statistics of the 45 raw channels.

Raw windows (read_dsads_raw_windows, ``--features raw``): each segment as a
float32 (30, 125) window, channels RAW_CHANNELS: per unit T, RA, LA, RL, LL its
accelerometer x, y, z then gyroscope x, y, z (the magnetometers are dropped).
"""
from __future__ import annotations

import re

import numpy as np

from .common import DataFileError, Source, parse_table
from .stats9 import stats9, stats9_names
from .wang27 import magnitudes, wang27, wang27_names

__all__ = ["DSADS_ACTIVITIES", "DSADS_CHANNELS", "DSADS_SENSORS", "FEATURE_SETS",
           "RAW_CHANNELS", "dsads_features", "read_dsads", "read_dsads_raw_windows"]

DSADS_ACTIVITIES = {
    1: "sitting", 2: "standing", 3: "lying on back", 4: "lying on right side",
    5: "ascending stairs", 6: "descending stairs", 7: "standing in an elevator",
    8: "moving around in an elevator", 9: "walking in a parking lot",
    10: "walking on a treadmill 4 km/h flat", 11: "walking on a treadmill 4 km/h inclined",
    12: "running on a treadmill 8 km/h", 13: "exercising on a stepper",
    14: "exercising on a cross trainer", 15: "cycling on an exercise bike, horizontal",
    16: "cycling on an exercise bike, vertical", 17: "rowing", 18: "jumping",
    19: "playing basketball"}
_UNITS = ("T", "RA", "LA", "RL", "LL")
DSADS_CHANNELS = [f"{u}_{a}{s}" for u in _UNITS for s in ("acc", "gyro", "mag") for a in "xyz"]
DSADS_SENSORS = [f"{u}_{s}" for u in _UNITS for s in ("acc", "gyro", "mag")]
FEATURE_SETS = ("wang27", "stats9")
_PAT = re.compile(r"(?:^|/)a(\d\d)/p(\d)/s(\d\d)\.txt$")
ROWS, COLS = 125, 45
#: the channels of a raw window, in order: per unit its acc x, y, z then gyro x, y, z
RAW_CHANNELS = tuple(f"{u}_{s}_{a}" for u in _UNITS for s in ("acc", "gyro") for a in "xyz")
#: their columns in a segment file (unit k holds columns 9k .. 9k+8: acc, gyro, mag)
RAW_COLUMNS = tuple(9 * k + j for k in range(len(_UNITS)) for j in range(6))


def _check_features(features):
    if features not in FEATURE_SETS:
        raise ValueError(f"features must be one of {', '.join(FEATURE_SETS)}, got {features!r}")


def dsads_features(segs: np.ndarray, features: str = "wang27", **opts):
    """(X, names) of segments (S, T, 45) in the raw channel order.

    opts go to wang27 (ddof, peaks, mode_decimals, fft_norm, undefined)."""
    _check_features(features)
    if features == "stats9":
        if opts:
            raise TypeError(f"stats9 takes no options, got {sorted(opts)}")
        return stats9(segs), stats9_names(DSADS_CHANNELS)
    return wang27(magnitudes(segs), **opts), wang27_names(DSADS_SENSORS)


def _read_segments(path, columns, dtype, progress=None):
    """Every segment file under path, in sorted (activity, subject, segment) order.

    Returns (segs, hits): segs (S, 125, len(columns)) of dtype, the listed columns
    of each file (25 Hz samples as rows); hits [(activity, subject, segment,
    member)] of the S files. Raises FileNotFoundError / DataFileError naming the
    offending file; progress(i, n) is called after each file read."""
    with Source(path) as src:
        hits = []
        for n in src.names():
            m = _PAT.search(n)
            if m:
                hits.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), n))
        if not hits:
            raise FileNotFoundError(f"{path}: no DSADS segment files (data/aAA/pP/sSS.txt)")
        hits.sort()
        bad = [h for h in hits if not (1 <= h[0] <= 19 and 1 <= h[1] <= 8)]
        if bad:
            raise DataFileError(f"{src.where(bad[0][3])}: activity/subject out of range")
        segs = np.empty((len(hits), ROWS, len(columns)), dtype=dtype)
        for i, (_, _, _, n) in enumerate(hits):
            arr = parse_table(src.read_bytes(n), src.where(n), COLS, delimiter=",")
            if arr.shape[0] != ROWS:
                raise DataFileError(f"{src.where(n)}: {arr.shape[0]} rows, expected {ROWS}")
            if not np.isfinite(arr).all():
                raise DataFileError(f"{src.where(n)}: NaN or inf values")
            segs[i] = arr[:, list(columns)]
            if progress is not None:
                progress(i + 1, len(hits))
    return segs, hits


def _labelled(X, hits, feature_names, features) -> dict:
    """The reader's dict for samples X of the segment files hits (_read_segments)."""
    return {"X": X, "y": np.array([h[0] for h in hits], dtype=np.int64),
            "users": np.array([h[1] for h in hits], dtype=np.int64),
            "segment": np.array([h[2] for h in hits], dtype=np.int64),
            "feature_names": list(feature_names), "class_names": dict(DSADS_ACTIVITIES),
            "features": features}


def read_dsads(path, features: str = "wang27", feature_opts: dict | None = None,
               progress=None) -> dict:
    """Read every segment file. Returns dict X (float64 (N, 405), unscaled), y
    (activity 1..19), users (subject 1..8), segment (1..60), feature_names,
    class_names. features: "wang27" | "stats9"; feature_opts: options of
    wang27; progress(i, n) is called after each file read.
    Raises FileNotFoundError / DataFileError naming the offending file."""
    _check_features(features)
    segs, hits = _read_segments(path, range(COLS), np.float64, progress)
    X, names = dsads_features(segs, features, **(feature_opts or {}))
    return _labelled(X, hits, names, features)


def read_dsads_raw_windows(path, progress=None) -> dict:
    """Every segment file as a window of the raw signals: read_dsads's dict (same
    samples, order, y, users, segment) with X float32 (N, 30, 125): the 125 samples
    (5 s at 25 Hz) of the channels RAW_CHANNELS (per unit acc x, y, z, then gyro
    x, y, z, in the file's units, unfiltered), feature_names the 30 channel names
    and features "raw"."""
    segs, hits = _read_segments(path, RAW_COLUMNS, np.float32, progress)
    return _labelled(segs.transpose(0, 2, 1).copy(), hits, RAW_CHANNELS, "raw")
