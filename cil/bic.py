"""BiC: Large Scale Incremental Learning (Wu et al. 2019), PyCIL convention.

One bias layer (alpha=1, beta=0) per task, applied in float to that task's
logit range: out[:, lo:hi] = alpha * z[:, lo:hi] + beta (docs/paper.md sec 9;
the bias layers stay float32 under every arithmetic).

From the second task on, v = int(val_ratio * memory / K_old) samples per
class are held out as a validation split (new classes from their training
data, old classes from the exemplars), drawn with the learner's Generator.
Stage 1 trains the model on the rest with (1-l)*CE(all logits) + l*KD,
l = K_old / K_total, the bias layers applied and in a second parameter group with
lr 0, as the released code (so they stay, except under FP134, whose lptorch SGD
gives every group the first group's lr).
Stage 2 trains only the newest bias layer's alpha, beta on the validation
split (same LR schedule and epochs), the model itself untouched.

Two behaviours of the authors' code are options of CILConfig:
bic_stage2_train_mode (True: the model runs in train mode during stage 2,
so BatchNorm uses batch statistics and updates its running stats) and
bic_stage2_softmax (True: stage 2 minimises CE of softmax(logits) instead
of CE of the logits; default False).
"""
from __future__ import annotations

import copy

import numpy as np

from intsim.nn import Parameter, cross_entropy

from .learner import Learner
from .registry import register_method


def bias_columns(num_classes: int, bounds, alpha, beta):
    """Per-column scale a (C,) and shift b (C,); columns outside every range get 1, 0."""
    a = np.ones(num_classes, dtype=np.float32)
    b = np.zeros(num_classes, dtype=np.float32)
    for (lo, hi), al, be in zip(bounds, alpha, beta):
        if not (0 <= lo < hi <= num_classes):
            raise ValueError(f"bias layer range {lo}:{hi} outside 0..{num_classes}")
        a[lo:hi] = al
        b[lo:hi] = be
    return a, b


class BiasLayers:
    """The stack of BiC bias layers of a model.

    Each layer i owns Parameters alpha_i, beta_i (shape (1,), float32) and a
    logit range [lo_i, hi_i). forward(z) caches z; backward(g) returns
    dL/dz = g * a and sets alpha_i.grad = sum(g * z over the range),
    beta_i.grad = sum(g over the range).
    """

    def __init__(self):
        self.bounds: list[tuple[int, int]] = []
        self.alphas: list[Parameter] = []
        self.betas: list[Parameter] = []
        self._z = None

    def __len__(self):
        return len(self.bounds)

    def add(self, lo: int, hi: int) -> None:
        """A new identity layer (alpha=1, beta=0) over logits lo:hi."""
        if not (0 <= lo < hi) or (self.bounds and lo < self.bounds[-1][1]):
            raise ValueError(f"BiasLayers.add: bad range {lo}:{hi} after {self.bounds}")
        i = len(self.bounds)
        self.bounds.append((int(lo), int(hi)))
        self.alphas.append(Parameter(np.ones(1, np.float32), name=f"bias_layers.{i}.alpha"))
        self.betas.append(Parameter(np.zeros(1, np.float32), name=f"bias_layers.{i}.beta"))

    def _ab(self, C):
        return bias_columns(C, self.bounds, [p.data[0] for p in self.alphas],
                            [p.data[0] for p in self.betas])

    def apply(self, z: np.ndarray) -> np.ndarray:
        """Bias-corrected logits (B, C) without caching (inference, old model)."""
        if not self.bounds:
            return z
        a, b = self._ab(z.shape[1])
        return (z * a + b).astype(z.dtype, copy=False)

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Bias-corrected logits (B, C); caches z for backward."""
        self._z = z
        return self.apply(z)

    def backward(self, g: np.ndarray) -> np.ndarray:
        """dL/dz (B, C); fills alpha.grad and beta.grad of every layer."""
        z = self._z
        if z is None or g.shape != z.shape:
            raise ValueError("BiasLayers.backward: call forward first with the same shape")
        if not self.bounds:
            return g
        a, _ = self._ab(z.shape[1])
        col_gz = (g.astype(np.float64) * z).sum(axis=0)
        col_g = g.astype(np.float64).sum(axis=0)
        for (lo, hi), pa, pb in zip(self.bounds, self.alphas, self.betas):
            pa.grad = np.array([col_gz[lo:hi].sum()], dtype=pa.data.dtype)
            pb.grad = np.array([col_g[lo:hi].sum()], dtype=pb.data.dtype)
        return (g * a).astype(g.dtype, copy=False)

    def parameters(self, layer=None) -> list:
        """[alpha, beta] of one layer (index) or of all layers (None)."""
        if layer is None:
            return [p for pair in zip(self.alphas, self.betas) for p in pair]
        return [self.alphas[layer], self.betas[layer]]

    def values(self) -> list:
        """[(alpha, beta)] as floats, one per layer."""
        return [(float(a.data[0]), float(b.data[0])) for a, b in zip(self.alphas, self.betas)]

    def state_dict(self) -> dict:
        return {"bounds": np.array(self.bounds, dtype=np.int64).reshape(-1, 2),
                "alpha": np.array([p.data[0] for p in self.alphas], dtype=np.float32),
                "beta": np.array([p.data[0] for p in self.betas], dtype=np.float32)}

    def load_state_dict(self, d: dict) -> None:
        bounds = np.asarray(d["bounds"], dtype=np.int64).reshape(-1, 2)
        alpha = np.asarray(d["alpha"], dtype=np.float32).reshape(-1)
        beta = np.asarray(d["beta"], dtype=np.float32).reshape(-1)
        if not (len(bounds) == len(alpha) == len(beta)):
            raise ValueError("BiasLayers.load_state_dict: bounds/alpha/beta lengths differ")
        self.__init__()
        for (lo, hi), a, b in zip(bounds, alpha, beta):
            self.add(int(lo), int(hi))
            self.alphas[-1].data[0] = a
            self.betas[-1].data[0] = b


@register_method
class BiC(Learner):
    """BiC learner; see the module docstring."""

    name = "bic"
    uses_memory = True
    classifier_bias = True      # docs/paper.md sec 10: only BiC's classifier has a bias
    refuses = {"domain": "its bias correction rescales the logits of the classes new in a "
                         "task against the old ones, and in the domain scenario no class is "
                         "new after the first task"}

    def task_extras(self) -> dict:
        """The bias layers' (alpha, beta) per task and the validation size."""
        return {"bias": [list(ab) for ab in self.bias.values()],
                "val_size": int(self.val_size)}

    def __init__(self, model, config, rng):
        if not config.uses_memory:
            raise ValueError("BiC needs a memory method config (method='bic')")
        super().__init__(model, config, rng)
        self.bias = BiasLayers()
        self.old_bias = None
        self.lamda = 0.0
        self.val_size = 0  # samples in the last validation split

    # ------------------------------------------------------------ lifecycle
    def _begin_task(self, task) -> None:
        super()._begin_task(task)
        self.bias.add(self.known_classes, self.total_classes)

    def incremental_train(self, task, progress=None) -> None:
        self._begin_task(task)
        X, y = task.X_train, np.asarray(task.y_train, dtype=np.int64)
        Xv = yv = None
        if self.known_classes > 0:
            X, y, Xv, yv = self._split(task)
            self.lamda = self.known_classes / self.total_classes
        else:
            self.lamda = 0.0
            if len(self.memory):
                X, y = self._train_data(task)
        self.val_size = 0 if yv is None else len(yv)
        # the released stage 1 puts the bias layers in a second group with lr 0
        self._fit(X, y, self.model.parameters(), self._loss, progress, stage="train",
                  frozen=self.bias.parameters())
        if self.val_size > 0:
            self._fit(Xv, yv, self.bias.parameters(-1), self._bias_loss, progress,
                      stage="bias", backward=self.bias.backward,
                      train_mode=self.config.bic_stage2_train_mode)

    def after_task(self, task) -> None:
        super().after_task(task)
        self.old_bias = copy.deepcopy(self.bias)
        self.old_bias._z = None

    # ------------------------------------------------------------ split
    def validation_per_class(self) -> int:
        """v = int(val_ratio * memory / K_old) (0 on the first task)."""
        if self.known_classes == 0:
            return 0
        return int(self.config.val_ratio * self.config.memory / self.known_classes)

    def _split(self, task):
        """(X_train, y_train, X_val, y_val): v per class held out, new classes
        from the task's data, old classes from the exemplars (at least one
        sample of each class stays in training)."""
        v = self.validation_per_class()
        parts = []
        y_new = np.asarray(task.y_train, dtype=np.int64)
        for c in np.asarray(task.classes, dtype=np.int64):
            parts.append((task.X_train[y_new == c], int(c)))
        for c in self.memory.classes:
            parts.append((self.memory.exemplars[c], int(c)))
        tr_X, tr_y, va_X, va_y = [], [], [], []
        for Xc, c in parts:
            n = len(Xc)
            perm = self.rng.permutation(n)
            k = min(v, n - 1)
            vi, ti = np.sort(perm[:k]), np.sort(perm[k:])
            tr_X.append(Xc[ti]); tr_y.append(np.full(len(ti), c, np.int64))
            va_X.append(Xc[vi]); va_y.append(np.full(len(vi), c, np.int64))
        dt = task.X_train.dtype
        X = np.concatenate([a.astype(dt, copy=False) for a in tr_X])
        Xv = np.concatenate([a.astype(dt, copy=False) for a in va_X])
        return X, np.concatenate(tr_y), Xv, np.concatenate(va_y)

    # ------------------------------------------------------------ model
    def _forward(self, xb):
        return self.bias.forward(self.model.forward(xb))

    def _head(self, features):
        return self.bias.forward(super()._head(features))

    def _backward(self, grad):
        self.model.backward(self.bias.backward(grad))

    def _old_logits(self, xb):
        return self.old_bias.apply(self.old_model.forward(xb))

    def _loss(self, xb, yb, logits):
        ce, grad = cross_entropy(logits, yb)
        if self.old_model is None or self.known_classes == 0:
            return ce, grad
        kd, g_kd = self._kd(logits, xb)
        lam = self.lamda
        return (1 - lam) * ce + lam * kd, ((1 - lam) * grad + lam * g_kd).astype(logits.dtype)

    def _bias_loss(self, xb, yb, logits):
        if not self.config.bic_stage2_softmax:
            return cross_entropy(logits, yb)
        # CE over the softmax probabilities (authors' code): chain rule through softmax
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss, gp = cross_entropy(p.astype(logits.dtype), yb)
        grad = p * (gp - (gp * p).sum(axis=1, keepdims=True))
        return loss, grad.astype(logits.dtype, copy=False)

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        d = super().state_dict()
        d["bias"] = self.bias.state_dict()
        d["old_bias"] = None if self.old_bias is None else self.old_bias.state_dict()
        return d

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        self.bias.load_state_dict(d["bias"])
        if d.get("old_bias") is None:
            self.old_bias = None
        else:
            self.old_bias = BiasLayers()
            self.old_bias.load_state_dict(d["old_bias"])
