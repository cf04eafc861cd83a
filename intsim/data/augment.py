"""CIFAR training augmentation on whole batches (docs/paper.md section 11), vectorised.

Per image, in this order (PyCIL/torchvision order, on [0, 1] pixels): random
crop 32 from the image zero-padded by 4 (pad value 0 = black, before
normalisation), horizontal flip with p = 0.5, brightness factor
U[1 - 63/255, 1 + 63/255] then clip to [0, 1]. The input batch is normalised
float32, so it is un-normalised first and normalised again at the end.
Random draws, in this order, from the Generator: crop offsets y, x
(integers 0..2*pad), flip flags, brightness factors.
"""
from __future__ import annotations

import numpy as np

from .cifar import CIFAR100_MEAN, CIFAR100_STD

__all__ = ["augment_cifar"]


def augment_cifar(xb: np.ndarray, rng: np.random.Generator, *, mean=CIFAR100_MEAN,
                  std=CIFAR100_STD, pad: int = 4, brightness: float = 63 / 255,
                  flip: bool = True) -> np.ndarray:
    """xb: float32 (B, C, H, W) normalised; returns a new augmented float32 batch."""
    xb = np.asarray(xb)
    if xb.ndim != 4 or xb.shape[1] != len(mean):
        raise ValueError(f"expected (B, {len(mean)}, H, W), got {xb.shape}")
    B, C, H, W = xb.shape
    m = np.asarray(mean, np.float32)[:, None, None]
    s = np.asarray(std, np.float32)[:, None, None]
    x = xb.astype(np.float32) * s + m
    p = np.zeros((B, C, H + 2 * pad, W + 2 * pad), np.float32)
    p[:, :, pad:pad + H, pad:pad + W] = x
    oy = rng.integers(0, 2 * pad + 1, size=B)
    ox = rng.integers(0, 2 * pad + 1, size=B)
    rows = oy[:, None] + np.arange(H)
    cols = ox[:, None] + np.arange(W)
    if flip:
        f = rng.random(B) < 0.5
        cols = np.where(f[:, None], cols[:, ::-1], cols)
    out = p[np.arange(B)[:, None, None, None], np.arange(C)[None, :, None, None],
            rows[:, None, :, None], cols[:, None, None, :]]
    if brightness > 0:
        fac = rng.uniform(1 - brightness, 1 + brightness, size=B).astype(np.float32)
        out = np.clip(out * fac[:, None, None, None], 0.0, 1.0)
    return ((out - m) / s).astype(np.float32)
