"""Exemplar memory: herding selection, reduction, class means, NME.

Conventions follow PyCIL / docs/paper.md sec 9: features are L2-normalised with
an epsilon of 1e-8 in the norm; herding picks, greedily and without
repetition, the sample that brings the running exemplar mean closest to the
class mean; old classes keep the first m of their herding order when the
per-class budget shrinks; class means for NME are means of the exemplars'
normalised features, normalised again.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-8


def l2_normalize(features: np.ndarray) -> np.ndarray:
    """Rows divided by (their L2 norm + 1e-8).

    features: (N, D) float. Returns float64 (N, D).
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"l2_normalize: features must be 2-D (N, D), got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("l2_normalize: features contain NaN or inf")
    return f / (np.linalg.norm(f, axis=1, keepdims=True) + EPS)


def herding(features: np.ndarray, m: int) -> np.ndarray:
    """Herding order of the first min(m, N) exemplars of one class.

    features: (N, D) L2-normalised features of the class (float).
    Step k = 1..m picks i (not yet picked) minimising
    d_i = ((mu - (f_i + S) / k) ** 2).sum() (the squared distance
    ||mu - (S + f_i) / k||^2, computed elementwise in float64 exactly so),
    where mu is the mean of all features and S the sum of the features
    already picked; ties go to the lowest index.
    Returns int64 indices (min(m, N),) in selection order.

    Each step first ranks all samples by the expanded form
    ||a||^2 - 2 f_i.a / k + ||f_i||^2 / k^2 (a = mu - S/k; one BLAS
    matrix-vector product instead of five passes over N x D), then evaluates
    d_i exactly as above on the samples within a tolerance of the smallest
    value: the tolerance is far above the rounding error of either form, so
    the exact minimum is always among them and the picks are those of the
    exhaustive computation, bit for bit (tests/test_cil_memory.py).
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"herding: features must be 2-D (N, D), got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("herding: features contain NaN or inf")
    if int(m) < 0:
        raise ValueError(f"herding: m must be >= 0, got {m}")
    f = np.ascontiguousarray(f)
    n = f.shape[0]
    m = min(int(m), n)
    mu = f.mean(axis=0) if n else np.zeros(f.shape[1])
    s = np.zeros(f.shape[1])
    out = np.empty(m, dtype=np.int64)
    if m == 0:
        return out
    fsq = np.einsum("ij,ij->i", f, f)
    taken = np.zeros(n, dtype=bool)
    # The two forms' rounding errors together stay below (5 D + 17) eps M^2,
    # M = |mu| + (max_i |f_i| + |S|) / k (2-norms); the exact minimum is kept
    # if tol >= twice that, and tol is about 900 times it.
    tol_unit = 1e-12 * (f.shape[1] + 4)
    f_max = np.sqrt(fsq.max())
    mu_norm = np.sqrt(mu @ mu)
    for k in range(1, m + 1):  # loop over exemplars, vectorised over samples
        a = mu - s / k
        approx = a @ a - (2.0 / k) * (f @ a) + fsq / (k * k)
        approx[taken] = np.inf
        tol = tol_unit * (mu_norm + (f_max + np.sqrt(s @ s)) / k) ** 2
        cand = np.flatnonzero(approx <= approx.min() + tol)
        d = ((mu - (f[cand] + s) / k) ** 2).sum(axis=1)
        i = int(cand[np.argmin(d)])
        out[k - 1] = i
        taken[i] = True
        s = s + f[i]
    return out


def class_mean(features: np.ndarray) -> np.ndarray:
    """Normalised mean of normalised features: (N, D) -> (D,) float64."""
    f = l2_normalize(features)
    if f.shape[0] == 0:
        raise ValueError("class_mean: no features (empty class)")
    mean = f.mean(axis=0)
    return mean / (np.linalg.norm(mean) + EPS)


def nme_predict(features: np.ndarray, means: np.ndarray, allowed=None) -> np.ndarray:
    """Nearest-mean-of-exemplars prediction.

    features: (N, D) raw backbone features (normalised here);
    means: (C, D) normalised class means; allowed: None, or (N, C) bool, the
    classes each sample may be predicted as (the task scenario's mask). Returns
    int64 (N,) class ids, argmin of squared Euclidean distance over the allowed
    classes (ties -> lowest class id).
    """
    f = l2_normalize(features)
    mu = np.asarray(means, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[1] != f.shape[1]:
        raise ValueError(f"nme_predict: means shape {mu.shape} does not match features {f.shape}")
    d = (f ** 2).sum(1)[:, None] - 2.0 * f @ mu.T + (mu ** 2).sum(1)[None, :]
    if allowed is not None:
        d = np.where(allowed, d, np.inf)
    return np.argmin(d, axis=1).astype(np.int64)


class ExemplarMemory:
    """Exemplars per class under a total budget.

    Holds, per class id c (remapped ids 0..C-1), the exemplar inputs X_c
    (m_c, ...) in herding order. The budget per class is total // classes_seen.
    """

    def __init__(self, total: int):
        if int(total) < 0:
            raise ValueError(f"ExemplarMemory: total must be >= 0, got {total}")
        self.total = int(total)
        self.exemplars: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self.exemplars.values())

    @property
    def classes(self) -> list[int]:
        return sorted(self.exemplars)

    def per_class(self, classes_seen: int) -> int:
        """Per-class budget m = total // classes_seen."""
        if classes_seen < 1:
            raise ValueError(f"ExemplarMemory.per_class: classes_seen must be >= 1, got {classes_seen}")
        return self.total // classes_seen

    def budget(self, classes_seen: int, task: int) -> int:
        """Exemplars each class (of each task, for a domain memory) keeps after task
        ``task`` (0-based): here per_class(classes_seen)."""
        return self.per_class(classes_seen)

    def class_exemplars(self, c: int) -> np.ndarray:
        """The exemplars of class c, (m_c, ...)."""
        return self.exemplars[int(c)]

    def reduce(self, m: int) -> None:
        """Keep only the first m exemplars (herding order) of every class."""
        for c in self.exemplars:
            self.exemplars[c] = self.exemplars[c][:m]

    def add_class(self, c: int, X: np.ndarray, features: np.ndarray, m: int,
                  task: int | None = None) -> np.ndarray:
        """Select m exemplars of class c by herding and store them.

        X: (N, ...) inputs of class c; features: (N, D) backbone features of X
        (normalised here); task: the task they come from (unused here: a class
        comes in one task). Returns the chosen indices into X.
        """
        if len(X) != len(features):
            raise ValueError(f"ExemplarMemory.add_class: {len(X)} inputs but {len(features)} features")
        idx = herding(l2_normalize(features), m)
        self.exemplars[int(c)] = np.ascontiguousarray(X[idx])
        return idx

    def data(self, classes=None) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) of all exemplars (or of the given classes), classes ascending.

        Returns X (M, ...) and y int64 (M,). Empty memory gives X=None, y=[].
        """
        cs = self.classes if classes is None else [int(c) for c in classes]
        cs = [c for c in cs if len(self.exemplars.get(c, ())) > 0]
        if not cs:
            return None, np.zeros(0, dtype=np.int64)
        X = np.concatenate([self.exemplars[c] for c in cs])
        y = np.concatenate([np.full(len(self.exemplars[c]), c, dtype=np.int64) for c in cs])
        return X, y

    def state_dict(self) -> dict:
        return {"total": self.total,
                "exemplars": {str(c): v for c, v in self.exemplars.items()}}

    def load_state_dict(self, d: dict) -> None:
        self.total = int(d["total"])
        self.exemplars = {int(c): np.asarray(v) for c, v in d["exemplars"].items()}
