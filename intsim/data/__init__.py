"""Datasets for intsim: official-format loaders, HAR feature pipelines, CIL streams.

Public API: Dataset, first_per_class, load_dataset, TaskStream, Task, SubjectDomains,
PermutedDomains (domain-incremental streams), iterate_batches,
augment_cifar, DataFileError, DATASETS, plus the readers in the sub-modules
(hapt, dsads, pamap2, cifar, idx, embedded) and the feature pipelines
(har_features, stats9).
"""
from .augment import augment_cifar
from .batches import iterate_batches
from .common import DataFileError, Dataset, first_per_class
from .loader import HAR_DEFAULTS, har_dataset, load_dataset
from .registry import DATASETS, DatasetSpec, dataset_spec, register_dataset
from .stream import Task, TaskStream, paper_class_order
from .domains import PermutedDomains, SubjectDomains

__all__ = ["Dataset", "DataFileError", "load_dataset", "har_dataset", "DATASETS",
           "HAR_DEFAULTS", "TaskStream", "Task", "paper_class_order", "iterate_batches",
           "augment_cifar", "first_per_class", "DatasetSpec", "dataset_spec", "register_dataset",
           "SubjectDomains", "PermutedDomains"]
