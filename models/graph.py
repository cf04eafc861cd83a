"""A network as a graph of layers: a sequence, or a residual block, of named modules,
and the Model a model file (intsim.models.modelfile) or Python code builds from it."""
from __future__ import annotations

import numpy as np

from intsim.nn.linear import check_arith
from intsim.nn.model import Model
from intsim.nn.module import Module
from intsim.nn.residual import Add


class Block(Module):
    """Named layers applied in order; ``residual``: the block's output is added to its
    input (the layers must keep the shape).

    ``layers``: [(name, Module)], each a sub-module under its name (the audit's
    and the checkpoint's names: ``<block>.<name>...``). backward runs the layers
    in reverse and stops at a ``None`` gradient (the layer that reads the data
    computes none), which only a non-residual block may meet.
    """

    def __init__(self, layers, residual=False):
        super().__init__()
        names = [n for n, _ in layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names repeat in a block: {names}")
        for name, m in layers:
            setattr(self, name, m)
        self.residual = bool(residual)
        if self.residual:
            self.add = Add()
        self._layer_names = tuple(names)

    def layers(self):
        """[(name, Module)] in order (the residual ``add`` is not one of them)."""
        return [(n, self._modules[n]) for n in self._layer_names]

    def forward(self, x):
        y = x
        for _, m in self.layers():
            y = m.forward(y)
        return self.add.forward(x, y) if self.residual else y

    def backward(self, grad):
        if self.residual:
            g_skip, grad = self.add.backward(grad)
        for _, m in reversed(self.layers()):
            grad = m.backward(grad)
            if grad is None:
                break
        if self.residual:
            return g_skip if grad is None else g_skip + grad
        return grad


class GraphModel(Model):
    """A Block of layers (the backbone: x (B, *in_shape) -> features (B, feature_dim))
    and the growing Linear classifier every intsim model ends with.

    backbone: a Block whose output is (B, feature_dim) float32; in_shape: the
    shape of one sample (the backbone's input without the batch axis);
    ``ids_input``: the first layer is an Embedding, so the input is integer ids.
    The first top-level layer with a product computes no input gradient when
    every layer before it is parameter-free (a reshape, patches): nothing reads
    it. rng draws the classifier; num_classes may be 0 (the learner grows it).
    """

    def __init__(self, backbone, feature_dim, in_shape, arith, rng, num_classes=0,
                 classifier_bias=False, ids_input=False, name="graph"):
        super().__init__()
        self.arith = check_arith(arith)
        self.backbone = backbone
        self.feature_dim = int(feature_dim)
        self.in_shape = tuple(int(n) for n in in_shape)
        self.ids_input = bool(ids_input)
        self.name = str(name)
        self._make_classifier(int(num_classes), bool(classifier_bias), rng)

    # -- MEMO's split (intsim.models.memo) ----------------------------------
    #: why MEMO cannot split this network (set by the model file); None with a split
    memo_problem = ("a network built in Python has no MEMO split; give it one with "
                    "set_memo_split")

    def set_memo_split(self, start: int, build_specialized) -> None:
        """MEMO's split: the backbone's top-level layers from index ``start`` on are the
        specialized part, those before it the shared (generalized) part;
        ``build_specialized(rng) -> Block`` builds a fresh specialized part under this
        model's arithmetic (the model file's layers from ``start`` on)."""
        n = len(self.backbone.layers())
        if not 0 < int(start) < n:
            raise ValueError(f"MEMO split {start} must leave layers on both sides of the "
                             f"{n} top-level layers")
        self._memo = (int(start), build_specialized)
        self.memo_problem = None

    def memo_split(self, rng=None):
        """(generalized, specialized) Blocks over this model's own top-level layers (the
        same modules); rng is not used. ValueError when the network has no split."""
        memo = getattr(self, "_memo", None)
        if memo is None:
            raise ValueError(f"model {self.name} cannot run MEMO: {self.memo_problem}")
        layers = self.backbone.layers()
        return Block(layers[:memo[0]]), Block(layers[memo[0]:])

    def memo_block(self, rng):
        """A fresh specialized part (feature_dim wide), drawn from rng."""
        return self._memo[1](rng)

    def _first_layer_without_input_grad(self):
        for _, m in self.backbone.layers():
            if hasattr(m, "need_input_grad"):
                m.need_input_grad = False
                return
            if m.parameters() or isinstance(m, Block):
                return

    def _input(self, x):
        x = np.asarray(x)
        if tuple(x.shape[1:]) != self.in_shape:
            if x.ndim >= 2 and int(np.prod(x.shape[1:])) == int(np.prod(self.in_shape)):
                x = x.reshape((len(x),) + self.in_shape)
            else:
                raise ValueError(f"model {self.name} expects (B, "
                                 f"{', '.join(map(str, self.in_shape))}) input, got shape "
                                 f"{x.shape}")
        if self.ids_input:
            return x.astype(np.int64)
        return super()._input(x)
