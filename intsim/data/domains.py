"""Domain-incremental task streams (docs/scenarios.md): every task has every class,
and the inputs change from task to task.

- :class:`SubjectDomains` (activity data, HAPT, DSADS, PAMAP2): users arriving
  over time. The subjects are shuffled with ``np.random.default_rng(seed)``
  (sorted ids, then one permutation) and cut into ``num_tasks`` consecutive
  groups of sizes as equal as possible (``np.array_split``: the first groups
  get one more). Task t trains on the training samples of its subjects and is
  tested on their held-out samples, so the dataset must hold out data within
  every subject (``split="within-subject"``, intsim.data.common.within_subject_split).
- :class:`PermutedDomains` (any other data): Permuted MNIST as van de Ven &
  Tolias, "Three scenarios for continual learning" (2019), run it as their
  domain-incremental example. Every task, the first included,
  sees the whole training and test set with its own fixed permutation of the input
  positions: the features of (N, F) vectors, or the pixels of (N, C, H, W) images
  (the same permutation for every channel). The permutations are
  ``rng.permutation(P)`` for tasks 0, 1, ... from one ``np.random.default_rng(seed)``.

Labels are remapped to 0..C-1 in sorted order of the original ids (there is no
class order: every task has every class). ``task(t)`` gives task t's training data
and the test data of tasks 0..t, with ``test_task`` saying which task each test
sample belongs to.
"""
from __future__ import annotations

import numpy as np

from .common import Dataset
from .stream import Task

__all__ = ["DomainStream", "SubjectDomains", "PermutedDomains"]


class DomainStream:
    """What both domain streams share: the label map, the tasks and their checks.

    Sub-classes give ``_train(t) -> (X, y original ids)`` and ``_test(t)`` and
    ``describe() -> dict`` (what results.json records about the domains).
    """

    def __init__(self, dataset: Dataset, num_tasks: int, seed: int):
        if isinstance(num_tasks, bool) or int(num_tasks) < 1:
            raise ValueError(f"domain tasks must be >= 1, got {num_tasks!r}")
        labels = np.unique(dataset.y_train)
        extra = np.setdiff1d(np.unique(dataset.y_test), labels)
        if extra.size:
            raise ValueError(f"test labels {extra.tolist()} have no training samples")
        self.dataset = dataset
        self.seed = int(seed)
        self.num_tasks = int(num_tasks)
        self.class_order = labels.astype(np.int64)
        self.num_classes = int(labels.size)
        lut = np.full(int(labels.max()) + 1, -1, dtype=np.int64)
        lut[labels] = np.arange(labels.size)
        self._lut = lut

    def _check_classes(self) -> None:
        """Every task trains on every class (ValueError naming the first that does not)."""
        for t in range(self.num_tasks):
            missing = np.setdiff1d(self.class_order, np.unique(self._train(t)[1]))
            if missing.size:
                raise ValueError(f"task {t + 1} ({self.domain_name(t)}) has no training "
                                 f"samples of class(es) {missing.tolist()}; every task of the "
                                 f"domain scenario needs every class")

    def domain_name(self, t: int) -> str:
        """Task t's domain in a few words (error messages)."""
        return f"domain {t + 1}"

    def task(self, t: int) -> Task:
        if not 0 <= t < self.num_tasks:
            raise ValueError(f"task {t} out of range 0..{self.num_tasks - 1}")
        X, y = self._train(t)
        tests = [self._test(j) for j in range(t + 1)]
        C = self.num_classes
        return Task(t=t, classes=np.arange(C, dtype=np.int64), seen=C,
                    X_train=X, y_train=self._lut[y],
                    X_test=np.concatenate([Xj for Xj, _ in tests]),
                    y_test=self._lut[np.concatenate([yj for _, yj in tests])],
                    orig_classes=self.class_order.copy(),
                    test_task=np.concatenate([np.full(len(yj), j, np.int64)
                                              for j, (_, yj) in enumerate(tests)]),
                    class_task=None)

    def __iter__(self):
        return (self.task(t) for t in range(self.num_tasks))

    def __len__(self):
        return self.num_tasks


class SubjectDomains(DomainStream):
    """Domain-incremental activity data: each task is a group of subjects (see the
    module docstring). dataset: a HAR Dataset whose test subjects are among its
    training subjects (``split="within-subject"``)."""

    def __init__(self, dataset: Dataset, num_tasks: int, seed: int):
        super().__init__(dataset, num_tasks, seed)
        if dataset.users_train is None or dataset.users_test is None:
            raise ValueError("domains by subject need the subject of every sample")
        subjects = np.unique(dataset.users_train).astype(np.int64)
        outside = np.setdiff1d(np.unique(dataset.users_test), subjects)
        if outside.size:
            raise ValueError(f"test subjects {outside.tolist()} do not train: each task is "
                             f"tested on held-out data of its own subjects (split "
                             f"within-subject)")
        if self.num_tasks > subjects.size:
            raise ValueError(f"{self.num_tasks} tasks need at least as many subjects, the "
                             f"data has {subjects.size}")
        order = np.random.default_rng(self.seed).permutation(subjects)
        self.subjects = [np.sort(g).astype(np.int64) for g in np.array_split(order, self.num_tasks)]
        self._check_classes()

    def domain_name(self, t: int) -> str:
        return "subjects " + ", ".join(str(int(s)) for s in self.subjects[t])

    def _train(self, t):
        d = self.dataset
        rows = np.isin(d.users_train, self.subjects[t])
        return d.X_train[rows], np.asarray(d.y_train)[rows]

    def _test(self, t):
        d = self.dataset
        rows = np.isin(d.users_test, self.subjects[t])
        return d.X_test[rows], np.asarray(d.y_test)[rows]

    def describe(self) -> dict:
        """{"kind": "subjects", "subjects": [[subject ids of task t], ...]}."""
        return {"kind": "subjects", "subjects": [[int(s) for s in g] for g in self.subjects]}


def permute_positions(X: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """X with its input positions permuted: the features of (N, F) data, the pixels
    (last two axes) of images, the same permutation for every channel."""
    if X.ndim == 2:
        return np.ascontiguousarray(X[:, perm])
    flat = X.reshape(X.shape[:-2] + (-1,))
    return np.ascontiguousarray(flat[..., perm].reshape(X.shape))


def positions(X: np.ndarray) -> int:
    """The number of input positions a permutation acts on: features, or pixels."""
    return int(X.shape[1]) if X.ndim == 2 else int(X.shape[-2] * X.shape[-1])


class PermutedDomains(DomainStream):
    """Permuted inputs per task (see the module docstring); any Dataset."""

    def __init__(self, dataset: Dataset, num_tasks: int, seed: int):
        super().__init__(dataset, num_tasks, seed)
        rng = np.random.default_rng(self.seed)
        P = positions(dataset.X_train)
        self.permutations = [rng.permutation(P) for _ in range(self.num_tasks)]

    def _train(self, t):
        d = self.dataset
        return permute_positions(d.X_train, self.permutations[t]), np.asarray(d.y_train)

    def _test(self, t):
        d = self.dataset
        return permute_positions(d.X_test, self.permutations[t]), np.asarray(d.y_test)

    def describe(self) -> dict:
        """{"kind": "permuted", "positions": P} (the permutations follow from the seed)."""
        return {"kind": "permuted", "positions": positions(self.dataset.X_train)}
