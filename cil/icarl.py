"""iCaRL (PyCIL convention, docs/paper.md sec 9).

CE on all seen logits + KD(old-class logits, old model) with weight 1, on
new data plus exemplars (herding memory). Evaluated both by the classifier
(CNN: argmax of logits) and by the nearest mean of exemplars (NME) on
L2-normalised backbone features; the base Learner builds the memory and the
class means when config.nme is set (the default for iCaRL).
"""
from intsim.nn import cross_entropy

from .learner import Learner
from .registry import register_method


@register_method
class ICaRL(Learner):
    """iCaRL learner; see the module docstring for the loss."""

    name = "icarl"
    uses_memory = True
    default_nme = True

    def __init__(self, model, config, rng):
        if not config.uses_memory:
            raise ValueError("ICaRL needs a memory method config (method='icarl')")
        super().__init__(model, config, rng)

    def _loss(self, xb, yb, logits):
        ce, grad = cross_entropy(logits, yb)
        if self.old_model is None or self.known_classes == 0:
            return ce, grad
        kd, g_kd = self._kd(logits, xb)
        return ce + kd, (grad + g_kd).astype(logits.dtype, copy=False)
