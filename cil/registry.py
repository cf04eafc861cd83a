"""The registry of CIL methods: the one place a method is named.

A method is a :class:`intsim.cil.learner.Learner` subclass decorated with
:func:`register_method`; its class attributes say what the rest of intsim
needs to know: ``name`` (``--method``), ``uses_memory`` (keeps an exemplar
memory), ``default_nme`` (reports NME accuracy unless told otherwise),
``classifier_bias`` (its classifier has a bias). ``intsim --method`` choices,
config validation and the benchmark grids read :data:`METHODS`.
"""
from __future__ import annotations

METHODS: dict[str, type] = {}


def register_method(cls):
    """Class decorator: make a Learner subclass selectable as ``--method cls.name``."""
    if not getattr(cls, "name", None):
        raise ValueError(f"{cls.__name__} needs a class attribute 'name'")
    METHODS[cls.name] = cls
    return cls


def method_class(name: str) -> type:
    """The Learner class registered as ``name`` (ValueError naming the choices)."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown CIL method {name!r}; expected one of "
                         f"{tuple(METHODS)}") from None
