"""MEMO's model: shared generalized blocks, then one specialized block per task.

MEMO (Zhou et al., ICLR 2023, "A model or 603 exemplars") as the paper's
released code builds it (QuantizedCIL utils/inc_net.py ``AdaptiveNet``)::

    x -> generalized -> s0, s1, ... (each on the generalized features)
      -> features concatenated -> classifier;  aux head on the newest block

``MemoModel`` is a GrowingModel (intsim.models.growing) whose growing blocks
are the specialized blocks: ``specialized`` is a ConcatBackbones with
children ``s0, s1, ...`` (``blocks``, ``add_backbone``, ``freeze_old``,
``set_aux``, the classifier widening and the state_dict growth are the
GrowingModel's). Before them runs ``generalized``, one module shared by all
tasks. ``freeze_generalized()`` freezes it (eval mode: BatchNorm uses and
keeps its running statistics; no gradient; its backward is not run); while
it trains, each specialized block's first layer computes its input gradient
and the shared part's backward runs on their sum.

The split comes from the model family (its ``memo_split`` and ``memo_block``
methods, beside the model): ResNet-32 as ``backbones/memo_cifar_resnet.py``
(generalized = stem + stages 1-2, specialized = stage 3 + pooling), FCNet as
``backbones/fc_net.py get_memo_fcnet`` (generalized = the run's FCNet
layers, specialized = two more Linear(h -> h) + ReLU layers).

:func:`adopt_memo` turns the run's built model into a MemoModel in place (the
run driver and run_cil keep their reference to it for the audit), as
intsim.models.growing.adopt does for DER. Audit names: ``generalized.0``,
..., ``specialized.s0.0``, ``specialized.s1.0``, ..., ``classifier``,
``aux``. state_dict adds ``generalized_frozen`` to the GrowingModel's
record of the blocks, so a resumed run rebuilds the grown model.
"""
from __future__ import annotations

import numpy as np

from intsim.nn.model import Model

from .growing import ConcatBackbones, GrowingModel, grown_class, set_input_grad


class MemoModel(GrowingModel):
    """A Model made of ``generalized`` and the specialized ``blocks``; see the module
    docstring. Not constructed directly: :func:`adopt_memo` makes one."""

    @property
    def blocks(self) -> ConcatBackbones:
        return self.specialized

    def _new_block(self, rng):
        """A fresh specialized block from the model family's memo_block, drawn from rng."""
        return self.memo_block(rng), self.blocks.dims[0]

    def _block_input_grad(self) -> bool:
        return not self.generalized_frozen

    # ------------------------------------------------------------ passes
    def generalized_features(self, x):
        """The shared part's output on the data (frozen: in eval mode)."""
        if self.generalized_frozen and self.generalized.training:
            self.generalized.eval()
        return self.generalized.forward(self._input(x))

    def features(self, x):
        """The specialized blocks' features, concatenated (B, feature_dim)."""
        return self.specialized.forward(self.generalized_features(x))

    def backward_features(self, grad):
        """Backward of the trainable specialized blocks, then (not frozen) of the
        shared part on the sum of their input gradients. Returns None."""
        g = self.specialized.backward(grad)
        if self.generalized_frozen or g is None:
            return None
        return self.generalized.backward(g)

    # ------------------------------------------------------------ freezing
    def freeze_generalized(self) -> None:
        """Eval mode, no gradient, backward not run; the specialized blocks stop
        computing input gradients (nobody reads them any more)."""
        self.generalized_frozen = True
        self.generalized.eval()
        for p in self.generalized.parameters():
            p.grad = None
        for i in range(self.num_backbones):
            set_input_grad(self.blocks.backbone(i), False)

    def trainable_parameters(self) -> list:
        shared = [] if self.generalized_frozen else self.generalized.parameters()
        return shared + super().trainable_parameters()

    def train(self, mode=True):
        super().train(mode)
        if self.generalized_frozen:
            self.generalized.eval()
        return self

    # ------------------------------------------------------------ persistence
    def state_dict(self):
        d = super().state_dict()
        d["generalized_frozen"] = np.asarray(int(self.generalized_frozen), np.int64)
        return d

    def load_state_dict(self, d):
        """Freeze the shared part as recorded, then grow and load (GrowingModel)."""
        if "generalized_frozen" in d:
            frozen = bool(int(np.asarray(d["generalized_frozen"])))
            if self.generalized_frozen and not frozen:
                raise ValueError("state has a trainable generalized part, the model's is frozen")
            if frozen and not self.generalized_frozen:
                self.freeze_generalized()
        super().load_state_dict(d)


def adopt_memo(model: Model, rng) -> MemoModel:
    """Turn the built ``model`` into a MemoModel in place and return it.

    ``model.memo_split(rng)`` gives the generalized part (the model's own
    layers) and the first specialized block ``s0`` (the model's own last stage
    for ResNet; drawn from rng for FCNet); the classifier is kept (it reads
    s0's features, model.feature_dim wide). Later blocks come from
    ``model.memo_block(rng)``.
    """
    if isinstance(model, MemoModel):
        return model
    if isinstance(model, GrowingModel):
        raise ValueError("adopt_memo: the model already grows as DER's GrowingModel")
    if not isinstance(model, Model) or not hasattr(model, "memo_split"):
        raise ValueError(f"adopt_memo: {type(model).__name__} has no MEMO split "
                         f"(memo_split / memo_block)")
    d = int(model.feature_dim)
    if model.classifier.in_features != d:
        raise ValueError(f"adopt_memo: classifier reads {model.classifier.in_features} "
                         f"features, the model gives {d}")
    generalized, s0 = model.memo_split(rng)
    training = model.training
    model.__class__ = grown_class(type(model), MemoModel)
    model._modules.pop("backbone", None)
    model.__dict__.pop("backbone", None)
    object.__setattr__(model, "generalized_frozen", False)
    object.__setattr__(model, "aux", None)
    cat = ConcatBackbones(prefix="s")
    cat.add(s0, d, input_grad=True)
    model.generalized = generalized
    model.specialized = cat
    model._modules.move_to_end("specialized", last=False)
    model._modules.move_to_end("generalized", last=False)
    return model.train(training)
