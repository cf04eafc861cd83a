"""CIFAR-100 / CIFAR-10 "python version" reader (official tar.gz or extracted folder).

Files: CIFAR-100: train, test, meta (keys b"data" uint8 (N, 3072) channel-major
RGB, b"fine_labels", b"fine_label_names"); CIFAR-10: data_batch_1..5,
test_batch, batches.meta (b"labels", b"label_names"). Members are found under
any leading folder (e.g. "cifar-100-python/").

The pickles are read with a restricted unpickler that resolves only the globals
a numpy array pickle needs (numpy's _reconstruct, ndarray, dtype) and
_codecs.encode restricted to latin-1 (Python 3 protocol-2 bytes); any other
global (e.g. os.system) is refused with DataFileError.
"""
from __future__ import annotations

import codecs
import io
import os
import pickle
import posixpath
import tarfile

import numpy as np

from .common import DataFileError

__all__ = ["CIFAR100_MEAN", "CIFAR100_STD", "CIFAR10_MEAN", "CIFAR10_STD", "safe_unpickle",
           "read_cifar", "normalize_images"]

CIFAR100_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR100_STD = (0.2675, 0.2565, 0.2761)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover
    from numpy.core.multiarray import _reconstruct


def _latin1_encode(obj, encoding="latin1"):
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode only allowed on str with latin1")
    return codecs.encode(obj, "latin1")


_ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): _latin1_encode}


class _Restricted(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None


def safe_unpickle(data: bytes, where: str):
    """Unpickle bytes with the restricted unpickler (encoding="bytes")."""
    try:
        return _Restricted(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # UnpicklingError, EOFError, ValueError, ...
        raise DataFileError(f"{where}: not a valid CIFAR pickle ({type(e).__name__}: {e})") from None


class _Archive:
    """Members of a tar(.gz) or folder, found by base name under any prefix."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.path}: no such file or folder")
        self.tar = None
        if os.path.isfile(self.path):
            try:
                self.tar = tarfile.open(self.path, "r:*")
                self.members = {m.name: m for m in self.tar.getmembers() if m.isfile()}
            except (tarfile.TarError, EOFError, OSError, ValueError) as e:
                why = str(e).splitlines()[0].rstrip(":")     # tarfile lists every method tried
                raise DataFileError(f"{self.path}: not a readable tar archive ({why})") from None
        else:
            self.members = {}
            for d, _, files in os.walk(self.path):
                for f in files:
                    rel = os.path.relpath(os.path.join(d, f), self.path).replace(os.sep, "/")
                    self.members[rel] = None

    def close(self):
        if self.tar is not None:
            self.tar.close()

    def read(self, base: str) -> tuple[bytes, str]:
        hits = sorted((n for n in self.members if posixpath.basename(n) == base),
                      key=lambda n: (len(n), n))
        if not hits:
            raise FileNotFoundError(f"{self.path}: member {base!r} not found")
        n = hits[0]
        where = f"{self.path}:{n}" if self.tar is not None else os.path.join(self.path, n)
        if self.tar is None:
            with open(where, "rb") as f:
                return f.read(), where
        try:
            return self.tar.extractfile(self.members[n]).read(), where
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DataFileError(f"{where}: truncated or corrupt ({why})") from None


def _batch(data: bytes, where: str, label_key: bytes):
    d = safe_unpickle(data, where)
    if not isinstance(d, dict) or b"data" not in d or label_key not in d:
        raise DataFileError(f"{where}: expected a dict with b'data' and {label_key!r}")
    x, y = d[b"data"], d[label_key]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        raise DataFileError(f"{where}: b'data' must be a uint8 (N, 3072) array")
    y = np.asarray(y)
    if y.shape != (x.shape[0],) or y.dtype.kind not in "iu":
        raise DataFileError(f"{where}: {label_key!r} must hold {x.shape[0]} integer labels")
    return x.reshape(-1, 3, 32, 32), y.astype(np.int64)


def _names(data: bytes, where: str, key: bytes, n: int) -> dict:
    d = safe_unpickle(data, where)
    if not isinstance(d, dict) or key not in d:
        raise DataFileError(f"{where}: expected a dict with {key!r}")
    names = [s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s) for s in d[key]]
    if len(names) != n:
        raise DataFileError(f"{where}: {len(names)} class names, expected {n}")
    return dict(enumerate(names))


def read_cifar(path, variant: str = "cifar100") -> dict:
    """Read CIFAR. Returns dict X_train, X_test (uint8 (N, 3, 32, 32)), y_train,
    y_test (int64), class_names. variant: "cifar100" or "cifar10"."""
    arc = _Archive(path)
    try:
        if variant == "cifar100":
            Xtr, ytr = _batch(*arc.read("train"), b"fine_labels")
            Xte, yte = _batch(*arc.read("test"), b"fine_labels")
            names = _names(*arc.read("meta"), b"fine_label_names", 100)
        elif variant == "cifar10":
            parts = [_batch(*arc.read(f"data_batch_{i}"), b"labels") for i in range(1, 6)]
            Xtr = np.concatenate([p[0] for p in parts])
            ytr = np.concatenate([p[1] for p in parts])
            Xte, yte = _batch(*arc.read("test_batch"), b"labels")
            names = _names(*arc.read("batches.meta"), b"label_names", 10)
        else:
            raise ValueError(f"variant must be 'cifar100' or 'cifar10', got {variant!r}")
    finally:
        arc.close()
    nc = len(names)
    for y, part in ((ytr, "train"), (yte, "test")):
        if y.size and (y.min() < 0 or y.max() >= nc):
            raise DataFileError(f"{path}: {part} labels outside 0..{nc - 1}")
    return {"X_train": Xtr, "y_train": ytr, "X_test": Xte, "y_test": yte, "class_names": names}


def normalize_images(x: np.ndarray, mean, std) -> np.ndarray:
    """uint8 (N, C, H, W) -> float32 (x/255 - mean) / std per channel."""
    m = np.asarray(mean, np.float32)[:, None, None]
    s = np.asarray(std, np.float32)[:, None, None]
    return (x.astype(np.float32) * np.float32(1 / 255) - m) / s
