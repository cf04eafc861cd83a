"""Class-incremental metrics (docs/paper.md sec 9). Accuracies are in percent.

After each task t: top-1 accuracy on the test data of all classes seen so
far; per-class accuracy; average incremental accuracy = mean over tasks;
last accuracy; forgetting F_t = mean over the classes seen at t of
(best accuracy of the class at any task <= t) - (its accuracy at t).
"""
from __future__ import annotations

import numpy as np


def _check(pred, y):
    pred = np.asarray(pred)
    y = np.asarray(y)
    if pred.shape != y.shape or pred.ndim != 1:
        raise ValueError(f"predictions {pred.shape} and labels {y.shape} must be equal 1-D shapes")
    return pred.astype(np.int64), y.astype(np.int64)


def accuracy(pred, y) -> float:
    """Top-1 accuracy in percent; pred, y: (N,) ints. Empty -> nan."""
    pred, y = _check(pred, y)
    if y.size == 0:
        return float("nan")
    return float(100.0 * np.mean(pred == y))


def per_class_accuracy(pred, y, num_classes: int) -> np.ndarray:
    """(num_classes,) float64 accuracy in percent per true class; nan where a class has no samples."""
    pred, y = _check(pred, y)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"per_class_accuracy: labels outside 0..{num_classes - 1}")
    total = np.bincount(y, minlength=num_classes).astype(np.float64)
    hit = np.bincount(y[pred == y], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 100.0 * hit / total
    out[total == 0] = np.nan
    return out


def old_new_confusion(pred, y, n_old: int) -> dict:
    """How old-class test samples are confused with new classes (and back).

    Classes < n_old are old, the rest new. Returns ints old_total,
    old_as_new (old samples predicted as some new class), new_total,
    new_as_old, and old_as_new_pct (percent of old samples; nan if none).
    """
    pred, y = _check(pred, y)
    old = y < n_old
    old_as_new = int(np.sum(old & (pred >= n_old)))
    new_as_old = int(np.sum(~old & (pred < n_old)))
    n_o = int(old.sum())
    return {"old_total": n_o, "old_as_new": old_as_new,
            "new_total": int((~old).sum()), "new_as_old": new_as_old,
            "old_as_new_pct": float(100.0 * old_as_new / n_o) if n_o else float("nan")}


def average_incremental(accs) -> float:
    """Mean of the per-task accuracies (tasks 1..T)."""
    a = np.asarray(accs, dtype=np.float64)
    if a.size == 0:
        raise ValueError("average_incremental: no accuracies")
    return float(a.mean())


def last(accs) -> float:
    """Accuracy after the final task."""
    a = list(accs)
    if not a:
        raise ValueError("last: no accuracies")
    return float(a[-1])


def forgetting(per_class_history) -> list:
    """F_t for every task t, in percentage points.

    per_class_history: list over tasks of per-class accuracy arrays; entry t
    has one value per class seen at t (length non-decreasing). F_t = mean over
    those classes of max_{s<=t} acc_c(s) - acc_c(t), where s ranges over tasks
    at which c had been seen. Classes with nan accuracy (no test samples) are
    skipped. F_0 = 0.
    """
    out = []
    best = np.zeros(0)
    for t, acc in enumerate(per_class_history):
        acc = np.asarray(acc, dtype=np.float64)
        if acc.ndim != 1 or acc.size < best.size:
            raise ValueError(f"forgetting: task {t} has {acc.size} classes, fewer than before ({best.size})")
        nb = np.full(acc.size, -np.inf)
        nb[:best.size] = best
        best = np.fmax(nb, acc)
        valid = ~np.isnan(acc)
        out.append(float(np.mean(best[valid] - acc[valid])) if valid.any() else float("nan"))
    return out


def summarize(accs, per_class_history) -> dict:
    """{"acc": [...], "avg": float, "last": float, "forgetting": [...]}."""
    accs = [float(a) for a in accs]
    return {"acc": accs, "avg": average_incremental(accs), "last": last(accs),
            "forgetting": forgetting(per_class_history)}
