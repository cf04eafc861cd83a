"""Class-incremental learning methods on the intsim engine.

Public API: CILConfig (config), the learners FineTune, LwF, ICaRL, BiC
sharing the Learner lifecycle, ExemplarMemory / herding / NME (memory),
the metrics module, and run_cil (runner) driving a whole stream.
"""
from . import metrics
from .config import CILConfig
from .memory import ExemplarMemory, class_mean, herding, l2_normalize, nme_predict

__all__ = ["CILConfig", "ExemplarMemory", "herding", "class_mean", "l2_normalize",
           "nme_predict", "metrics", "Learner", "FineTune", "LwF", "ICaRL", "BiC",
           "BiasLayers", "run_cil", "make_learner"]


def __getattr__(name):
    # The learners need the engine (intsim.nn, intsim.optim) and the data
    # helpers; import them on first use so config/memory/metrics load alone.
    if name in ("Learner",):
        from .learner import Learner
        return Learner
    if name == "FineTune":
        from .finetune import FineTune
        return FineTune
    if name == "LwF":
        from .lwf import LwF
        return LwF
    if name == "ICaRL":
        from .icarl import ICaRL
        return ICaRL
    if name in ("BiC", "BiasLayers"):
        from . import bic
        return getattr(bic, name)
    if name in ("run_cil", "make_learner"):
        from . import runner
        return getattr(runner, name)
    raise AttributeError(f"module 'intsim.cil' has no attribute {name!r}")
