"""Readers for the HAR feature files the paper's authors' released code loads.

The released QuantizedCIL code (docs/data.md; /work/shared/docs/authors-har-data.md
sections 1 and 3) reads ready-made feature matrices instead of the official
downloads:

- DSADS ``dsads.csv`` (no header) or ``dsads.mat`` (variable ``data_dsads``):
  408 columns, 0-404 features, 405 the activity sequence (dropped), 406 the
  label (activity 1..19), 407 the subject (1..8);
- PAMAP2 ``pamap.mat`` (variable ``data_pamap``) or ``pamap.csv`` (no header):
  245 columns, 0-242 features, 243 the label (activityID), 244 the subject;
- HAPT ``hapt_combined.csv``: a header row, 561 feature columns plus ``AID``
  (label) and ``USER`` (subject), selected by name.

The features are already scaled to [-1, 1] by the files' makers. The readers
return them as they are (float64, unscaled by intsim) with the labels and
subjects in file order; removals, the subject split and any scaling are done by
``intsim.data.loader.har_dataset``. ``layout`` is "authors" and ``origin`` the
file read. Every failure is one line naming the file: FileNotFoundError for a
missing file, DataFileError for bad content (shape, missing columns or
variables, NaN/inf, non-integer labels or subjects).
"""
from __future__ import annotations

import csv
import glob
import os

import numpy as np

from .common import DataFileError, parse_table
from .dsads import DSADS_ACTIVITIES
from .hapt import HAPT_ACTIVITIES
from .pamap2 import PAMAP2_ACTIVITIES

__all__ = ["AUTHORS_FILES", "find_authors_file", "read_authors"]

#: dataset -> the authors' file names, in the order they are looked for
AUTHORS_FILES = {"dsads": ("dsads.csv", "dsads.mat"),
                 "pamap2": ("pamap.mat", "pamap.csv"),
                 "hapt": ("hapt_combined.csv",)}
_MAT_VARS = {"dsads": "data_dsads", "pamap2": "data_pamap"}
#: numeric matrices: (columns, feature columns, label column, subject column, dropped columns)
_MATRIX = {"dsads": (408, 405, 406, 407, (405,)),
           "pamap2": (245, 243, 243, 244, ())}
HAPT_FEATURES = 561
#: body-part blocks of 81 features (27 per sensor x 3 sensors), in column order
_BLOCKS = {"dsads": ("T", "RA", "LA", "RL", "LL"), "pamap2": ("hand", "chest", "ankle")}


def find_authors_file(name: str, path) -> str | None:
    """The authors' file of dataset ``name`` that ``path`` is or holds; None otherwise.

    path: a file with one of the dataset's extensions (.csv / .mat; any name),
    or a folder holding one of AUTHORS_FILES[name] directly or one folder
    down (looked for in that order, top level first). Nothing is read, and a
    path that does not exist gives None.
    """
    names = AUTHORS_FILES.get(name)
    if not names or path is None:
        return None
    p = os.fspath(path)
    if os.path.isfile(p):
        exts = {os.path.splitext(n)[1] for n in names}
        return p if os.path.splitext(p)[1].lower() in exts else None
    if os.path.isdir(p):
        for lead in ((), ("*",)):
            for n in names:
                hits = sorted(f for f in glob.glob(os.path.join(glob.escape(p), *lead, n))
                              if os.path.isfile(f))
                if hits:
                    return hits[0]
    return None


def read_authors(name: str, path) -> dict:
    """Read the authors' file ``path`` of dataset ``name`` (see the module doc).

    Returns dict X (float64 (N, F)), y (int64 labels), users (int64 subjects),
    feature_names, class_names, origin (the file), layout ("authors").
    """
    path = os.fspath(path)
    if name not in AUTHORS_FILES:
        raise ValueError(f"{name}: no authors' file layout (known: {', '.join(AUTHORS_FILES)})")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    if name == "hapt":
        X, y, users, fnames = _read_hapt_combined(path)
    else:
        X, y, users = _read_matrix(name, path)
        fnames = [f"{b}_f{j:02d}" for b in _BLOCKS[name] for j in range(81)]
    return {"X": X, "y": y, "users": users, "feature_names": fnames,
            "class_names": _class_names(name), "origin": path, "layout": "authors"}


def _class_names(name: str) -> dict:
    if name == "dsads":
        return dict(DSADS_ACTIVITIES)
    if name == "pamap2":
        return dict(PAMAP2_ACTIVITIES)
    return dict(HAPT_ACTIVITIES)


def _first_line(e: Exception) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


def _load_mat(path: str, var: str) -> np.ndarray:
    import scipy.io         # loaded on first use: it adds 0.2 s to every intsim command
    try:
        d = scipy.io.loadmat(path)
    except Exception as e:  # ValueError, NotImplementedError (v7.3), TypeError, OSError
        raise DataFileError(f"{path}: not a readable MATLAB .mat file ({_first_line(e)})") from None
    if var not in d:
        found = sorted(k for k in d if not k.startswith("__"))
        raise DataFileError(f"{path}: no variable {var!r} (found: {', '.join(found) or 'none'})")
    arr = np.asarray(d[var])
    if arr.ndim != 2 or arr.dtype.kind not in "biuf":
        raise DataFileError(f"{path}: variable {var!r} is a {arr.dtype} array of shape "
                            f"{arr.shape}, expected a 2-D numeric matrix")
    return arr.astype(np.float64)


def _ids(col: np.ndarray, path: str, what: str, lo: int) -> np.ndarray:
    if not np.array_equal(col, np.round(col)) or (col < lo).any():
        raise DataFileError(f"{path}: the {what} column must hold integers >= {lo}")
    return col.astype(np.int64)


def _check_finite(X: np.ndarray, path: str, names=None) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        col = names[c] if names is not None else f"column {c}"
        raise DataFileError(f"{path}: NaN or inf values ({int(bad.sum())}; first at data row "
                            f"{r + 1}, {col})")


def _read_matrix(name: str, path: str):
    ncols, nfeat, lcol, ucol, drop = _MATRIX[name]
    if path.lower().endswith(".mat"):
        arr = _load_mat(path, _MAT_VARS[name])
        if arr.shape[0] < 1:
            raise DataFileError(f"{path}: variable {_MAT_VARS[name]!r} has no rows")
        if arr.shape[1] != ncols:
            raise DataFileError(f"{path}: variable {_MAT_VARS[name]!r} has {arr.shape[1]} "
                                f"columns, expected {ncols}")
    else:
        with open(path, "rb") as f:
            data = f.read()
        arr = parse_table(data, path, ncols, delimiter=",")
    _check_finite(arr, path)
    keep = [c for c in range(nfeat + len(drop)) if c not in drop]
    X = arr[:, keep]
    y = _ids(arr[:, lcol], path, f"label (0-based column {lcol})", 0)
    users = _ids(arr[:, ucol], path, f"subject (0-based column {ucol})", 1)
    return X, y, users


def _read_hapt_combined(path: str):
    with open(path, "rb") as f:
        data = f.read()
    if not data.strip():
        raise DataFileError(f"{path}: file is empty")
    text = data.decode("utf-8-sig", errors="replace")
    head, _, body = text.partition("\n")
    try:
        header = [h.strip() for h in next(csv.reader([head]))]
    except (csv.Error, StopIteration) as e:
        raise DataFileError(f"{path}: unreadable header row ({e})") from None
    missing = [c for c in ("AID", "USER") if c not in header]
    if missing:
        raise DataFileError(f"{path}: no {' and no '.join(missing)} column in the header row "
                            f"(the label column must be named AID and the subject column USER)")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise DataFileError(f"{path}: duplicate column names in the header row: "
                            f"{', '.join(repr(d) for d in dup[:5])}")
    feat = [i for i, h in enumerate(header) if h not in ("AID", "USER")]
    if len(feat) != HAPT_FEATURES:
        hint = (" (an unnamed column is probably a pandas index: write the file with "
                "index=False)" if "" in header else "")
        raise DataFileError(f"{path}: {len(feat)} feature columns besides AID and USER, "
                            f"expected {HAPT_FEATURES}{hint}")
    if not body.strip():
        raise DataFileError(f"{path}: no data rows below the header")
    arr = parse_table(body.encode(), path, len(header), delimiter=",")
    _check_finite(arr, path, header)
    y = _ids(arr[:, header.index("AID")], path, "AID", 0)
    users = _ids(arr[:, header.index("USER")], path, "USER", 1)
    return arr[:, feat], y, users, [header[i] for i in feat]

