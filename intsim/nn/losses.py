"""Losses in float32: softmax cross-entropy and the KD loss of docs/paper.md sec 9."""
import numpy as np

from intsim.errors import NonFiniteError


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _check_logits(logits):
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (B, C), got shape {logits.shape}")
    if logits.dtype.kind != "f":
        logits = logits.astype(np.float32)
    if not np.isfinite(logits).all():
        raise NonFiniteError("logits contain NaN or inf")
    return logits


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy.

    logits: (B, C) float; labels: (B,) ints in 0..C-1.
    Returns (loss: float, grad: (B, C) dL/dlogits, logits' dtype).
    """
    logits = _check_logits(logits)
    labels = np.asarray(labels)
    B, C = logits.shape
    if labels.shape != (B,) or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be ({B},) integers, got {labels.shape} {labels.dtype}")
    if B and (labels.min() < 0 or labels.max() >= C):
        raise ValueError(f"labels must lie in 0..{C - 1}")
    logp = _log_softmax(logits)
    rows = np.arange(B)
    loss = -float(logp[rows, labels].mean())
    grad = np.exp(logp)
    grad[rows, labels] -= 1
    grad /= B
    return loss, grad.astype(logits.dtype, copy=False)


def kd_loss(logits, old_logits, T=2.0):
    """Distillation loss KD(p, q) = -(1/B) sum softmax(q/T) log_softmax(p/T) (no T^2).

    logits: (B, C) current logits (p); old_logits: (B, C) old model's (q),
    treated as constants. Returns (loss: float, grad wrt logits (B, C)).
    """
    logits = _check_logits(logits)
    old_logits = _check_logits(old_logits)
    if logits.shape != old_logits.shape:
        raise ValueError(f"kd_loss shapes differ: {logits.shape} vs {old_logits.shape}")
    if not T > 0:
        raise ValueError(f"temperature T must be > 0, got {T}")
    B = logits.shape[0]
    logp = _log_softmax(logits / T)
    q = np.exp(_log_softmax(old_logits.astype(logits.dtype) / T))
    loss = -float((q * logp).sum() / B)
    grad = (np.exp(logp) - q) / (T * B)
    return loss, grad.astype(logits.dtype, copy=False)
