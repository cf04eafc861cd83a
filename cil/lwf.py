"""Learning without Forgetting (PyCIL convention, docs/paper.md sec 9).

Task 1: CE on all logits. Later tasks: CE on the new-class logits only
(labels shifted by the number of old classes) + lwf_weight * KD(old-class
logits, old model logits) at temperature T; new data only, no exemplars.
In the domain scenario a task brings no new class: the CE is on all logits and
the KD on all of them too (the old model knows every class), as LwF on
domain-incremental tasks (van de Ven & Tolias 2019).
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
        lo = k if self.total_classes > k else 0     # no new class (domain): CE on all
        ce, g_new = cross_entropy(logits[:, lo:], yb - lo)
        kd, g_kd = self._kd(logits, xb)
        w = self.config.lwf_weight
        grad = w * g_kd
        grad[:, lo:] += g_new
        return ce + w * kd, grad.astype(logits.dtype, copy=False)
