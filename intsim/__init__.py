"""intsim: a bit-exact integer-arithmetic training simulator.

Public namespaces: ``intsim`` (number formats, kernels, engine, CLI),
``intsim.models`` (ResNet-32, FC nets) and ``intsim.cil`` (class-incremental
learning methods).

``import intsim`` loads nothing else and changes no environment variable: the
public names below are loaded on first use, so the ``intsim`` console script
can set the environment NumPy and Numba read once (thread wait policies, the
kernel cache folder) before they load. The entry points do that process setup
(:func:`intsim.kernels.runtime.configure_runtime`), ``intsim.run`` among them.
"""
import importlib

__version__ = "0.1.0"

__all__ = ["FP", "HDQT", "LUQ", "FP8", "FP134", "nn", "optim", "run", "RunConfig", "resolve",
           "NOT_GIVEN", "RunHooks"]

#: public name -> the module that defines it
_LAZY = {"FP": "intsim.datapath", "FP8": "intsim.datapath", "FP134": "intsim.datapath",
         "HDQT": "intsim.datapath", "LUQ": "intsim.datapath",
         "run": "intsim.app.driver", "RunHooks": "intsim.app.driver",
         "RunInterrupted": "intsim.app.driver",
         "RunConfig": "intsim.app.config", "resolve": "intsim.app.config",
         "NOT_GIVEN": "intsim.app.config"}
#: subpackages and modules reachable as attributes of ``intsim``
_SUBMODULES = ("app", "arith", "cil", "cli", "data", "datapath", "errors", "formats", "kernels",
               "models", "nn", "optim")


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"intsim.{name}")
    else:
        raise AttributeError(f"module 'intsim' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
