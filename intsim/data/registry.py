"""The registry of datasets: the one place a dataset is named.

Each dataset is one :class:`DatasetSpec` passed to :func:`register_dataset`
(intsim/data/loader.py registers the built-in ones beside their loaders).
The ``--dataset`` choices, config validation (which datasets need ``--data``,
which hold images, which give ``--features raw`` windows), the default models,
the paper's CIL schedule (``intsim.cil.CILConfig.for_dataset``) and the
normalisation statistics all read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

#: name -> DatasetSpec, in registration order
DATASETS: dict[str, "DatasetSpec"] = {}


@dataclass(frozen=True)
class DatasetSpec:
    """What intsim knows about a dataset.

    name: the ``--dataset`` name.
    load: ``load(path, **opts) -> intsim.data.Dataset`` (path None only when builtin).
    kind: "har" (feature vectors with subjects), "image" (N, C, H, W) or
        (N, H, W) arrays, or "vector".
    builtin: needs no ``--data`` (shipped with the package or generated).
    takes_data: reads a file given with ``--data`` (False: generated data, which
        refuses ``--data``).
    schedule: the paper's CIL defaults it takes: "har" (FCNet, 2 classes a task,
        100 epochs, memory 200) or "image" (ResNet-32, 20 a task, 170 epochs).
    cil_overrides: CILConfig fields that differ from that schedule.
    default_model: the model ``--model auto`` picks (None: the schedule's).
    raw_window_model: the model ``--model auto`` picks for ``--features raw`` (windows of
        the raw signals, whose shape is the dataset's); None: the dataset has no raw
        windows and refuses ``--features raw``.
    mean, std: per-channel normalisation statistics of image data (None otherwise).
    source: what ``--data`` must point at (for error messages).
    description: one line for listings.
    """
    name: str
    load: Callable
    kind: str = "har"
    builtin: bool = False
    takes_data: bool = True
    schedule: str = "har"
    cil_overrides: dict = field(default_factory=dict)
    default_model: str | None = None
    raw_window_model: str | None = None
    mean: tuple | None = None
    std: tuple | None = None
    source: str = "its official download"
    description: str = ""

    @property
    def model(self) -> str:
        """The default model: default_model, else the schedule's (resnet32 for images)."""
        return self.default_model or ("resnet32" if self.schedule == "image" else "fcnet")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Make ``spec`` selectable as ``--dataset spec.name``."""
    DATASETS[spec.name] = spec
    return spec


def dataset_spec(name: str) -> DatasetSpec:
    """The registered dataset ``name`` (case-insensitive); ValueError naming the choices."""
    key = str(name).lower()
    try:
        return DATASETS[key]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}") from None
