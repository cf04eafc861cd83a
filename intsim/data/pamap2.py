"""PAMAP2 (UCI "PAMAP2 Physical Activity Monitoring") raw reader: 243 features per window.

Official layout: Protocol/subject101.dat .. subject109.dat, 54 space-separated
columns at 100 Hz: timestamp, activityID (0 = transient, dropped), heart rate,
then 3 IMUs (hand, chest, ankle) x 17: temperature, acc +-16 g (3),
acc +-6 g (3), gyro (3), magnetometer (3), orientation (4, invalid).
Channels used: per IMU acc16, gyro, mag = 27 channels.

Feature pipelines (option ``features``):
  - "wang27" (default): Jindong Wang's 27 features (intsim.data.wang27) of the
    9 sensor magnitudes sqrt(x^2+y^2+z^2), in the authors' order: IMUs hand
    (wrist), chest, ankle, each [acc16, gyro, mag] -> 3 x 3 x 27 = 243 columns;
  - "stats9": intsim's earlier stand-in, 9 statistics of the 27 raw channels.

Choices (the description and the authors' files leave them open):
  - subjects are numbered 1..9 (subject10X -> X), so the paper's removals read
    "users 3, 4, 9";
  - missing values (NaN) of a used channel (option ``nan``):
    "interpolate" (default) fills them by linear interpolation over the file's
    rows (nearest valid value at the edges) before windowing, so the time grid
    stays regular; "drop" removes every row with a NaN in a used channel
    first (windows may then span the removed rows). The heart-rate column is
    not used. A used channel that is NaN throughout a file is an error;
  - windows: 512 samples (5.12 s) with step 256 (50 % overlap, Wang's
    sizeStep 0.5), inside one contiguous run of rows with the same non-zero
    activity (a window never straddles labels; incomplete tails are dropped);
    both are options of read_pamap2;
  - the +-16 g accelerometer (the dataset readme recommends it);
  - only Protocol/ is read (Optional/ holds other activities); files are read in
    subject order, windows in time order.

Raw windows (read_pamap2_raw_windows, ``--features raw``): the same windows
(window, step, nan and the label rule above) as float32 (18, window) arrays of
the signals, channels RAW_CHANNELS: per IMU hand, chest, ankle its +-16 g
accelerometer x, y, z then gyroscope x, y, z (the magnetometers are dropped).
"""
from __future__ import annotations

import re

import numpy as np

from .common import DataFileError, Source, parse_table
from .stats9 import stats9, stats9_names
from .wang27 import magnitudes, wang27, wang27_names

__all__ = ["PAMAP2_ACTIVITIES", "PAMAP2_CHANNELS", "PAMAP2_COLUMNS", "PAMAP2_SENSORS",
           "FEATURE_SETS", "RAW_CHANNELS", "read_pamap2", "read_pamap2_raw_windows"]

PAMAP2_ACTIVITIES = {
    1: "lying", 2: "sitting", 3: "standing", 4: "walking", 5: "running", 6: "cycling",
    7: "Nordic walking", 9: "watching TV", 10: "computer work", 11: "car driving",
    12: "ascending stairs", 13: "descending stairs", 16: "vacuum cleaning", 17: "ironing",
    18: "folding laundry", 19: "house cleaning", 20: "playing soccer", 24: "rope jumping"}
_IMUS = (("hand", 3), ("chest", 20), ("ankle", 37))
PAMAP2_COLUMNS = [o + k for _, o in _IMUS for k in (1, 2, 3, 7, 8, 9, 10, 11, 12)]
PAMAP2_CHANNELS = [f"{imu}_{s}{a}" for imu, _ in _IMUS for s in ("acc16", "gyro", "mag")
                   for a in "xyz"]
PAMAP2_SENSORS = [f"{imu}_{s}" for imu, _ in _IMUS for s in ("acc16", "gyro", "mag")]
FEATURE_SETS = ("wang27", "stats9")
NAN_MODES = ("interpolate", "drop")
_PAT = re.compile(r"(?:^|/)Protocol/subject1(\d\d)\.dat$")
NCOLS = 54
#: the channels of a raw window, in order: per IMU its acc16 x, y, z then gyro x, y, z
RAW_CHANNELS = tuple(f"{imu}_{s}_{a}" for imu, _ in _IMUS for s in ("acc16", "gyro")
                     for a in "xyz")
#: their positions among the used channels (PAMAP2_CHANNELS: per IMU acc16, gyro, mag)
RAW_SELECT = tuple(9 * k + j for k in range(len(_IMUS)) for j in range(6))


def _fill_nan(x: np.ndarray, where: str) -> np.ndarray:
    """Linear interpolation of NaNs along rows, per column (loop over columns)."""
    x = x.copy()
    t = np.arange(x.shape[0])
    for j in range(x.shape[1]):
        bad = np.isnan(x[:, j])
        if bad.all():
            raise DataFileError(f"{where}: channel {PAMAP2_CHANNELS[j]} is NaN in every row")
        if bad.any():
            x[bad, j] = np.interp(t[bad], t[~bad], x[~bad, j])
    return x


def _runs(act: np.ndarray, size: int, step: int):
    """(starts, labels) of windows inside runs of equal non-zero activity."""
    edges = np.flatnonzero(np.diff(act)) + 1
    b = np.concatenate([[0], edges])
    e = np.concatenate([edges, [act.size]])
    starts, labels = [], []
    for s0, e0 in zip(b, e):  # loop over runs (few hundred per file), not samples
        if act[s0] == 0 or e0 - s0 < size:
            continue
        s = s0 + step * np.arange((e0 - s0 - size) // step + 1)
        starts.append(s)
        labels.append(np.full(s.size, act[s0], dtype=np.int64))
    if not starts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(starts), np.concatenate(labels)


def _check_windows(window: int, step: int, nan: str) -> None:
    if window < 2 or step < 1:
        raise ValueError(f"bad window/step {window}/{step}")
    if nan not in NAN_MODES:
        raise ValueError(f"nan must be one of {', '.join(NAN_MODES)}, got {nan!r}")


def _subject_windows(path, window: int, step: int, nan: str, progress=None):
    """The windows of every Protocol file, one subject at a time, in subject order.

    Yields (subject 1..9, sig, starts, labels): sig float64 (rows, 27), the used
    channels PAMAP2_CHANNELS at 100 Hz with the NaNs handled (option nan), starts
    (W,) the first row in sig of each window of ``window`` rows (_runs: inside one
    run of equal non-zero activity, ``step`` apart), labels (W,) their activity
    ids; subjects without a full window are skipped. progress(i, n) is called
    after each subject file. Raises FileNotFoundError / DataFileError naming the
    file, and DataFileError when no file holds a full window."""
    any_window = False
    with Source(path) as src:
        hits = sorted((int(m.group(1)), n) for n in src.names() if (m := _PAT.search(n)))
        if not hits:
            raise FileNotFoundError(f"{path}: no PAMAP2 Protocol/subject1XX.dat files")
        for k, (subj, n) in enumerate(hits):
            where = src.where(n)
            arr = parse_table(src.read_bytes(n), where, NCOLS)
            act = arr[:, 1]
            if not (np.isfinite(act).all() and np.array_equal(act, np.round(act))):
                raise DataFileError(f"{where}: activity column holds non-integers")
            act = act.astype(np.int64)
            unknown = set(np.unique(act).tolist()) - set(PAMAP2_ACTIVITIES) - {0}
            if unknown:
                raise DataFileError(f"{where}: unknown activity ids {sorted(unknown)}")
            sig = arr[:, PAMAP2_COLUMNS]
            if nan == "drop":
                empty = np.flatnonzero(np.isnan(sig).all(axis=0))
                if empty.size:
                    raise DataFileError(f"{where}: channel {PAMAP2_CHANNELS[empty[0]]} is NaN "
                                        "in every row")
                ok = ~np.isnan(sig).any(axis=1)
                sig, act = sig[ok], act[ok]
            starts, lab = _runs(act, window, step)
            if progress is not None:
                progress(k + 1, len(hits))
            if not starts.size:
                continue
            if nan == "interpolate":
                sig = _fill_nan(sig, where)
            any_window = True
            yield subj, sig, starts, lab
    if not any_window:
        raise DataFileError(f"{path}: no labelled run holds a full {window}-sample window")


def _labelled(parts, feature_names, features) -> dict:
    """The reader's dict of the per-subject (X, labels, subject, starts) parts."""
    return {"X": np.concatenate([p[0] for p in parts]),
            "y": np.concatenate([p[1] for p in parts]),
            "users": np.concatenate([np.full(p[1].size, p[2], dtype=np.int64) for p in parts]),
            "start": np.concatenate([p[3] for p in parts]),
            "feature_names": list(feature_names), "class_names": dict(PAMAP2_ACTIVITIES),
            "features": features}


def read_pamap2(path, window: int = 512, step: int = 256, features: str = "wang27",
                nan: str = "interpolate", feature_opts: dict | None = None,
                progress=None) -> dict:
    """Read Protocol/subject1XX.dat files. Returns dict X (float64 (N, 243),
    unscaled), y (activity ids), users (1..9), start (first row of each window
    in its file, after any dropped rows), feature_names, class_names.
    features: "wang27" | "stats9"; nan: "interpolate" | "drop"; feature_opts:
    options of wang27; progress(i, n) is called after each subject file."""
    _check_windows(window, step, nan)
    if features not in FEATURE_SETS:
        raise ValueError(f"features must be one of {', '.join(FEATURE_SETS)}, got {features!r}")
    opts = dict(feature_opts or {})
    if features == "stats9" and opts:
        raise TypeError(f"stats9 takes no options, got {sorted(opts)}")
    parts = []
    for subj, sig, starts, lab in _subject_windows(path, window, step, nan, progress):
        idx = starts[:, None] + np.arange(window)
        if features == "wang27":
            X = wang27(magnitudes(sig)[idx], **opts)
        else:
            X = stats9(sig[idx])
        parts.append((X, lab, subj, starts))
    names = (wang27_names(PAMAP2_SENSORS) if features == "wang27"
             else stats9_names(PAMAP2_CHANNELS))
    return _labelled(parts, names, features)


def read_pamap2_raw_windows(path, window: int = 512, step: int = 256, nan: str = "interpolate",
                            progress=None) -> dict:
    """The windows of read_pamap2 (same window, step, nan, order, y, users, start) as
    the raw signals: X float32 (N, 18, window), ``window`` samples at 100 Hz (512:
    5.12 s) of the channels RAW_CHANNELS (per IMU acc16 x, y, z in m/s^2, then gyro
    x, y, z in rad/s, as recorded; NaNs handled as read_pamap2's, no filtering),
    feature_names the 18 channel names, features "raw"."""
    _check_windows(window, step, nan)
    parts = []
    for subj, sig, starts, lab in _subject_windows(path, window, step, nan, progress):
        raw = sig[:, list(RAW_SELECT)].astype(np.float32)              # (rows, 18)
        X = raw[starts[:, None] + np.arange(window)].transpose(0, 2, 1).copy()
        parts.append((X, lab, subj, starts))
    return _labelled(parts, RAW_CHANNELS, "raw")
