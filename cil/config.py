"""Hyperparameters of a class-incremental run (docs/paper.md section 9).

``CILConfig.for_dataset(name, method, **overrides)`` returns the paper's
settings for that dataset as defaults; every field can be overridden.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from intsim.data.registry import dataset_spec
from intsim.models import model_spec

from .registry import method_class
from .scenarios import DEFAULT_DOMAIN_TASKS, refusal, scenario_of

#: The paper's schedules (docs/paper.md sec 9); a dataset names its own in the
#: dataset registry (intsim.data.registry: schedule, cil_overrides).
PAPER_SCHEDULES = {
    "image": dict(model="resnet32", init_classes=20, inc_classes=20, epochs=170, lr=0.05,
                  milestones=(60, 100, 140), apply_milestones=True, memory=2000, augment=True),
    "har": dict(model="fcnet", hidden=None, init_classes=2, inc_classes=2, epochs=100,
                lr=0.01, milestones=(50,), apply_milestones=False, memory=200, augment=False),
}


@dataclass(frozen=True)
class CILConfig:
    """One class-incremental run's hyperparameters.

    Units: epochs and milestones count epochs of the task's training set;
    memory counts exemplars in total (all classes together); lr is the SGD step.

    Fields:
        method: "finetune", "lwf", "icarl" or "bic".
        dataset: dataset name (informational; "" for custom data).
        model: "resnet32" or "fcnet".
        hidden: FCNet hidden widths; None means (in_dim, in_dim) (the paper's).
        init_classes / inc_classes: classes in the first / each later task.
        epochs: epochs per task (also BiC stage 2).
        lr, milestones, gamma: SGD learning rate, decayed x gamma at each
            milestone epoch, but only when apply_milestones is True.
        apply_milestones: False reproduces quirk 4 of the released HAR runs
            (the milestone was passed as a string and never applied; the LR
            stays constant). The intended HAR schedule is milestones=(50,)
            with apply_milestones=True.
        batch_size, test_batch_size, feature_batch_size: training batch,
            evaluation batch (logits) and feature-extraction batch (herding,
            class means). With dynamic quantization predictions depend a
            little on batch composition (quirk 5), so these matter.
        memory: total exemplar budget; per class memory // classes_seen.
        T: knowledge-distillation temperature.
        lwf_weight: weight of the KD term in LwF.
        val_ratio: BiC validation split, v = int(val_ratio*memory/K_old) per class.
        momentum, weight_decay: SGD (weight decay on all parameters).
        augment: CIFAR training augmentation (intsim.data.augment_cifar).
        nme: also report nearest-mean-of-exemplars accuracy (iCaRL).
        bic_stage2_train_mode: BiC stage 2 runs the model in train mode, as the
            authors' code does (BatchNorm batch statistics; running stats move).
        bic_stage2_softmax: BiC stage 2 minimises CE of softmax(logits) (the
            authors'/PyCIL code) instead of CE of the logits.
        scenario: "class", "task" or "domain" (intsim.cil.scenarios; docs/scenarios.md).
        domain_tasks: tasks of the domain scenario (None there: 5); None in the others.
    """

    method: str
    dataset: str = ""
    model: str = "fcnet"
    hidden: tuple | None = None
    init_classes: int = 2
    inc_classes: int = 2
    epochs: int = 100
    lr: float = 0.01
    milestones: tuple = (50,)
    gamma: float = 0.1
    apply_milestones: bool = False
    batch_size: int = 128
    test_batch_size: int = 128
    feature_batch_size: int = 64
    memory: int = 200
    T: float = 2.0
    lwf_weight: float = 3.0
    val_ratio: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 2e-4
    augment: bool = False
    nme: bool = field(default=None)  # None -> the method's default_nme
    bic_stage2_train_mode: bool = True
    bic_stage2_softmax: bool = False
    min_steps: int = 0              # at least this many SGD steps per training stage
    conv_bias: bool | None = None   # ResNet 3x3 convs; None: the arithmetic's (quirk 3)
    conv_init: str | None = None    # "kaiming_uniform" or "he_normal"; None: as conv_bias
    attn_products: str = "file"     # model files: "none", "qk", "av", "qk,av"; "file": the file's
    scenario: str = "class"
    domain_tasks: int | None = None

    def __post_init__(self):
        try:
            method_class(self.method)
            scenario_of(self.scenario)
        except ValueError as e:
            raise ValueError(f"CILConfig: {e}") from None
        why = refusal(self.method, self.scenario)
        if why is not None:
            raise ValueError(why)
        if self.scenario == "domain":
            if self.domain_tasks is None:
                object.__setattr__(self, "domain_tasks", DEFAULT_DOMAIN_TASKS)
            v = self.domain_tasks
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"CILConfig: domain_tasks must be a positive int, got {v!r}")
        elif self.domain_tasks is not None:
            raise ValueError(f"domain_tasks={self.domain_tasks} applies to the domain scenario "
                             f"only, not {self.scenario}")
        model_spec(self.model)          # a registered name or a valid model file
        for name in ("init_classes", "inc_classes", "epochs", "batch_size",
                     "test_batch_size", "feature_batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"CILConfig: {name} must be a positive int, got {v!r}")
        if not isinstance(self.memory, int) or self.memory < 0:
            raise ValueError(f"CILConfig: memory must be a non-negative int, got {self.memory!r}")
        for name in ("lr", "T"):
            v = getattr(self, name)
            if not (v > 0) or v != v:
                raise ValueError(f"CILConfig: {name} must be > 0, got {v!r}")
        for name in ("gamma", "lwf_weight", "momentum", "weight_decay"):
            v = getattr(self, name)
            if not (v >= 0):
                raise ValueError(f"CILConfig: {name} must be >= 0, got {v!r}")
        if not (0.0 <= self.val_ratio < 1.0):
            raise ValueError(f"CILConfig: val_ratio must be in [0, 1), got {self.val_ratio!r}")
        ms = tuple(int(m) for m in self.milestones)
        if any(m < 1 for m in ms) or list(ms) != sorted(ms):
            raise ValueError(f"CILConfig: milestones must be increasing positive epochs, got {self.milestones!r}")
        object.__setattr__(self, "milestones", ms)
        if self.hidden is not None:
            h = (self.hidden,) if isinstance(self.hidden, int) else tuple(int(x) for x in self.hidden)
            if not h or any(x < 1 for x in h):
                raise ValueError(f"CILConfig: hidden must be positive widths, got {self.hidden!r}")
            object.__setattr__(self, "hidden", h)
        if self.nme is None:
            object.__setattr__(self, "nme", method_class(self.method).default_nme)

    @property
    def uses_memory(self) -> bool:
        """True for methods that replay exemplars (the method's ``uses_memory``)."""
        return method_class(self.method).uses_memory

    @property
    def classifier_bias(self) -> bool:
        """The method's classifier has a bias (BiC only, docs/paper.md sec 10)."""
        return method_class(self.method).classifier_bias

    @property
    def effective_milestones(self) -> tuple:
        """Milestones actually applied by the LR scheduler."""
        return self.milestones if self.apply_milestones else ()

    def replace(self, **changes) -> "CILConfig":
        """A copy with some fields changed (validated again)."""
        if "method" in changes and "nme" not in changes:
            changes["nme"] = None
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain dict (JSON-able) of all fields."""
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        d["hidden"] = None if self.hidden is None else list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CILConfig":
        """Inverse of to_dict; unknown keys raise ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"CILConfig: unknown fields {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def for_dataset(cls, name: str, method: str, **overrides) -> "CILConfig":
        """The paper's hyperparameters for dataset ``name`` (docs/paper.md sec 9).

        The dataset's schedule (intsim.data.registry), then its cil_overrides:
        "image" (CIFAR-100): ResNet-32, 20/20 classes, 170 epochs, lr 0.05 x0.1 at
        60/100/140, memory 2000, augmentation on.
        "har" (hapt/dsads/pamap2; mnist, fashion-mnist, synthetic): FCNet with hidden width = input width, 2/2 classes,
        100 epochs, lr 0.01 constant as run (quirk 4; pass
        apply_milestones=True for the intended x0.1 at epoch 50), memory 200.
        Shared: batch 128, T=2, LwF weight 3, BiC val ratio 0.1, momentum 0.9,
        weight decay 2e-4, test batch 128, feature batch 64.
        Any field can be overridden by keyword.
        """
        try:
            spec = dataset_spec(name)
        except ValueError as e:
            raise ValueError(f"CILConfig.for_dataset: {e}") from None
        base = dict(PAPER_SCHEDULES[spec.schedule], dataset=spec.name, model=spec.model)
        base.update(spec.cil_overrides)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - names
        if unknown:
            raise ValueError(f"CILConfig.for_dataset: unknown fields {sorted(unknown)}")
        base.update(overrides)
        return cls(method=method, **base)
