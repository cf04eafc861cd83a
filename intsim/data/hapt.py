"""HAPT (UCI "Smartphone-Based Recognition of Human Activities and Postural
Transitions") readers: the raw signals (RawData/) and the official 561-feature
files (Train/, Test/), from a folder or the official zip.

Raw layout: RawData/acc_expEE_userUU.txt, RawData/gyro_expEE_userUU.txt
(N rows x 3 columns, 50 Hz), RawData/labels.txt ("exp user activity first last",
rows from 0, both ends inclusive), activity_labels.txt ("id NAME"). The root may
be the folder holding RawData/, RawData/ itself, or a zip holding either (under
any leading folder such as "HAPT Data Set/").

Both readers return UNSCALED features with their labels and user ids; splitting,
removals and scaling are done by ``intsim.data.loader``.
"""
from __future__ import annotations

import posixpath

import numpy as np

from .common import DataFileError, Source, parse_table
from .har_features import cut_windows, feature_names_561, features_561, prepare_signals, \
    window_starts, WINDOW

__all__ = ["HAPT_ACTIVITIES", "HaptFeatures", "has_raw", "has_official_561",
           "read_activity_labels", "read_labels", "hapt_features_from_raw",
           "read_official_561", "read_hapt"]

HAPT_ACTIVITIES = {1: "WALKING", 2: "WALKING_UPSTAIRS", 3: "WALKING_DOWNSTAIRS",
                   4: "SITTING", 5: "STANDING", 6: "LAYING", 7: "STAND_TO_SIT",
                   8: "SIT_TO_STAND", 9: "SIT_TO_LIE", 10: "LIE_TO_SIT",
                   11: "STAND_TO_LIE", 12: "LIE_TO_STAND"}


class HaptFeatures(dict):
    """dict with keys X (float64 (N, 561), unscaled), y (int64 activity ids),
    users (int64), experiments (int64, -1 when unknown), feature_names (561 str),
    class_names ({id: name}), origin (str)."""


def _labels_rel(src: Source) -> str | None:
    return src.locate("RawData/labels.txt") or src.locate("labels.txt")


def has_raw(src: Source) -> bool:
    """True when src holds a RawData labels.txt."""
    return _labels_rel(src) is not None


def has_official_561(src: Source) -> bool:
    """True when src holds the official Train/X_train.txt."""
    return src.locate("Train/X_train.txt") is not None


def read_activity_labels(src: Source) -> dict:
    """{id: name} from activity_labels.txt when present, else the official names."""
    rel = src.locate("activity_labels.txt")
    if rel is None:
        return dict(HAPT_ACTIVITIES)
    text = src.read_bytes(rel).decode("utf-8", errors="replace")
    out = {}
    for i, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataFileError(f"{src.where(rel)}: line {i} is not 'id NAME': {line!r}")
        out[int(parts[0])] = parts[1]
    if not out:
        raise DataFileError(f"{src.where(rel)}: file is empty")
    return out


def read_labels(src: Source, rel: str) -> np.ndarray:
    """labels.txt -> int64 (n, 5): experiment, user, activity, first, last (validated)."""
    where = src.where(rel)
    arr = parse_table(src.read_bytes(rel), where, 5)
    if not np.array_equal(arr, np.round(arr)):
        raise DataFileError(f"{where}: non-integer entries")
    lab = arr.astype(np.int64)
    bad = np.flatnonzero((lab[:, 0] < 1) | (lab[:, 1] < 1) | (lab[:, 2] < 1) | (lab[:, 3] < 0)
                         | (lab[:, 4] < lab[:, 3]))
    if bad.size:
        raise DataFileError(f"{where}: line {bad[0] + 1} is not 'exp user activity first last' "
                            f"with first <= last: {lab[bad[0]].tolist()}")
    # One user per experiment.
    exps, inv = np.unique(lab[:, 0], return_inverse=True)
    u_min = np.full(exps.size, np.iinfo(np.int64).max)
    u_max = np.full(exps.size, -1)
    np.minimum.at(u_min, inv, lab[:, 1])
    np.maximum.at(u_max, inv, lab[:, 1])
    if (u_min != u_max).any():
        e = exps[np.flatnonzero(u_min != u_max)[0]]
        raise DataFileError(f"{where}: experiment {e} is listed with several users")
    return lab


def hapt_features_from_raw(src: Source, progress=None) -> HaptFeatures:
    """Compute the 561 features of every full window in every labelled segment.

    Windows: 128 samples, step 64, restarting at each labelled segment (so
    windows never straddle labels or unlabelled rows). Windows are ordered by
    experiment, then segment, then start row. progress(i, n) is called per
    experiment if given. Raises FileNotFoundError / DataFileError naming the file.
    """
    def features(acc, gyro, starts):
        return features_561(cut_windows(prepare_signals(acc, gyro), starts, WINDOW))

    out = _segment_windows(src, features, progress)
    if not np.isfinite(out["X"]).all():  # should be impossible with finite inputs
        raise DataFileError(f"{src.path}: computed features hold NaN/inf")
    out["feature_names"] = feature_names_561()
    return out


def hapt_raw_windows_from_raw(src: Source, progress=None) -> HaptFeatures:
    """The raw signals of the same windows as :func:`hapt_features_from_raw`.

    X: float32 (N, 6, 128): channels acc x, y, z (g) then gyro x, y, z (rad/s),
    128 samples at 50 Hz (2.56 s), step 64 (50 % overlap), inside one labelled
    segment (a window that would cross a segment's end is dropped); no filtering.
    feature_names: the 6 channel names.
    """
    def raw(acc, gyro, starts):
        sig = np.concatenate([acc, gyro], axis=1).astype(np.float32)     # (rows, 6)
        return cut_windows(sig, starts, WINDOW).transpose(0, 2, 1).copy()

    out = _segment_windows(src, raw, progress)
    out["feature_names"] = list(RAW_CHANNELS)
    out["origin"] = out["origin"].replace("raw:", "raw-windows:", 1)
    return out


#: the channels of a raw window, in order
RAW_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


def _segment_windows(src: Source, per_experiment, progress=None) -> HaptFeatures:
    """The windows of every labelled segment of every experiment, made by
    ``per_experiment(acc (rows, 3), gyro (rows, 3), starts (W,)) -> X (W, ...)``;
    HaptFeatures without feature_names."""
    lrel = _labels_rel(src)
    if lrel is None:
        raise FileNotFoundError(f"{src.path}: no RawData/labels.txt (not a HAPT raw folder/zip)")
    lab = read_labels(src, lrel)
    rawdir = posixpath.dirname(lrel)
    names = read_activity_labels(src)
    unknown = sorted(set(np.unique(lab[:, 2]).tolist()) - set(names))
    if unknown:
        raise DataFileError(f"{src.where(lrel)}: activity ids {unknown} not in activity_labels")
    feats, ys, us, es = [], [], [], []
    exps = np.unique(lab[:, 0])
    for i, e in enumerate(exps):
        seg = lab[lab[:, 0] == e]
        u = int(seg[0, 1])
        sig = {}
        for kind in ("acc", "gyro"):
            rel = posixpath.join(rawdir, f"{kind}_exp{e:02d}_user{u:02d}.txt")
            sig[kind] = parse_table(src.read_bytes(rel), src.where(rel), 3)
            if not np.isfinite(sig[kind]).all():
                raise DataFileError(f"{src.where(rel)}: NaN or inf values")
            if seg[:, 4].max() >= sig[kind].shape[0]:
                raise DataFileError(
                    f"{src.where(rel)}: {sig[kind].shape[0]} rows but {src.where(lrel)} refers "
                    f"to row {seg[:, 4].max()} (truncated?)")
        if sig["acc"].shape != sig["gyro"].shape:
            raise DataFileError(f"{src.where(rawdir)}: acc/gyro of experiment {e} differ in "
                                f"length ({sig['acc'].shape[0]} vs {sig['gyro'].shape[0]} rows)")
        starts, act = [], []
        for _, _, a, first, last in seg:
            s = window_starts(int(first), int(last))
            starts.append(s)
            act.append(np.full(s.size, a, dtype=np.int64))
        starts = np.concatenate(starts)
        if starts.size:
            feats.append(per_experiment(sig["acc"], sig["gyro"], starts))
            ys.append(np.concatenate(act))
            us.append(np.full(starts.size, u, dtype=np.int64))
            es.append(np.full(starts.size, e, dtype=np.int64))
        if progress is not None:
            progress(i + 1, exps.size)
    if not feats:
        raise DataFileError(f"{src.where(lrel)}: no labelled segment holds a full window")
    return HaptFeatures(X=np.concatenate(feats), y=np.concatenate(ys), users=np.concatenate(us),
                        experiments=np.concatenate(es), class_names=names,
                        origin=f"raw:{src.path}")


def read_official_561(src: Source) -> HaptFeatures:
    """Official Train/ + Test/ 561-feature files, concatenated (train rows first).

    Files: {Train,Test}/X_{train,test}.txt (N x 561), y_*.txt (N x 1),
    subject_id_*.txt (N x 1). Feature names are this package's (same order as
    the official features.txt, see har_features).
    """
    xr = src.locate("Train/X_train.txt")
    if xr is None:
        raise FileNotFoundError(f"{src.path}: no Train/X_train.txt")
    root = posixpath.dirname(posixpath.dirname(xr))
    Xs, ys, us = [], [], []
    for part, sub in (("train", "Train"), ("test", "Test")):
        rel = lambda f: posixpath.join(root, sub, f)  # noqa: E731
        X = parse_table(src.read_bytes(rel(f"X_{part}.txt")), src.where(rel(f"X_{part}.txt")), 561)
        y = parse_table(src.read_bytes(rel(f"y_{part}.txt")), src.where(rel(f"y_{part}.txt")), 1)
        s = parse_table(src.read_bytes(rel(f"subject_id_{part}.txt")),
                        src.where(rel(f"subject_id_{part}.txt")), 1)
        for arr, f in ((y, f"y_{part}.txt"), (s, f"subject_id_{part}.txt")):
            if arr.shape[0] != X.shape[0]:
                raise DataFileError(f"{src.where(rel(f))}: {arr.shape[0]} rows but "
                                    f"X_{part}.txt has {X.shape[0]}")
            if not np.array_equal(arr, np.round(arr)) or (arr < 1).any():
                raise DataFileError(f"{src.where(rel(f))}: ids must be positive integers")
        if not np.isfinite(X).all():
            raise DataFileError(f"{src.where(rel(f'X_{part}.txt'))}: NaN or inf values")
        Xs.append(X)
        ys.append(y[:, 0].astype(np.int64))
        us.append(s[:, 0].astype(np.int64))
    y = np.concatenate(ys)
    return HaptFeatures(X=np.concatenate(Xs), y=y, users=np.concatenate(us),
                        experiments=np.full(y.size, -1, dtype=np.int64),
                        feature_names=feature_names_561(), class_names=read_activity_labels(src),
                        origin=f"official561:{src.path}")


def read_hapt_raw_windows(path, progress=None) -> HaptFeatures:
    """The raw (6, 128) windows of a HAPT raw folder or zip
    (:func:`hapt_raw_windows_from_raw`); FileNotFoundError without RawData/."""
    with Source(path) as src:
        if not has_raw(src):
            raise FileNotFoundError(f"{path}: no RawData/labels.txt: raw windows need the "
                                    f"HAPT raw download (RawData/ acc_*, gyro_*, labels.txt)")
        return hapt_raw_windows_from_raw(src, progress)


def read_hapt(path, source: str = "auto", progress=None) -> HaptFeatures:
    """Read HAPT features from a folder or zip.

    source: "raw" (compute from RawData), "561" (official feature files) or
    "auto" (raw when present, else the official 561 files).
    """
    with Source(path) as src:
        if source not in ("auto", "raw", "561"):
            raise ValueError(f"source must be 'auto', 'raw' or '561', got {source!r}")
        if source == "raw" or (source == "auto" and has_raw(src)):
            return hapt_features_from_raw(src, progress)
        if source == "561" or has_official_561(src):
            return read_official_561(src)
        raise FileNotFoundError(f"{path}: neither RawData/labels.txt nor Train/X_train.txt found")
