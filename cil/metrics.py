"""Continual-learning metrics (docs/paper.md sec 9, docs/scenarios.md). Accuracies
are in percent.

After each task t: top-1 accuracy on the test data of every task seen so far
(pooled); per-class accuracy; average incremental accuracy = mean over tasks;
last accuracy; forgetting F_t = mean over the classes seen at t of
(best accuracy of the class at any task <= t) - (its accuracy at t).

By task, from the accuracy matrix a[i][j] (accuracy on task j's test data
after training task i, j <= i; :func:`task_accuracies` gives row i): average
incremental accuracy (mean over i of the mean of row i), last (mean of the
last row), forgetting (Chaudhry et al. 2018) and backward transfer (Lopez-Paz
& Ranzato 2017); :func:`task_metrics` gives them all.
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


def summarize(accs, per_class_history, task_rows=None) -> dict:
    """{"acc": [...], "avg": float, "last": float, "forgetting": [...]}, and with
    ``task_rows`` (the rows of the accuracy matrix) "by_task": :func:`task_metrics`."""
    accs = [float(a) for a in accs]
    out = {"acc": accs, "avg": average_incremental(accs), "last": last(accs),
           "forgetting": forgetting(per_class_history)}
    if task_rows is not None:
        out["by_task"] = task_metrics(task_rows)
    return out


# ---------------------------------------------------------------- by task

def task_accuracies(pred, y, test_task, num_tasks: int) -> list:
    """One row of the accuracy matrix: accuracy (%) on the test samples of each task
    0..num_tasks-1 (test_task: (N,) int, the task each test sample belongs to); nan
    for a task without test samples."""
    pred, y = _check(pred, y)
    tt = np.asarray(test_task, dtype=np.int64)
    if tt.shape != y.shape:
        raise ValueError(f"test_task {tt.shape} and labels {y.shape} must have equal shapes")
    return [accuracy(pred[tt == j], y[tt == j]) for j in range(int(num_tasks))]


def _rows(matrix) -> list:
    """The accuracy matrix as float64 rows (None -> nan); row i must hold i + 1 tasks."""
    rows = []
    for i, row in enumerate(matrix):
        r = np.array([np.nan if v is None else v for v in row], dtype=np.float64)
        if r.ndim != 1 or r.size != i + 1:
            raise ValueError(f"accuracy matrix row {i} has {r.size} entries, expected {i + 1}")
        rows.append(r)
    if not rows:
        raise ValueError("accuracy matrix: no tasks")
    return rows


def _mean(values) -> float:
    """Mean of the non-nan values (nan when there is none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


def matrix_average(matrix) -> float:
    """Average incremental accuracy by task: (1/T) sum_i (1/(i+1)) sum_{j<=i} a[i][j]."""
    return _mean([_mean(r) for r in _rows(matrix)])


def matrix_forgetting(matrix) -> list:
    """Forgetting after each task i (Chaudhry et al. 2018, percentage points):
    F_i = mean over j < i of (max over l = j..i-1 of a[l][j]) - a[i][j]; F_0 = 0.
    Tasks whose accuracy is nan are skipped."""
    rows = _rows(matrix)
    out = [0.0]
    for i in range(1, len(rows)):
        f = []
        for j in range(i):
            before = [rows[l][j] for l in range(j, i) if not np.isnan(rows[l][j])]
            f.append(max(before) - rows[i][j] if before else np.nan)
        out.append(_mean(f))
    return out


def backward_transfer(matrix) -> float:
    """BWT after the last task T (Lopez-Paz & Ranzato 2017): mean over j < T of
    a[T][j] - a[j][j] (percentage points; 0 with one task)."""
    rows = _rows(matrix)
    T = len(rows) - 1
    return _mean([rows[T][j] - rows[j][j] for j in range(T)]) if T else 0.0


def task_metrics(matrix) -> dict:
    """{"matrix", "avg", "last", "forgetting", "forgetting_per_task", "bwt"} of an
    accuracy matrix (row i: accuracy on tasks 0..i after task i, %)."""
    rows = _rows(matrix)
    forg = matrix_forgetting(matrix)
    return {"matrix": [[float(v) for v in r] for r in rows], "avg": matrix_average(matrix),
            "last": _mean(rows[-1]), "forgetting": forg[-1], "forgetting_per_task": forg,
            "bwt": backward_transfer(matrix)}
