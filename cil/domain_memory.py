"""The exemplar memory of the domain-incremental scenario: every class comes back in
every task, so exemplars are kept per (task, class) and the budget is shared by
all of them (docs/scenarios.md).

After task t (0-based) each (task, class) keeps m = total // (classes * (t + 1))
exemplars: the groups of earlier tasks keep the first m of their herding order,
and each class of task t is herded anew from task t's training data, so the
memory holds every domain seen. Herding and the class means are iCaRL's
(intsim.cil.memory); a class's mean is over its exemplars of every task.
"""
from __future__ import annotations

import numpy as np

from .memory import ExemplarMemory, herding, l2_normalize


class DomainExemplarMemory(ExemplarMemory):
    """Exemplars per (task, class) under a total budget; the interface of ExemplarMemory.

    ``exemplars`` maps (task, class) to the inputs (m, ...) in herding order.
    """

    def budget(self, classes_seen: int, task: int) -> int:
        """m = total // (classes_seen * (task + 1)): every (task, class) seen so far
        gets the same share."""
        return self.per_class(int(classes_seen) * (int(task) + 1))

    @property
    def classes(self) -> list[int]:
        return sorted({c for _, c in self.exemplars})

    def class_exemplars(self, c: int) -> np.ndarray:
        """The exemplars of class c from every task, task order: (m_c, ...)."""
        parts = [self.exemplars[k] for k in sorted(self.exemplars) if k[1] == int(c)]
        if not parts:
            raise KeyError(c)
        return np.concatenate(parts)

    def add_class(self, c: int, X: np.ndarray, features: np.ndarray, m: int,
                  task: int | None = None) -> np.ndarray:
        """Herd m exemplars of class c from task ``task``'s data (X: (N, ...), features:
        (N, D)) and store them as the group (task, c). Returns the chosen indices."""
        if task is None:
            raise ValueError("DomainExemplarMemory.add_class needs the task")
        if len(X) != len(features):
            raise ValueError(f"DomainExemplarMemory.add_class: {len(X)} inputs but "
                             f"{len(features)} features")
        idx = herding(l2_normalize(features), m)
        self.exemplars[(int(task), int(c))] = np.ascontiguousarray(X[idx])
        return idx

    def data(self, classes=None) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) of all exemplars (or of the given classes): classes ascending, each
        class's groups in task order. Empty memory gives X=None, y=[]."""
        cs = self.classes if classes is None else sorted(int(c) for c in classes)
        keys = [k for c in cs for k in sorted(self.exemplars)
                if k[1] == c and len(self.exemplars[k]) > 0]
        if not keys:
            return None, np.zeros(0, dtype=np.int64)
        X = np.concatenate([self.exemplars[k] for k in keys])
        y = np.concatenate([np.full(len(self.exemplars[k]), k[1], dtype=np.int64) for k in keys])
        return X, y

    def state_dict(self) -> dict:
        return {"total": self.total,
                "exemplars": {f"{t}:{c}": v for (t, c), v in self.exemplars.items()}}

    def load_state_dict(self, d: dict) -> None:
        self.total = int(d["total"])
        out = {}
        for k, v in d["exemplars"].items():
            t, _, c = str(k).partition(":")
            out[(int(t), int(c))] = np.asarray(v)
        self.exemplars = out
