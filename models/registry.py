"""The registry of models: the one place a network is named.

Each model is one :class:`ModelSpec` passed to :func:`register_model`
(fcnet.py and resnet.py register theirs). ``--model`` choices, config
validation and the run driver read :data:`MODELS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

#: name -> ModelSpec
MODELS: dict[str, "ModelSpec"] = {}


@dataclass(frozen=True)
class ModelSpec:
    """What intsim knows about a network.

    name: the ``--model`` name.
    build: ``build(cil_config, arith, in_shape, rng) -> model`` with no
        classifier outputs yet (the learner grows it); raises ValueError on
        input shapes it cannot take.
    prepare: ``prepare(dataset) -> dataset`` puts the data in the layout the
        model takes (e.g. flattening images for an FC net).
    needs_images: the model only takes image data (N, C, H, W).
    options: the CILConfig model-shape fields it reads (e.g. conv_bias);
        setting another model's option is an error, not silently ignored.
    description: one line for listings.
    """
    name: str
    build: Callable
    prepare: Callable
    needs_images: bool = False
    options: tuple = ()
    description: str = ""


def register_model(spec: ModelSpec) -> ModelSpec:
    """Make ``spec`` selectable as ``--model spec.name``."""
    MODELS[spec.name] = spec
    return spec
