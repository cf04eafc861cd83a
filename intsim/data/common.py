"""Shared helpers for the dataset loaders: file sources, errors, text tables.

A *source* is a dataset root that is either a folder or a zip archive (the
official downloads are zips). Members are addressed by their path relative to
the root with "/" separators; inside a zip the root may sit below one or more
leading folders (e.g. "HAPT Data Set/"), which ``Source.locate`` finds.

Every failure names the file (``folder/file`` or ``archive.zip:member``) and
what is wrong: ``FileNotFoundError`` for a missing file, ``DataFileError`` (a
``ValueError``) for truncated or corrupt content.
"""
from __future__ import annotations

import glob
import io
import math
import os
import random
import zipfile
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["DataFileError", "Source", "parse_table", "Dataset", "first_per_class", "SPLITS",
           "SCALES", "first_appearance", "subject_split", "within_subject_split", "minmax_scale",
           "minmax_scale_channels"]


class DataFileError(ValueError):
    """A data file exists but is truncated, corrupt or not in the expected format."""


@dataclass
class Dataset:
    """One train/test split of a dataset.

    X_train, X_test: float32 features (N, F), or images (N, C, H, W) as uint8 or
    normalised float32. y_train, y_test: int64 ORIGINAL label ids (N,).
    users_train/users_test: int64 subject ids (N,) for HAR, else None.
    feature_names: list of F names (HAR) or None. class_names: {id: name}.
    info: free-form provenance (options used, subjects per split, ...).
    """
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    users_train: np.ndarray | None = None
    users_test: np.ndarray | None = None
    feature_names: list | None = None
    name: str = ""
    class_names: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def classes(self) -> np.ndarray:
        """Sorted original label ids present in train or test (int64)."""
        return np.unique(np.concatenate([self.y_train, self.y_test])).astype(np.int64)


def first_per_class(ds: Dataset, n: int, per_subject: bool = False) -> Dataset:
    """``ds`` with only the first ``n`` training samples of each class (file order);
    ``per_subject``: of each class of each subject (``users_train``).

    Classes with fewer samples keep all of theirs; the test set and the order
    of the kept samples are unchanged, so the result is deterministic. The
    kept count goes into ``info["per_class"]``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"per_class must be an integer >= 1, got {n!r}")
    y = np.asarray(ds.y_train)
    if per_subject and ds.users_train is None:
        raise ValueError("per_class per subject needs the subjects of the training samples")
    group = y if not per_subject else np.stack([np.asarray(ds.users_train), y], axis=1)
    keep = np.zeros(len(y), bool)
    for g in np.unique(group, axis=0):
        hit = (group == g) if not per_subject else np.all(group == g, axis=1)
        keep[np.flatnonzero(hit)[:int(n)]] = True
    users = None if ds.users_train is None else ds.users_train[keep]
    return replace(ds, X_train=ds.X_train[keep], y_train=y[keep], users_train=users,
                   info={**ds.info, "per_class": int(n)})


class Source:
    """Read-only access to a dataset folder or zip archive.

    path: folder or .zip file. Raises FileNotFoundError when it does not exist
    and DataFileError when a zip is corrupt.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.path}: no such file or folder")
        self.is_zip = os.path.isfile(self.path)
        self._zip = None
        self._names: list[str] = []
        if self.is_zip:
            try:
                self._zip = zipfile.ZipFile(self.path)
                self._names = [n for n in self._zip.namelist() if not n.endswith("/")]
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise DataFileError(f"{self.path}: not a readable zip archive ({e})") from None

    def close(self):
        if self._zip is not None:
            self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def where(self, rel: str) -> str:
        """Human-readable location of member rel (for error messages)."""
        return f"{self.path}:{rel}" if self.is_zip else os.path.join(self.path, rel)

    def names(self) -> list[str]:
        """All file members, relative paths with '/' separators (sorted)."""
        if self.is_zip:
            return sorted(self._names)
        out = []
        for d, _, files in os.walk(self.path):
            for f in files:
                rel = os.path.relpath(os.path.join(d, f), self.path)
                out.append(rel.replace(os.sep, "/"))
        return sorted(out)

    def locate(self, suffix: str, max_lead: int = 2) -> str | None:
        """Member path equal to suffix, or suffix below at most max_lead leading
        folders (shortest first, then alphabetical); None when absent."""
        if self.is_zip:
            cands = self._names
        else:
            cands = []
            for lead in range(max_lead + 1):
                pat = os.path.join(glob.escape(self.path), *(["*"] * lead), *suffix.split("/"))
                cands += [os.path.relpath(p, self.path).replace(os.sep, "/")
                          for p in glob.glob(pat) if os.path.isfile(p)]
        hits = [n for n in cands if n == suffix or (
            n.endswith("/" + suffix) and n[:-len(suffix) - 1].count("/") < max_lead)]
        return min(hits, key=lambda n: (len(n), n)) if hits else None

    def exists(self, rel: str) -> bool:
        if self.is_zip:
            return rel in self._names
        return os.path.isfile(os.path.join(self.path, rel))

    def read_bytes(self, rel: str) -> bytes:
        """Whole content of member rel; FileNotFoundError / DataFileError naming it."""
        if self.is_zip:
            if rel not in self._names:
                raise FileNotFoundError(f"{self.where(rel)}: missing from the archive")
            try:
                return self._zip.read(rel)
            except Exception as e:  # BadZipFile (CRC), zlib.error, EOFError, OSError
                raise DataFileError(f"{self.where(rel)}: corrupt archive member ({e})") from None
        p = os.path.join(self.path, rel)
        if not os.path.isfile(p):
            raise FileNotFoundError(f"{p}: no such file")
        with open(p, "rb") as f:
            return f.read()


def parse_table(data: bytes, where: str, ncols: int | None = None, *, delimiter=None,
                dtype=np.float64, min_rows: int = 1) -> np.ndarray:
    """Parse a whitespace- (or delimiter-) separated numeric text table.

    Returns a (rows, cols) array of dtype. Raises DataFileError naming `where`
    when the text is empty, has a non-numeric token, rows of differing width,
    or a width different from ncols. "NaN"/"nan" tokens parse as NaN.
    """
    if not data.strip():
        raise DataFileError(f"{where}: file is empty")
    try:
        arr = np.loadtxt(io.BytesIO(data), dtype=dtype, delimiter=delimiter, ndmin=2)
    except ValueError as e:
        raise DataFileError(f"{where}: not a numeric table ({e})") from None
    if arr.shape[0] < min_rows:
        raise DataFileError(f"{where}: {arr.shape[0]} rows, expected at least {min_rows}")
    if ncols is not None and arr.shape[1] != ncols:
        raise DataFileError(f"{where}: {arr.shape[1]} columns per row, expected {ncols}")
    return arr


#: the subject split modes (``har_dataset(split=...)``, ``--split``): the first three
#: hold out whole subjects (subject_split), "within-subject" the last windows of every
#: subject (within_subject_split)
SPLITS = ("paper", "sorted", "seeded", "within-subject")
#: the HAR feature scalings (``har_dataset(scale=...)``, ``--scale``): none keeps the
#: values as read; train-minmax maps each feature to [-1, 1] with the training
#: subjects' min/max (minmax_scale)
SCALES = ("none", "train-minmax")


def first_appearance(users) -> list[int]:
    """The distinct subject ids in order of their first appearance in ``users``."""
    u = np.asarray(users, dtype=np.int64)
    _, first = np.unique(u, return_index=True)
    return [int(x) for x in u[np.sort(first)]]


def subject_split(users, train_frac: float = 0.8, *, mode: str = "sorted", seed: int = 0,
                  train_users=None) -> tuple[np.ndarray, np.ndarray]:
    """Split subject ids into (train_ids, test_ids), both sorted int64 arrays.

    users: the subject id of every sample, in file order (after the removals).
    mode "paper": the released code's split, bit for bit: the subjects in
    order of first appearance in ``users``, ``random.Random(seed).sample(
    subjects, ceil(n_subjects * train_frac))`` train (Python's ``random``;
    the paper seeds it with the run seed), every other subject tests.
    mode "sorted": the n_train = ceil(train_frac * n_subjects) smallest ids
    train (the paper rounds up); mode "seeded": a np.random.default_rng(seed)
    permutation of the sorted ids, first n_train train. train_users overrides
    every mode (every other subject tests).
    """
    ids = np.unique(np.asarray(users, dtype=np.int64))
    if train_users is not None:
        tr = np.unique(np.asarray(train_users, dtype=np.int64))
        missing = np.setdiff1d(tr, ids)
        if missing.size:
            raise ValueError(f"train_users {missing.tolist()} not among subjects {ids.tolist()}")
        return tr, np.setdiff1d(ids, tr)
    if not 0.0 < train_frac <= 1.0:
        raise ValueError(f"train_frac must be in (0, 1], got {train_frac}")
    if mode == "paper":
        persons = first_appearance(users)
        # exactly the released code's expression (no rounding guard)
        tr = random.Random(int(seed)).sample(persons, math.ceil(len(persons) * train_frac))
        tr = np.array(sorted(tr), dtype=np.int64)
        return tr, np.setdiff1d(ids, tr)
    n_tr = int(np.ceil(round(train_frac * ids.size, 9)))
    if mode == "sorted":
        order = ids
    elif mode == "seeded":
        order = np.random.default_rng(seed).permutation(ids)
    elif mode == "within-subject":
        raise ValueError("split within-subject holds out samples of every subject, not "
                         "subjects (within_subject_split)")
    else:
        raise ValueError(f"split mode must be one of {', '.join(SPLITS)}, got {mode!r}")
    return np.sort(order[:n_tr]), np.sort(order[n_tr:])


def within_subject_split(y, users, train_frac: float = 0.8) -> np.ndarray:
    """(N,) bool, True for the training rows, when every subject both trains and tests.

    y, users: (N,) the class and the subject of every sample, in file order. Of the
    n samples of each (subject, class), the first ceil(train_frac * n) in file order
    train (subject_split's rounding: a group of 1 to 4 samples only trains at 0.8)
    and the rest test: for the layouts that list a subject's windows in recording
    order, its last windows of each activity (docs/data.md).
    """
    if not 0.0 < train_frac <= 1.0:
        raise ValueError(f"train_frac must be in (0, 1], got {train_frac}")
    y = np.asarray(y, dtype=np.int64)
    u = np.asarray(users, dtype=np.int64)
    if y.shape != u.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and subjects {u.shape} must be equal 1-D shapes")
    train = np.zeros(y.size, dtype=bool)
    for s in np.unique(u):
        for c in np.unique(y[u == s]):
            rows = np.flatnonzero((u == s) & (y == c))
            n_tr = int(np.ceil(round(train_frac * rows.size, 9)))
            train[rows[:n_tr]] = True
    return train


def minmax_scale(X_train: np.ndarray, X_test: np.ndarray, lo: float = -1.0, hi: float = 1.0):
    """Min-max scale each feature to [lo, hi], fit on X_train only.

    Constant training features map to the middle of the range (0 for [-1, 1]).
    Test values outside the training range are NOT clipped. Returns float32 copies.
    """
    mn = X_train.min(axis=0) if len(X_train) else np.zeros(X_train.shape[1])
    mx = X_train.max(axis=0) if len(X_train) else np.ones(X_train.shape[1])
    rng_ = (mx - mn).astype(np.float64)
    safe = np.where(rng_ > 0, rng_, 1.0)

    def f(X):
        z = (X.astype(np.float64) - mn) / safe
        z = np.where(rng_ > 0, z, 0.5)
        return (lo + (hi - lo) * z).astype(np.float32)
    return f(X_train), f(X_test)


def _channel_rows(X: np.ndarray) -> np.ndarray:
    """Windows (N, C, L) as rows of samples (N * L, C): one column per channel."""
    return X.transpose(0, 2, 1).reshape(-1, X.shape[1])


def _channel_windows(R: np.ndarray, like: np.ndarray) -> np.ndarray:
    """The inverse of _channel_rows: rows (N * L, C) back to windows shaped like ``like``
    (N, C, L), a contiguous copy."""
    n, c, length = like.shape
    return R.reshape(n, length, c).transpose(0, 2, 1).copy()


def minmax_scale_channels(X_train: np.ndarray, X_test: np.ndarray, lo: float = -1.0,
                          hi: float = 1.0):
    """Min-max scale windows (N, C, L) per channel to [lo, hi], fit on X_train only.

    Each of the C channels takes its min and max over all the training windows and
    their L samples (minmax_scale on the samples as rows), so a channel keeps its
    shape over time. Constant channels map to the middle of the range; test values
    are NOT clipped. Returns float32 copies, (N, C, L) like the inputs.
    """
    tr, te = minmax_scale(_channel_rows(X_train), _channel_rows(X_test), lo, hi)
    return _channel_windows(tr, X_train), _channel_windows(te, X_test)
