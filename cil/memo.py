"""MEMO: Memory-efficient Expandable MOdel (Zhou et al., ICLR 2023), as in the
authors' released code (QuantizedCIL models/memo.py, utils/inc_net.py
AdaptiveNet, backbones/fc_net.py get_memo_fcnet, backbones/memo_cifar_resnet.py);
docs/der-memo.md lists where intsim follows it and where it differs.

The model (intsim.models.memo.MemoModel, made from the run's model in place):
shared generalized blocks (ResNet-32: stem + stages 1-2; FCNet: the run's
FCNet layers), then one specialized block per task (ResNet-32: stage 3 +
pooling; FCNet: two more Linear(h -> h) + ReLU), whose features are
concatenated for one classifier.

* Task 0 trains everything (generalized blocks, s0, classifier) with CE.
  After it the generalized blocks are frozen (the released ``train_base``
  default, False): eval mode, no gradient, backward not run. The released
  code freezes them in after_task; intsim at the start of task 1, which is
  the same for training, and task 0's audit (taken after after_task) still
  counts the input gradient that s0 computed for them.
* Every later task adds a specialized block that starts as a copy of the
  previous one (drawn from the learner's Generator), freezes the older ones
  (``train_adaptive`` default, False), widens the classifier, and trains the
  new block, the classifier and a fresh auxiliary head with
  CE(logits, y) + alpha_aux * CE(aux_logits, y_aux) (alpha_aux = 1), then
  aligns the new classifier rows (weight aligning), exactly as DER does: the
  shared lifecycle is intsim.cil.growing.GrowingLearner's.
* Exemplars: the base Learner's herding memory on the concatenated features.
* Classifier and aux head carry a bias only as the released ``--bias``
  (default False) says: no bias on FCNet; intsim's ResNet classifier always
  has one, and the aux head then has one too.
"""
from __future__ import annotations

from intsim.models.memo import adopt_memo

from .growing import GrowingLearner
from .registry import register_method


@register_method
class MEMO(GrowingLearner):
    """MEMO learner; see the module docstring."""

    name = "memo"
    classifier_bias = False
    #: the generalized blocks keep training after task 0 (released --train_base, default off)
    train_base = False
    #: old specialized blocks keep training (released --train_adaptive, default off)
    train_adaptive = False

    def __init__(self, model, config, rng):
        super().__init__(model, config, rng)
        # the first specialized block (FCNet's) is drawn from the learner's Generator
        self.model = adopt_memo(model, self.rng)

    def task_extras(self) -> dict:
        return {"memo_blocks": int(self.model.num_backbones),
                "memo_gamma": self.gamma}

    def _grow(self) -> None:
        """Task t > 0: freeze the generalized blocks (after task 0), add a specialized
        block (a copy of the previous one), freeze the older ones."""
        m = self.model
        if not self.train_base and not m.generalized_frozen:
            m.freeze_generalized()
        m.add_backbone(self.rng, copy_previous=self.copy_previous_backbone)
        if not self.train_adaptive:
            m.freeze_old()

    def _aux_bias(self) -> bool:
        return self.model.classifier.bias is not None
