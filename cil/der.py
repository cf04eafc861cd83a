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

The lifecycle above (aux loss, weight aligning, memory, checkpoints) is
intsim.cil.growing.GrowingLearner's, which MEMO (intsim.cil.memo) shares.
"""
from __future__ import annotations

import numpy as np

from intsim.models import model_spec
from intsim.models.growing import GrowingModel, adopt

from .growing import GrowingLearner, weight_align
from .registry import register_method

__all__ = ["DER", "registry_factory", "weight_align"]


def registry_factory(config, arith, shape_of):
    """factory(rng) -> a fresh model of config.model; shape_of() gives the input shape."""

    def factory(rng):
        shape = shape_of()
        if shape is None:
            raise ValueError("DER: the input shape is not known yet (no task seen)")
        return model_spec(config.model).build(config, arith, tuple(shape), rng)
    return factory


@register_method
class DER(GrowingLearner):
    """DER learner; see the module docstring (the shared lifecycle: intsim.cil.growing)."""

    name = "der"
    classifier_bias = False     # DERNet.generate_fc: SimpleLinear(bias=args["bias"]), --bias default False

    def __init__(self, model, config, rng, backbone_factory=None):
        super().__init__(model, config, rng)
        self._in_shape = None
        if backbone_factory is None and isinstance(model, GrowingModel):
            backbone_factory = model.factory
        if backbone_factory is None:
            holder = self
            backbone_factory = registry_factory(config, model.arith, lambda: holder._in_shape)
        self.model = adopt(model, backbone_factory)

    def task_extras(self) -> dict:
        return {"der_backbones": int(self.model.num_backbones),
                "der_gamma": self.gamma}

    def _begin_task(self, task) -> None:
        self._in_shape = tuple(int(s) for s in np.shape(task.X_train)[1:])
        super()._begin_task(task)

    # ------------------------------------------------------------ checkpoints
    def _extra_state(self) -> dict:
        return {"in_shape": None if self._in_shape is None else list(self._in_shape)}

    def _load_extra_state(self, extra: dict) -> None:
        shape = extra.get("in_shape")
        self._in_shape = None if shape is None else tuple(int(s) for s in shape)
