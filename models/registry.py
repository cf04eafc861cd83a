"""The registry of models: the one place a network is named.

Each model is one :class:`ModelSpec` passed to :func:`register_model`
(fcnet.py, resnet.py and reference.py register theirs). ``--model`` takes a
registered name or a model file (FILE.toml, intsim.models.modelfile);
:func:`model_spec` is the one lookup of either, which config validation, the
run driver and the learners use.
"""
from __future__ import annotations

from dataclasses import dataclass, field
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
    refuses: {method name: why the network cannot run it} (one line each; config
        validation refuses the pair before anything is built).
    """
    name: str
    build: Callable
    prepare: Callable
    needs_images: bool = False
    options: tuple = ()
    description: str = ""
    refuses: dict = field(default_factory=dict)


def register_model(spec: ModelSpec) -> ModelSpec:
    """Make ``spec`` selectable as ``--model spec.name``."""
    MODELS[spec.name] = spec
    return spec


def is_model_file(name) -> bool:
    """Whether a ``--model`` value names a model file (a path ending in .toml)."""
    return isinstance(name, str) and name.lower().endswith(".toml")


def model_spec(name: str) -> ModelSpec:
    """The ModelSpec of a ``--model`` value: a registered name, or a model file's path
    (intsim.models.modelfile; ValueError of one line on a bad file or an unknown name)."""
    if name in MODELS:
        return MODELS[name]
    if is_model_file(name):
        from intsim.models.modelfile import model_spec_from_file
        return model_spec_from_file(name)
    raise ValueError(f"unknown model {name!r} (choose from {', '.join(MODELS)}, or give a "
                     f"model file FILE.toml)")
