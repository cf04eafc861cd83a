"""DSADS (UCI "Daily and Sports Activities") raw reader: 405 features per segment.

Official layout: data/aAA/pP/sSS.txt (AA = 01..19 activity, P = 1..8 subject,
SS = 01..60 segment), each 125 rows (5 s at 25 Hz) x 45 comma-separated
columns = 5 units (T torso, RA right arm, LA left arm, RL right leg, LL left
leg) x 9 channels (x/y/z acc, gyro, mag). One segment is one sample; its
features are ``stats9`` of the 45 channels (405). The root may be the folder
holding data/, data/ itself, or a zip (any leading folder). Files are read in
sorted (activity, subject, segment) order.
"""
from __future__ import annotations

import re

import numpy as np

from .common import DataFileError, Source, parse_table
from .stats9 import stats9, stats9_names

__all__ = ["DSADS_ACTIVITIES", "DSADS_CHANNELS", "read_dsads"]

DSADS_ACTIVITIES = {
    1: "sitting", 2: "standing", 3: "lying on back", 4: "lying on right side",
    5: "ascending stairs", 6: "descending stairs", 7: "standing in an elevator",
    8: "moving around in an elevator", 9: "walking in a parking lot",
    10: "walking on a treadmill 4 km/h flat", 11: "walking on a treadmill 4 km/h inclined",
    12: "running on a treadmill 8 km/h", 13: "exercising on a stepper",
    14: "exercising on a cross trainer", 15: "cycling on an exercise bike, horizontal",
    16: "cycling on an exercise bike, vertical", 17: "rowing", 18: "jumping",
    19: "playing basketball"}
DSADS_CHANNELS = [f"{u}_{a}{s}" for u in ("T", "RA", "LA", "RL", "LL")
                  for s in ("acc", "gyro", "mag") for a in "xyz"]
_PAT = re.compile(r"(?:^|/)a(\d\d)/p(\d)/s(\d\d)\.txt$")
ROWS, COLS = 125, 45


def read_dsads(path) -> dict:
    """Read every segment file. Returns dict X (float64 (N, 405), unscaled), y
    (activity 1..19), users (subject 1..8), feature_names, class_names.
    Raises FileNotFoundError / DataFileError naming the offending file."""
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
        segs = np.empty((len(hits), ROWS, COLS))
        for i, (_, _, _, n) in enumerate(hits):
            arr = parse_table(src.read_bytes(n), src.where(n), COLS, delimiter=",")
            if arr.shape[0] != ROWS:
                raise DataFileError(f"{src.where(n)}: {arr.shape[0]} rows, expected {ROWS}")
            if not np.isfinite(arr).all():
                raise DataFileError(f"{src.where(n)}: NaN or inf values")
            segs[i] = arr
    return {"X": stats9(segs), "y": np.array([h[0] for h in hits], dtype=np.int64),
            "users": np.array([h[1] for h in hits], dtype=np.int64),
            "feature_names": stats9_names(DSADS_CHANNELS),
            "class_names": dict(DSADS_ACTIVITIES)}
