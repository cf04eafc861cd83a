"""DER: Dynamically Expandable Representation (Yan et al. 2021), as in the
authors' released code (QuantizedCIL models/der.py, utils/inc_net.py DERNet);
docs/der-memo.md lists where intsim follows it and where it differs.

Per task t > 0:

* a new backbone is built by the run's model factory (same family and
  arithmetic, drawn from the learner's Generator) and starts as a copy of the
  previous backbone's parameters and buffers; every older backbone is frozen
  (eval mode, no gradient, not updated);
* the features of all backbones are concatenated; the shared classifier (with
  bias) gets the new backbone's feature columns (fresh init, the old weights
  copied into their block) and rows for the new classes;
* a fresh auxiliary classifier reads the new backbone's features only and
  has (new classes + 1) outputs, the extra one meaning "an old class";
* the loss is CE(logits, y) + CE(aux_logits, y_aux) with y_aux = y - K_old + 1
  for new classes and 0 for old ones, on new data plus exemplars;
* after training, weight aligning scales the new classes' classifier rows by
  gamma = mean |w_old| / mean |w_new| (row L2 norms; the bias is not scaled).

Task 0 trains the one backbone and the classifier with CE only. The exemplar
memory is iCaRL's (herding on the concatenated features, evaluated in eval
mode). No old model is kept: DER uses no distillation.

The learner turns the run's model into an intsim.models.growing.GrowingModel
in place. New backbones come from ``backbone_factory(rng) -> Model`` if given,
else (the model already growing) the model's own factory, else the model
registry's build for config.model with the task data's input shape.
"""
from __future__ import annotations

import numpy as np

from intsim.models.growing import GrowingModel, adopt
from intsim.nn import cross_entropy

from .learner import Learner
from .registry import register_method


def registry_factory(config, arith, shape_of):
    """factory(rng) -> a fresh model of config.model; shape_of() gives the input shape."""
    from intsim.models import MODELS

    def factory(rng):
        shape = shape_of()
        if shape is None:
            raise ValueError("DER: the input shape is not known yet (no task seen)")
        return MODELS[config.model].build(config, arith, tuple(shape), rng)
    return factory


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


@register_method
class DER(Learner):
    """DER learner; see the module docstring."""

    name = "der"
    uses_memory = True
    default_nme = False
    classifier_bias = True
    #: weight aligning after every task but the first (the released code does)
    weight_aligning = True
    #: a new backbone starts as a copy of the previous one (the released code does)
    copy_previous_backbone = True

    def __init__(self, model, config, rng, backbone_factory=None):
        if not config.uses_memory:
            raise ValueError(f"DER needs a memory method config (method={self.name!r})")
        super().__init__(model, config, rng)
        self._in_shape = None
        if backbone_factory is None and isinstance(model, GrowingModel):
            backbone_factory = model.factory
        if backbone_factory is None:
            holder = self
            backbone_factory = registry_factory(config, model.arith, lambda: holder._in_shape)
        self.model = adopt(model, backbone_factory)
        self.gamma = None          # weight-aligning factor of the last task (None on task 0)
        self._aux_logits = None
        self._aux_grad = None

    def task_extras(self) -> dict:
        return {"der_backbones": int(self.model.num_backbones),
                "der_gamma": self.gamma}

    # ------------------------------------------------------------ lifecycle
    def _begin_task(self, task) -> None:
        if task.seen <= self.total_classes:
            raise ValueError(f"task {task.t} sees {task.seen} classes, not more than the "
                             f"{self.total_classes} already learned")
        self._in_shape = tuple(int(s) for s in np.shape(task.X_train)[1:])
        m = self.model
        if self.total_classes > 0:
            m.add_backbone(self.rng, copy_previous=self.copy_previous_backbone)
            m.freeze_old()
        super()._begin_task(task)
        n_new = self.total_classes - self.known_classes
        m.set_aux(n_new + 1 if self.known_classes > 0 else 0, self.rng)
        self.gamma = None

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
        self._aux_grad = ga
        return ce + la, grad

    def _backward(self, grad) -> None:
        m = self.model
        gf = m.classifier.backward(grad)
        if self._aux_grad is not None:
            gf = np.array(gf, copy=True)
            gf[:, -m.last_dim:] += m.aux.backward(self._aux_grad)
        m.backbone.backward(gf)

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        d = super().state_dict()
        d["der"] = {"in_shape": None if self._in_shape is None else list(self._in_shape),
                    "gamma": self.gamma}
        return d

    def load_state_dict(self, d: dict) -> None:
        extra = d.get("der") or {}
        shape = extra.get("in_shape")
        self._in_shape = None if shape is None else tuple(int(s) for s in shape)
        super().load_state_dict(d)
        self.old_model = None
        self.gamma = extra.get("gamma")
