"""The continual-learning scenarios (van de Ven & Tolias 2019; docs/scenarios.md):
the one place a scenario is named.

A scenario is one class registered with :func:`register_scenario`. It says how a
dataset becomes a task stream (:meth:`Scenario.stream`), which classes a test
sample may be predicted as (:meth:`Scenario.allowed`), which exemplar memory
suits it, and the fewest exemplars a run needs. ``--scenario`` choices, config
validation, the driver and the learners read :data:`SCENARIOS`.

- ``class``: class-incremental, new classes each task, one head over every class
  seen, no task identity at test time.
- ``task``: the same tasks and training; at test time the task identity is given
  and a single-head network's logits are masked to that task's classes, as
  Mammoth's ``mask_classes`` for its Task-IL figures (the other classes' logits set
  to -inf before the argmax; the nearest-mean classifier likewise takes the nearest
  mean among the task's classes).
- ``domain``: every class in every task, the input distribution changes: subjects
  of activity data, or permuted inputs of any other data (intsim.data.domains).
  The head has every class from task 0 and does not grow.

A method that does not run in a scenario says so in its ``refuses`` class
attribute ({scenario: reason}); :func:`refusal` turns it into the one line a run
is refused with.
"""
from __future__ import annotations

import numpy as np

from intsim.data import PermutedDomains, SubjectDomains, TaskStream

from .domain_memory import DomainExemplarMemory
from .memory import ExemplarMemory
from .registry import method_class

#: name -> Scenario subclass, in registration order
SCENARIOS: dict[str, type] = {}

#: tasks of the domain scenario unless ``domain_tasks`` says otherwise
DEFAULT_DOMAIN_TASKS = 5


def register_scenario(cls):
    """Class decorator: make a Scenario subclass selectable as ``--scenario cls.name``."""
    if not getattr(cls, "name", None):
        raise ValueError(f"{cls.__name__} needs a class attribute 'name'")
    SCENARIOS[cls.name] = cls
    return cls


def scenario_of(name: str) -> "Scenario":
    """The scenario registered as ``name`` (ValueError naming the choices)."""
    try:
        return SCENARIOS[name]()
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; expected one of "
                         f"{tuple(SCENARIOS)}") from None


def refusal(method: str, scenario: str) -> str | None:
    """The one line refusing ``method`` in ``scenario``, or None when it runs there."""
    why = getattr(method_class(method), "refuses", {}).get(scenario)
    return None if why is None else f"method {method} does not run in the {scenario} scenario: {why}"


class Scenario:
    """The class-incremental behaviour every scenario starts from."""

    #: registry name (``--scenario``)
    name = ""
    #: one line for listings and the docs
    description = ""
    #: every task has every class: the head is full from task 0 and never grows
    classes_repeat = False

    def stream(self, dataset, config, seed: int, by_subject: bool = False):
        """The task stream of ``dataset`` (intsim.data.Dataset, labels original ids):
        config: CILConfig (init_classes, inc_classes, domain_tasks); seed: the run's;
        by_subject: the data has subjects (activity data)."""
        return TaskStream(dataset, config.init_classes, config.inc_classes, seed)

    def allowed(self, task) -> np.ndarray | None:
        """(N_test, task.seen) bool: the classes each test sample of ``task`` may be
        predicted as; None: every class seen."""
        return None

    def predict(self, logits: np.ndarray, task) -> np.ndarray:
        """(N,) int64 predictions from logits (N, C): the argmax over the allowed classes."""
        allowed = self.allowed(task)
        if allowed is None:
            return np.argmax(logits, axis=1)
        return np.argmax(np.where(allowed, logits, -np.inf), axis=1)

    def new_memory(self, total: int) -> ExemplarMemory:
        """The exemplar memory of a method that keeps ``total`` exemplars."""
        return ExemplarMemory(total)

    def min_memory(self, stream) -> int:
        """The fewest exemplars a memory method needs (one per class here)."""
        return int(stream.num_classes)


@register_scenario
class ClassIncremental(Scenario):
    """New classes each task, no task identity at test time."""

    name = "class"
    description = "class-incremental: new classes each task, no task identity at test time"


@register_scenario
class TaskIncremental(Scenario):
    """Class-incremental tasks, the task identity given at test time (masked logits)."""

    name = "task"
    description = ("task-incremental: the class-incremental tasks, tested with the task "
                   "identity (logits masked to the task's classes)")

    def allowed(self, task) -> np.ndarray:
        if task.test_task is None or task.class_task is None:
            raise ValueError(f"task {task.t}: the task scenario needs the task of every "
                             f"test sample and class")
        return np.asarray(task.class_task)[None, :] == np.asarray(task.test_task)[:, None]


@register_scenario
class DomainIncremental(Scenario):
    """Every class in every task; the inputs change (subjects, or permuted inputs)."""

    name = "domain"
    description = ("domain-incremental: every class in every task; activity data streams "
                   "subjects, other data permuted inputs")
    classes_repeat = True

    def stream(self, dataset, config, seed: int, by_subject: bool = False):
        tasks = config.domain_tasks or DEFAULT_DOMAIN_TASKS
        kind = SubjectDomains if by_subject else PermutedDomains
        return kind(dataset, tasks, seed)

    def new_memory(self, total: int) -> ExemplarMemory:
        return DomainExemplarMemory(total)

    def min_memory(self, stream) -> int:
        """One exemplar per class and task."""
        return int(stream.num_classes) * int(stream.num_tasks)
