"""intsim.optim: optimisers and learning-rate schedules (SGD with momentum and
weight decay as PyTorch runs it, multi-step LR; QuantizedSGD, lptorch's SGD
with a quantized update, for FP134; make_optimizer picks by arithmetic)."""
from intsim.optim.sgd import SGD, MultiStepLR
from intsim.optim.qsgd import QuantizedSGD, make_optimizer

__all__ = ["SGD", "MultiStepLR", "QuantizedSGD", "make_optimizer"]
