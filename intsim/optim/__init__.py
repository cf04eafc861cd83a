"""intsim.optim: optimisers and learning-rate schedules (SGD with momentum and
weight decay as PyTorch runs it, multi-step LR)."""
from intsim.optim.sgd import SGD, MultiStepLR

__all__ = ["SGD", "MultiStepLR"]
