"""A growing model: several backbones whose features are concatenated (DER, MEMO).

``ConcatBackbones`` holds backbones ``b0, b1, ...`` (each a Module taking the
data), runs them all on the same input and concatenates their features
(feature_dim = sum of theirs). A backbone can be frozen: it stays in eval
mode (BatchNorm uses and keeps its running statistics), gets no gradient
and its backward is not run (not computed, not audited).

``GrowingModel`` is a Model whose ``backbone`` is a ConcatBackbones (its
``blocks``) and whose shared linear classifier grows in both directions:
``add_classes`` adds rows (old rows kept), ``add_backbone`` adds a fresh
backbone built by the model's factory and widens the classifier by its
feature columns (old weights kept). An optional auxiliary linear head ``aux``
reads the newest backbone's features (DER's and MEMO's auxiliary
classifier); the learner drives it. MEMO's model (intsim.models.memo) is a
subclass whose blocks run on the output of a shared part.

A GrowingModel is made from a built Model, in place (:func:`adopt`): the
object stays the same (the run driver and run_cil keep their reference to it
for the audit), its class becomes a subclass of both GrowingModel and its
own class (so the model's own input checks still apply), its backbone becomes
backbone ``b0``. :func:`growing_model` builds one from a factory.

The factory, ``factory(rng) -> Model``, builds a whole model of the run's
family under the run's arithmetic, drawing from ``rng``; only its
``.backbone`` and ``.feature_dim`` are used. The first layer of every
backbone takes the data, so it computes no input gradient.

state_dict records num_backbones, each backbone's feature width, which are
frozen and the aux head's width and bias; load_state_dict first grows the
model to that shape, so a resumed run rebuilds the grown model.
"""
from __future__ import annotations

import numpy as np

from intsim.nn.init import kaiming_uniform
from intsim.nn.linear import Linear
from intsim.nn.model import Model
from intsim.nn.module import Module


def first_layer(backbone: Module):
    """The first layer (in module order) with a need_input_grad flag, or None; None too
    when a module with parameters of its own comes before it (a LayerNorm before the
    first Linear): that module's backward needs the gradient to pass through."""
    for _, m in backbone.named_modules():
        if hasattr(m, "need_input_grad"):
            return m
        if m._params:
            return None
    return None


def set_input_grad(backbone: Module, flag: bool) -> None:
    """Whether backbone's first layer computes its input gradient (backward returns
    None without it: nobody reads the gradient of the backbone's input)."""
    m = first_layer(backbone)
    if m is not None:
        m.need_input_grad = bool(flag)


class ConcatBackbones(Module):
    """Backbones b0..b{n-1} on the same input; features concatenated along axis 1.

    x -> (B, sum(dims)). backward(grad (B, sum(dims))) runs each trainable
    backbone's backward on its columns and returns None when no backbone
    computes an input gradient (the usual case), else the sum of those given.
    ``prefix`` names the children (DER: b0, b1, ...; MEMO's specialized
    blocks: s0, s1, ...).
    """

    def __init__(self, prefix: str = "b"):
        super().__init__()
        self.prefix = str(prefix)
        self.dims: list[int] = []
        self.frozen: list[bool] = []

    def __len__(self):
        return len(self.dims)

    def backbone(self, i: int) -> Module:
        return self._modules[f"{self.prefix}{int(i)}"]

    def add(self, backbone: Module, dim: int, input_grad: bool = False) -> None:
        """Append a trainable backbone; its first layer computes an input gradient
        only with input_grad (MEMO: a trainable generalized part reads it)."""
        i = len(self.dims)
        set_input_grad(backbone, input_grad)
        setattr(self, f"{self.prefix}{i}", backbone)
        self.dims.append(int(dim))
        self.frozen.append(False)
        backbone.train(self.training)

    def freeze(self, i: int) -> None:
        """Backbone i: eval mode, no gradient (its parameters' .grad cleared)."""
        self.frozen[int(i)] = True
        b = self.backbone(i)
        b.eval()
        for p in b.parameters():
            p.grad = None

    def trainable_parameters(self) -> list:
        return [p for i in range(len(self)) if not self.frozen[i]
                for p in self.backbone(i).parameters()]

    def keep_frozen_eval(self) -> None:
        for i in range(len(self)):
            if self.frozen[i] and self.backbone(i).training:
                self.backbone(i).eval()

    def forward(self, x):
        if not self.dims:
            raise ValueError("ConcatBackbones has no backbone")
        self.keep_frozen_eval()
        feats = [self.backbone(i).forward(x) for i in range(len(self))]
        for i, (f, d) in enumerate(zip(feats, self.dims)):
            if f.ndim != 2 or f.shape[1] != d:
                raise ValueError(f"backbone {self.prefix}{i} gave features {f.shape}, "
                                 f"expected (B, {d})")
        return feats[0] if len(feats) == 1 else np.concatenate(feats, axis=1)

    def backward(self, grad):
        if grad.shape[-1] != sum(self.dims):
            raise ValueError(f"ConcatBackbones backward: grad shape {grad.shape}, "
                             f"features {sum(self.dims)}")
        dx, lo = None, 0
        for i, d in enumerate(self.dims):
            if not self.frozen[i]:
                g = grad if len(self.dims) == 1 else np.ascontiguousarray(grad[:, lo:lo + d])
                gi = self.backbone(i).backward(g)
                if gi is not None:
                    dx = gi if dx is None else dx + gi
            lo += d
        return dx


class GrowingModel(Model):
    """A Model over a ConcatBackbones; see the module docstring.

    Not constructed directly: :func:`adopt` turns a built Model into one,
    :func:`growing_model` builds one from a factory. The concatenated
    backbones are ``blocks`` (DER: ``backbone``; MEMO's subclass puts a shared
    part before them, intsim.models.memo).
    """

    # ------------------------------------------------------------ shape
    @property
    def blocks(self) -> ConcatBackbones:
        """The ConcatBackbones whose features the classifier reads."""
        return self.backbone

    @property
    def num_backbones(self) -> int:
        return len(self.blocks)

    @property
    def last_dim(self) -> int:
        return self.blocks.dims[-1]

    def _new_block(self, rng):
        """(module, feature width) of a fresh backbone: the factory's, drawn from rng."""
        new = self.factory(rng)
        if getattr(new, "arith", None) is not None and repr(new.arith) != repr(self.arith):
            raise ValueError(f"factory built a model in {new.arith!r}, not {self.arith!r}")
        return new.backbone, int(new.feature_dim)

    def _block_input_grad(self) -> bool:
        """Whether a block's first layer computes its input gradient (DER: never,
        the blocks take the data)."""
        return False

    def add_backbone(self, rng, copy_previous: bool = True) -> None:
        """A new backbone (drawing from rng), trainable; with copy_previous its
        parameters and buffers start as the previous backbone's. The classifier
        gets its feature columns: a fresh init (fan-in = the new feature_dim)
        whose old block is the old weights."""
        bb, d = self._new_block(rng)
        if copy_previous and self.num_backbones > 0:
            prev = self.blocks.backbone(self.num_backbones - 1)
            bb.load_state_dict(prev.state_dict())
        self._widen_classifier(d, rng)
        self.blocks.add(bb, d, input_grad=self._block_input_grad())

    def _widen_classifier(self, d: int, rng) -> None:
        clf = self.classifier
        old, C = clf.in_features, clf.out_features
        W = kaiming_uniform((C, old + d), old + d, rng).astype(clf.weight.data.dtype)
        W[:, :old] = clf.weight.data
        clf.weight.data = W       # the same Parameter (its data grows)
        clf.weight.grad = None
        clf.in_features = old + d
        self.feature_dim = old + d

    def freeze_backbone(self, i: int) -> None:
        self.blocks.freeze(i)

    def freeze_old(self) -> None:
        """Freeze every backbone but the newest."""
        for i in range(self.num_backbones - 1):
            self.blocks.freeze(i)

    def set_aux(self, n_out: int, rng, bias: bool = True) -> None:
        """A fresh auxiliary head Linear(last_dim -> n_out, bias) (n_out=0: none)."""
        if int(n_out) <= 0:
            self.aux = None
            self._modules.pop("aux", None)
            return
        self.aux = Linear(self.last_dim, int(n_out), bool(bias), self.arith, rng)

    def trainable_parameters(self) -> list:
        """Parameters of the unfrozen backbones, the classifier and the aux head."""
        ps = self.blocks.trainable_parameters() + self.classifier.parameters()
        if getattr(self, "aux", None) is not None:
            ps += self.aux.parameters()
        return ps

    def train(self, mode=True):
        super().train(mode)
        self.blocks.keep_frozen_eval()
        return self

    def backward(self, grad_logits):
        return self.backward_features(self.classifier.backward(grad_logits))

    def backward_features(self, grad):
        """dL/dfeatures (B, feature_dim) -> the trainable backbones' backward (None:
        no input gradient)."""
        return self.blocks.backward(grad)

    # ------------------------------------------------------------ persistence
    def state_dict(self):
        d = super().state_dict()
        d["num_backbones"] = np.asarray(self.num_backbones, np.int64)
        d["backbone_dims"] = np.asarray(self.blocks.dims, np.int64)
        d["frozen"] = np.asarray(self.blocks.frozen, np.int64)
        aux = getattr(self, "aux", None)
        d["aux_out"] = np.asarray(0 if aux is None else aux.out_features, np.int64)
        d["aux_bias"] = np.asarray(int(aux is not None and aux.bias is not None), np.int64)
        return d

    def load_state_dict(self, d):
        """Grow to the recorded number of backbones (and aux head), then load.
        The draws of the grown parts are irrelevant: everything is overwritten
        (the layers' rng states by set_rng_state)."""
        if "num_backbones" in d:
            n = int(np.asarray(d["num_backbones"]))
            if n < self.num_backbones:
                raise ValueError(f"state has {n} backbones, the model {self.num_backbones}")
            scratch = np.random.default_rng(0)
            while self.num_backbones < n:
                self.add_backbone(scratch, copy_previous=False)
            dims = [int(v) for v in np.asarray(d.get("backbone_dims", self.blocks.dims))]
            if dims != self.blocks.dims:
                raise ValueError(f"state has backbone widths {dims}, the model "
                                 f"{self.blocks.dims}")
            for i, f in enumerate(np.asarray(d.get("frozen", np.zeros(n)), dtype=bool)):
                if f:
                    self.blocks.freeze(i)
            aux_out = int(np.asarray(d.get("aux_out", 0)))
            aux_bias = bool(int(np.asarray(d.get("aux_bias", 1))))
            aux = getattr(self, "aux", None)
            if (0 if aux is None else aux.out_features) != aux_out or \
                    (aux is not None and (aux.in_features != self.last_dim
                                          or (aux.bias is not None) != aux_bias)):
                self.set_aux(aux_out, scratch, bias=aux_bias)
        super().load_state_dict(d)


_GROWN: dict[tuple, type] = {}


def grown_class(cls: type, base: type) -> type:
    """The class ``<base prefix><cls name>``, a subclass of both base and cls (cached)."""
    if issubclass(cls, base):
        return cls
    key = (base, cls)
    if key not in _GROWN:
        prefix = base.__name__.replace("Model", "")
        _GROWN[key] = type(f"{prefix}{cls.__name__}", (base, cls),
                           {"__module__": base.__module__,
                            "__doc__": f"{cls.__name__} grown into a {base.__name__}."})
    return _GROWN[key]


def adopt(model: Model, factory) -> GrowingModel:
    """Turn the built ``model`` into a GrowingModel in place and return it.

    Its backbone becomes backbone b0 of a ConcatBackbones (same Parameters),
    its classifier is kept; ``factory(rng) -> Model`` builds later backbones.
    """
    if isinstance(model, GrowingModel):
        model.factory = factory
        return model
    if not isinstance(model, Model):
        raise ValueError(f"adopt needs an intsim Model, got {type(model).__name__}")
    bb, d = model.backbone, int(model.feature_dim)
    model.__class__ = grown_class(type(model), GrowingModel)
    cat = ConcatBackbones()
    cat.add(bb, d)
    cat.train(model.training)
    model.backbone = cat
    model._modules.move_to_end("backbone", last=False)
    object.__setattr__(model, "factory", factory)
    object.__setattr__(model, "aux", None)
    return model


def growing_model(factory, rng) -> GrowingModel:
    """A GrowingModel with one backbone: adopt(factory(rng), factory)."""
    return adopt(factory(rng), factory)
