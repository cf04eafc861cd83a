"""The shipped HAPT-561 file (intsim/data/hapt561.npz): writer and reader.

Content: the UNSCALED 561 features of every window of all 30 HAPT users (as
computed by ``hapt.hapt_features_from_raw`` from the raw signals), with each
window's activity, user and experiment. Scaling is fit per split at load time.

Storage (to fit in < 8 MB): every feature column is quantized uniformly to
``bits`` = 14 bits over its own [min, max] over all windows:
q = round((x - min) / (max - min) * (2^bits - 1)); decoding gives
min + q * (max - min) / (2^bits - 1). Columns whose values are all integers
(maxInds) are rounded back to integers on decoding (exact). The maximum error
per value is (max - min) / (2 * (2^14 - 1)), i.e. 3.05e-5 of the column's
range: after the [-1, 1] min-max scaling of a split that is at most
6.1e-5 * (full range / training range); measured 1.3e-4 for the paper's HAPT
split (max over all values, train and test) -- far below the 4-bit input
quantization step (2/15). The shipped file: 10929 windows, 7,715,863 bytes.
The quantized matrix is stored feature-major as two byte planes (high, low)
compressed with xz (LZMA2 preset 9e, CRC64 check, so corruption is detected).
The file is a zip of .npy members (readable with np.load) written with fixed
timestamps and member order, so the same input gives the same bytes; it is
written to a temporary file and renamed (atomic).
"""
from __future__ import annotations

import io
import lzma
import os
import tempfile
import zipfile
from importlib import resources

import numpy as np

from .common import DataFileError
from .hapt import HaptFeatures

__all__ = ["EMBEDDED_NAME", "embedded_path", "write_hapt_npz", "read_hapt_npz",
           "quantize_columns", "dequantize_columns"]

EMBEDDED_NAME = "hapt561.npz"
FORMAT_VERSION = 1
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def embedded_path() -> str:
    """Filesystem path of the shipped hapt561.npz."""
    return str(resources.files("intsim.data").joinpath(EMBEDDED_NAME))


def quantize_columns(X: np.ndarray, bits: int):
    """X (N, F) float -> (q uint16 (N, F), mn float64 (F,), mx float64 (F,), integral bool (F,))."""
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be in 2..16, got {bits}")
    X = np.asarray(X, dtype=np.float64)
    if not np.isfinite(X).all():
        raise ValueError("features contain NaN or inf")
    mn, mx = X.min(axis=0), X.max(axis=0)
    rg = np.where(mx > mn, mx - mn, 1.0)
    q = np.round((X - mn) / rg * (2 ** bits - 1)).astype(np.uint16)
    integral = np.all(X == np.round(X), axis=0)
    return q, mn, mx, integral


def dequantize_columns(q, mn, mx, integral, bits: int) -> np.ndarray:
    """Inverse of quantize_columns (float64 (N, F))."""
    rg = np.where(mx > mn, mx - mn, 0.0)
    X = mn + q.astype(np.float64) * (rg / (2 ** bits - 1))
    return np.where(integral, np.round(X), X)


def _npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


def _small_int(a, what) -> np.ndarray:
    """Store ids compactly: int16 (-1 allowed for unknown experiments)."""
    a = np.asarray(a, dtype=np.int64)
    if a.size and (a.min() < -1 or a.max() > 32767):
        raise ValueError(f"{what} ids out of the int16 range")
    return a.astype(np.int16)


def write_hapt_npz(feats: HaptFeatures, out, bits: int = 14) -> dict:
    """Write features to `out` reproducibly and atomically; returns a summary dict
    (bytes, windows, max_abs_error per unit of column range)."""
    X = np.asarray(feats["X"], dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 561:
        raise ValueError(f"expected (N, 561) features, got {X.shape}")
    q, mn, mx, integral = quantize_columns(X, bits)
    planes = np.concatenate([(q.T >> 8).astype(np.uint8).ravel(),
                             (q.T & 0xFF).astype(np.uint8).ravel()])
    blob = lzma.compress(planes.tobytes(), format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64,
                         preset=9 | lzma.PRESET_EXTREME)
    rec = dequantize_columns(q, mn, mx, integral, bits)
    rg = np.where(mx > mn, mx - mn, 1.0)
    err = float(np.max(np.abs(rec - X) / rg))
    cls = sorted(feats["class_names"])
    members = {
        "format_version": np.int64(FORMAT_VERSION),
        "bits": np.int64(bits),
        "shape": np.array(X.shape, dtype=np.int64),
        "features_xz": np.frombuffer(blob, dtype=np.uint8),
        "feat_min": mn, "feat_max": mx, "feat_integral": integral,
        "y": _small_int(feats["y"], "y"),
        "users": _small_int(feats["users"], "users"),
        "experiments": _small_int(feats["experiments"], "experiments"),
        "feature_names": np.array(feats["feature_names"], dtype=str),
        "class_ids": np.array(cls, dtype=np.int64),
        "class_names": np.array([feats["class_names"][c] for c in cls], dtype=str),
    }
    out = os.fspath(out)
    d = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".hapt561-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
            for name, arr in members.items():
                info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
                info.external_attr = 0o644 << 16
                info.create_system = 3
                z.writestr(info, _npy_bytes(arr))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return {"bytes": os.path.getsize(out), "windows": int(X.shape[0]), "bits": bits,
            "max_abs_error_per_range": err}


def read_hapt_npz(path=None) -> HaptFeatures:
    """Read a file written by write_hapt_npz (default: the shipped one).

    Raises FileNotFoundError / DataFileError naming the file on any problem.
    """
    path = embedded_path() if path is None else os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            m = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, EOFError
        raise DataFileError(f"{path}: not a readable npz file ({type(e).__name__}: {e})") from None
    need = ["format_version", "bits", "shape", "features_xz", "feat_min", "feat_max",
            "feat_integral", "y", "users", "experiments", "feature_names", "class_ids",
            "class_names"]
    missing = [k for k in need if k not in m]
    if missing:
        raise DataFileError(f"{path}: missing members {missing}")
    if int(m["format_version"]) != FORMAT_VERSION:
        raise DataFileError(f"{path}: format version {int(m['format_version'])}, "
                            f"expected {FORMAT_VERSION}")
    n, f = (int(v) for v in m["shape"])
    bits = int(m["bits"])
    try:
        raw = lzma.decompress(m["features_xz"].tobytes(), format=lzma.FORMAT_XZ)
    except lzma.LZMAError as e:
        raise DataFileError(f"{path}: corrupt compressed features ({e})") from None
    if len(raw) != 2 * n * f:
        raise DataFileError(f"{path}: {len(raw)} feature bytes, expected {2 * n * f}")
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(2, f, n)
    q = ((planes[0].astype(np.uint16) << 8) | planes[1]).T
    for k in ("y", "users", "experiments"):
        if m[k].shape != (n,):
            raise DataFileError(f"{path}: member {k} has shape {m[k].shape}, expected ({n},)")
    if m["feat_min"].shape != (f,) or len(m["feature_names"]) != f:
        raise DataFileError(f"{path}: feature metadata does not match {f} features")
    X = dequantize_columns(q, m["feat_min"], m["feat_max"], m["feat_integral"], bits)
    return HaptFeatures(X=X, y=m["y"].astype(np.int64), users=m["users"].astype(np.int64),
                        experiments=m["experiments"].astype(np.int64),
                        feature_names=[str(s) for s in m["feature_names"]],
                        class_names={int(i): str(s) for i, s in
                                     zip(m["class_ids"], m["class_names"])},
                        origin=f"embedded:{path}")
