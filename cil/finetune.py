"""Fine-tuning: the lower bound of class-incremental learning.

Cross-entropy on all seen logits, new data only, no exemplars, no
distillation (the base Learner's behaviour).
"""
from .learner import Learner
from .registry import register_method


@register_method
class FineTune(Learner):
    """Plain fine-tuning on each task's data (CE over all seen classes)."""

    name = "finetune"
