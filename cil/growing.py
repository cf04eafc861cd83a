"""The learner side of a growing model (DER, MEMO): what both methods share in
the paper's released code (QuantizedCIL models/der.py, models/memo.py).

Per task t > 0 ``_grow`` adds a block to the intsim.models.growing
GrowingModel (a copy of the previous block, drawn from the learner's
Generator) and freezes the older ones; the features of all blocks are
concatenated, the shared classifier gets the new block's columns and the new
classes' rows, and a fresh auxiliary head over the newest block's features
has (new classes + 1) outputs, the extra one meaning "an old class". The loss
is CE(logits, y) + aux_weight * CE(aux_logits, y_aux) with y_aux = y - K_old
+ 1 for new classes and 0 for old ones, on new data plus exemplars. After
training, weight aligning scales the new classes' classifier rows by
gamma = mean |w_old| / mean |w_new| (row L2 norms; the bias is not scaled).
Task 0 trains with CE only. The exemplar memory is iCaRL's (herding on the
concatenated features in eval mode). No old model is kept (no distillation).

Sub-classes turn the run's model into their growing model in ``__init__``
(in place: the driver keeps its reference) and may extend ``_grow``,
``after_task`` and ``_extra_state``.
"""
from __future__ import annotations

import numpy as np

from intsim.nn import cross_entropy

from .learner import Learner


def weight_align(classifier, n_new: int) -> float:
    """Scale the last n_new rows of classifier.weight by gamma = mean norm of the
    old rows / mean norm of the new rows (float64 norms, float32 product)."""
    W = classifier.weight.data
    norms = np.linalg.norm(W.astype(np.float64), axis=1)
    gamma = float(np.mean(norms[:-n_new]) / np.mean(norms[-n_new:]))
    W = W.copy()
    W[-n_new:] = W[-n_new:] * np.asarray(gamma, dtype=W.dtype)
    classifier.weight.data = W
    return gamma


class GrowingLearner(Learner):
    """Shared lifecycle of DER and MEMO; see the module docstring. Not registered."""

    uses_memory = True
    default_nme = False
    refuses = {"domain": "it grows a block for each task's new classes (an auxiliary "
                         "new-or-old head, weight aligning of the new classes' rows), and in "
                         "the domain scenario no class is new after the first task"}
    #: weight aligning after every task but the first (the released code does)
    weight_aligning = True
    #: a new block starts as a copy of the previous one (the released code does)
    copy_previous_backbone = True
    #: weight of the auxiliary loss (the released MEMO's alpha_aux, default 1; DER: 1)
    aux_weight = 1.0

    def __init__(self, model, config, rng):
        if not config.uses_memory:
            raise ValueError(f"{type(self).__name__} needs a memory method config "
                             f"(method={self.name!r})")
        super().__init__(model, config, rng)
        self.gamma = None          # weight-aligning factor of the last task (None on task 0)
        self._aux_logits = None
        self._aux_grad = None

    # ------------------------------------------------------------ lifecycle
    def _begin_task(self, task) -> None:
        if task.seen <= self.total_classes:
            raise ValueError(f"task {task.t} sees {task.seen} classes, not more than the "
                             f"{self.total_classes} already learned")
        if self.total_classes > 0:
            self._grow()
        super()._begin_task(task)
        n_new = self.total_classes - self.known_classes
        self.model.set_aux(n_new + 1 if self.known_classes > 0 else 0, self.rng,
                           bias=self._aux_bias())
        self.gamma = None

    def _grow(self) -> None:
        """A new block (copy of the previous one), every older block frozen."""
        self.model.add_backbone(self.rng, copy_previous=self.copy_previous_backbone)
        self.model.freeze_old()

    def _aux_bias(self) -> bool:
        """Whether the auxiliary head has a bias."""
        return True

    def after_task(self, task) -> None:
        if self.weight_aligning and self.known_classes > 0:
            self.gamma = weight_align(self.model.classifier,
                                      self.total_classes - self.known_classes)
        if self.memory is not None:
            self._build_memory(task)
        self.old_model = None

    def _train_params(self) -> list:
        return self.model.trainable_parameters()

    # ------------------------------------------------------------ training
    def _forward(self, xb) -> np.ndarray:
        m = self.model
        f = m.features(xb)
        logits = m.classifier.forward(f)
        aux = getattr(m, "aux", None)
        if aux is not None and m.training:
            self._aux_logits = aux.forward(np.ascontiguousarray(f[:, -m.last_dim:]))
        else:
            self._aux_logits = None
        return logits

    def _loss(self, xb, yb, logits):
        ce, grad = cross_entropy(logits, yb)
        self._aux_grad = None
        if self._aux_logits is None:
            return ce, grad
        k = self.known_classes
        yb = np.asarray(yb, dtype=np.int64)
        ya = np.where(yb >= k, yb - k + 1, 0)
        la, ga = cross_entropy(self._aux_logits, ya)
        if self.aux_weight != 1.0:
            w = np.asarray(self.aux_weight, dtype=ga.dtype)
            la, ga = la * float(w), ga * w
        self._aux_grad = ga
        return ce + la, grad

    def _backward(self, grad) -> None:
        m = self.model
        gf = m.classifier.backward(grad)
        if self._aux_grad is not None:
            gf = np.array(gf, copy=True)
            gf[:, -m.last_dim:] += m.aux.backward(self._aux_grad)
        m.backward_features(gf)

    # ------------------------------------------------------------ checkpoints
    def _extra_state(self) -> dict:
        """Method state beside gamma, stored under the method's name."""
        return {}

    def _load_extra_state(self, extra: dict) -> None:
        pass

    def state_dict(self) -> dict:
        d = super().state_dict()
        d[self.name] = {**self._extra_state(), "gamma": self.gamma}
        return d

    def load_state_dict(self, d: dict) -> None:
        extra = d.get(self.name) or {}
        self._load_extra_state(extra)
        super().load_state_dict(d)
        self.old_model = None
        self.gamma = extra.get("gamma")
