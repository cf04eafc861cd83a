"""Class-incremental learning methods on the intsim engine.

Public API: CILConfig (config), the learners FineTune, LwF, ICaRL, BiC
and the growing-model methods DER and MEMO,
sharing the Learner lifecycle and registered by name in METHODS
(registry), the scenarios class / task / domain registered in SCENARIOS
(scenarios), ExemplarMemory / herding / NME (memory) and DomainExemplarMemory
(domain_memory), the metrics module, and run_cil (runner) driving a whole stream.
"""
from . import metrics
from .config import CILConfig
from .memory import ExemplarMemory, class_mean, herding, l2_normalize, nme_predict
from .domain_memory import DomainExemplarMemory
from .registry import METHODS, method_class, register_method
from .scenarios import SCENARIOS, register_scenario, scenario_of
from .learner import Learner
from .finetune import FineTune
from .lwf import LwF
from .icarl import ICaRL
from .bic import BiasLayers, BiC
from .der import DER
from .memo import MEMO
from .runner import make_learner, run_cil

__all__ = ["CILConfig", "ExemplarMemory", "herding", "class_mean", "l2_normalize",
           "nme_predict", "DomainExemplarMemory", "metrics", "Learner", "FineTune", "LwF", "ICaRL", "BiC",
           "BiasLayers", "run_cil", "make_learner", "METHODS", "method_class",
           "register_method", "DER", "MEMO", "SCENARIOS", "register_scenario",
           "scenario_of"]
