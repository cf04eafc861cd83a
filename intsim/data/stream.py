"""Class-incremental task streams (docs/paper.md section 9); the domain-incremental
ones are in intsim.data.domains (docs/scenarios.md)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import Dataset

__all__ = ["Task", "TaskStream", "paper_class_order"]


def paper_class_order(labels, seed: int) -> np.ndarray:
    """np.random.RandomState(seed).permutation(sorted unique labels) (the paper's order)."""
    lab = np.unique(np.asarray(labels, dtype=np.int64))
    return np.random.RandomState(seed).permutation(lab).astype(np.int64)


@dataclass
class Task:
    """One task. classes: remapped ids this task trains (int64; class-incremental:
    the new ones); seen: classes seen so far incl. this task (remapped ids
    0..seen-1); X_train/y_train: this task's training data; X_test/y_test: the
    test data of every task so far (cumulative); labels remapped (int64).
    orig_classes: original ids of `classes`. test_task: (N_test,) int64, the task
    each test sample belongs to (0..t); class_task: (seen,) int64, the task that
    brought each class (class-incremental streams; None when every task has every
    class)."""
    t: int
    classes: np.ndarray
    seen: int
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    orig_classes: np.ndarray
    test_task: np.ndarray | None = None
    class_task: np.ndarray | None = None


class TaskStream:
    """Split a Dataset into class-incremental tasks.

    dataset: Dataset with original label ids; init_classes: classes in task 0;
    inc_classes: classes per later task (the last task may hold fewer);
    seed: class-order seed; class_order: explicit order of original ids
    (overrides seed; must be a permutation of the dataset's classes).
    Deterministic: nothing is random beyond the class order.
    """

    def __init__(self, dataset: Dataset, init_classes: int, inc_classes: int, seed: int,
                 class_order=None):
        labels = np.unique(dataset.y_train)
        extra = np.setdiff1d(np.unique(dataset.y_test), labels)
        if extra.size:
            raise ValueError(f"test labels {extra.tolist()} have no training samples")
        if class_order is None:
            order = paper_class_order(labels, seed)
        else:
            order = np.asarray(class_order, dtype=np.int64)
            if order.ndim != 1 or not np.array_equal(np.sort(order), labels):
                raise ValueError(f"class_order must be a permutation of {labels.tolist()}")
        C = order.size
        if not (1 <= init_classes <= C) or inc_classes < 1:
            raise ValueError(f"bad init/inc classes {init_classes}/{inc_classes} for {C} classes")
        self.dataset = dataset
        self.seed = seed
        self.class_order = order
        self.num_classes = C
        self.init_classes = init_classes
        self.inc_classes = inc_classes
        self._bounds = [0, init_classes] + list(range(init_classes + inc_classes, C,
                                                      inc_classes)) + ([C] if C > init_classes else [])
        self._bounds = sorted(set(self._bounds))
        self.num_tasks = len(self._bounds) - 1
        lut = np.full(int(order.max()) + 1, -1, dtype=np.int64)
        lut[order] = np.arange(C)
        self._lut = lut
        self._ytr = lut[dataset.y_train]
        self._yte = lut[dataset.y_test]

    def task_classes(self, t: int) -> np.ndarray:
        """Remapped ids of task t's new classes."""
        return np.arange(self._bounds[t], self._bounds[t + 1], dtype=np.int64)

    def task(self, t: int) -> Task:
        if not 0 <= t < self.num_tasks:
            raise ValueError(f"task {t} out of range 0..{self.num_tasks - 1}")
        lo, hi = self._bounds[t], self._bounds[t + 1]
        tr = (self._ytr >= lo) & (self._ytr < hi)
        te = self._yte < hi
        d = self.dataset
        class_task = self.class_task(hi)
        return Task(t=t, classes=self.task_classes(t), seen=hi,
                    X_train=d.X_train[tr], y_train=self._ytr[tr],
                    X_test=d.X_test[te], y_test=self._yte[te],
                    orig_classes=self.class_order[lo:hi].copy(),
                    test_task=class_task[self._yte[te]], class_task=class_task)

    def class_task(self, seen: int) -> np.ndarray:
        """(seen,) int64: the task that brings each remapped class 0..seen-1."""
        return (np.searchsorted(self._bounds, np.arange(seen), side="right") - 1).astype(np.int64)

    def __iter__(self):
        return (self.task(t) for t in range(self.num_tasks))

    def __len__(self):
        return self.num_tasks
