"""Learning without Forgetting (PyCIL convention, docs/paper.md sec 9).

Task 1: CE on all logits. Later tasks: CE on the new-class logits only
(labels shifted by the number of old classes) + lwf_weight * KD(old-class
logits, old model logits) at temperature T; new data only, no exemplars.
"""

from intsim.nn import cross_entropy

from .learner import Learner
from .registry import register_method


@register_method
class LwF(Learner):
    """LwF learner; see the module docstring for the loss."""

    name = "lwf"

    def _loss(self, xb, yb, logits):
        k = self.known_classes
        if self.old_model is None or k == 0:
            return cross_entropy(logits, yb)
        ce, g_new = cross_entropy(logits[:, k:], yb - k)
        kd, g_kd = self._kd(logits, xb)
        w = self.config.lwf_weight
        grad = w * g_kd
        grad[:, k:] += g_new
        return ce + w * kd, grad.astype(logits.dtype, copy=False)
