"""Datapath parts: small frozen classes, one registry per slot.

A datapath (intsim.datapath) is composed of parts, each chosen by name in a
config file's ``[datapath]`` table or built in Python:

| slot | classes | file |
|---|---|---|
| ``rounding`` | Nearest, Stochastic (and any class registered with :func:`register_part`) | rounding.py |
| ``transform`` | Identity, BlockHadamard | transform.py |
| ``accumulator`` | IntAccumulator, FloatAccumulator, ExactAccumulator | accumulator.py |

Number formats (the fourth kind of part) are intsim.formats objects, named as
intsim.formats.get_format names them, plus ``intN`` for an N-bit integer.

Adding a part is one class: subclass the slot's base, give it a ``name`` and
decorate it with ``@register_part``; config files, sweeps and the Python API
then accept it by that name (docs/architecture.md has a worked example).
"""
from intsim.datapath.parts.registry import PARTS, part_from_spec, register_part
from intsim.datapath.parts.rounding import Nearest, Rounding, Stochastic
from intsim.datapath.parts.transform import BlockHadamard, Identity, Transform
from intsim.datapath.parts.accumulator import (Accumulator, ExactAccumulator, FloatAccumulator,
                                               IntAccumulator)

__all__ = ["PARTS", "register_part", "part_from_spec", "Rounding", "Nearest", "Stochastic",
           "Transform", "Identity", "BlockHadamard", "Accumulator", "IntAccumulator",
           "FloatAccumulator", "ExactAccumulator"]
