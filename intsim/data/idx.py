"""IDX reader (MNIST, Fashion-MNIST), gzipped or not.

Files: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
t10k-labels-idx1-ubyte, each optionally with ".gz". Header: two zero bytes, a
type byte (0x08 = unsigned byte, the only type accepted), the number of
dimensions, then one big-endian uint32 per dimension; then the data.
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from .common import DataFileError

__all__ = ["read_idx", "find_idx", "read_mnist_like", "MNIST_CLASSES", "FASHION_CLASSES"]

MNIST_CLASSES = {i: str(i) for i in range(10)}
FASHION_CLASSES = dict(enumerate(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]))


def read_idx(path) -> np.ndarray:
    """Read one IDX file (".gz" detected by content). Returns a uint8 array."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataFileError(f"{path}: truncated or corrupt gzip ({e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataFileError(f"{path}: bad IDX magic number")
    if data[2] != 0x08:
        raise DataFileError(f"{path}: IDX type 0x{data[2]:02x}, only unsigned byte (0x08) supported")
    nd = data[3]
    if nd < 1 or len(data) < 4 + 4 * nd:
        raise DataFileError(f"{path}: truncated IDX header")
    shape = tuple(int(v) for v in np.frombuffer(data, ">u4", nd, 4))
    n = int(np.prod(shape))
    body = len(data) - 4 - 4 * nd
    if body != n:
        raise DataFileError(f"{path}: {body} data bytes, header says {n} "
                            f"({'truncated' if body < n else 'trailing bytes'})")
    return np.frombuffer(data, np.uint8, n, 4 + 4 * nd).reshape(shape).copy()


def find_idx(folder, stem: str) -> str:
    """Path of stem or stem.gz under folder (searching subfolders)."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such folder")
    for d, _, files in sorted(os.walk(folder)):
        for f in (stem, stem + ".gz"):
            if f in files:
                return os.path.join(d, f)
    raise FileNotFoundError(f"{folder}: no {stem} or {stem}.gz")


def read_mnist_like(folder) -> dict:
    """X_train, X_test uint8 (N, 1, 28, 28); y_train, y_test int64."""
    out = {}
    for part, stem in (("train", "train"), ("test", "t10k")):
        ip = find_idx(folder, f"{stem}-images-idx3-ubyte")
        lp = find_idx(folder, f"{stem}-labels-idx1-ubyte")
        X, y = read_idx(ip), read_idx(lp)
        if X.ndim != 3:
            raise DataFileError(f"{ip}: expected 3 dimensions, got {X.ndim}")
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise DataFileError(f"{lp}: {y.shape} labels for {X.shape[0]} images in {ip}")
        if y.size and y.max() > 9:
            raise DataFileError(f"{lp}: labels outside 0..9")
        out[f"X_{part}"] = X[:, None]
        out[f"y_{part}"] = y.astype(np.int64)
    return out
