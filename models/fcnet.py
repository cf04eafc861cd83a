"""Fully connected net for the HAR data (docs/paper.md sec 10)."""
import dataclasses
import numpy as np

from intsim.nn import Linear, ReLU, Sequential
from intsim.nn.linear import check_arith
from intsim.nn.model import Model
from intsim.models.registry import ModelSpec, register_model


def dense_layers(in_dim, hidden, arith, rng) -> list:
    """[Linear(in -> h1, no bias), ReLU, Linear(h1 -> h2, no bias), ReLU, ...]."""
    layers, d = [], int(in_dim)
    for h in hidden:
        layers += [Linear(d, int(h), False, arith, rng), ReLU()]
        d = int(h)
    return layers


class FCNet(Model):
    """Linear(in -> h1, no bias) -> ReLU -> ... -> Linear(-> h_last) -> ReLU -> classifier.

    x: (B, in_dim) float32 -> logits (B, num_classes). hidden: int or sequence
    of ints (the paper's net: hidden=(in_dim, in_dim)). features(x) is the
    last hidden layer's ReLU output (feature_dim = hidden[-1]). The
    classifier has a bias only if classifier_bias (BiC). Every Linear runs in
    ``arith``; rng (np.random.Generator) draws the init and seeds the layers'
    own Generators.

    MEMO (intsim.models.memo) uses it as the released get_memo_fcnet does:
    these layers are the generalized blocks, and each specialized block is
    two more Linear(h -> h, no bias) + ReLU layers, h = hidden[-1]
    (memo_split, memo_block).
    """

    #: Linear + ReLU layers of one MEMO specialized block (get_memo_fcnet: its
    #: adaptive net is FCNet(hid, hid, hid, nr_hid_layers=0), two layers)
    memo_block_layers = 2

    def __init__(self, in_dim, hidden, arith, rng, num_classes=0, classifier_bias=False):
        super().__init__()
        self.arith = check_arith(arith)
        hidden = [int(hidden)] if np.isscalar(hidden) else [int(h) for h in hidden]
        if int(in_dim) < 1 or not hidden or min(hidden) < 1 or int(num_classes) < 0:
            raise ValueError(f"bad FCNet sizes in_dim={in_dim} hidden={hidden} classes={num_classes}")
        self.in_dim = int(in_dim)
        self.hidden = tuple(hidden)
        self.backbone = Sequential(*dense_layers(self.in_dim, hidden, arith, rng))
        self.feature_dim = hidden[-1]
        self._make_classifier(int(num_classes), bool(classifier_bias), rng)

    # -- MEMO's split (backbones/fc_net.py get_memo_fcnet) ------------------
    def memo_split(self, rng):
        """(generalized, specialized): this model's own backbone (the same
        modules) and a first specialized block drawn from rng (memo_block)."""
        return self.backbone, self.memo_block(rng)

    def memo_block(self, rng):
        """A fresh specialized block: memo_block_layers x (Linear(h -> h, no
        bias) + ReLU), h = hidden[-1], drawn from rng in this model's arithmetic."""
        h = self.hidden[-1]
        return Sequential(*dense_layers(h, (h,) * self.memo_block_layers, self.arith, rng))

    def _input(self, x):
        x = super()._input(x)
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"FCNet expects (B, {self.in_dim}) input, got shape {x.shape}")
        return x


def _build(cc, arith, in_shape, rng):
    in_dim = int(np.prod(in_shape))
    hidden = cc.hidden if cc.hidden is not None else (in_dim, in_dim)
    return FCNet(in_dim, hidden, arith, rng, num_classes=0, classifier_bias=cc.classifier_bias)


def _prepare(ds):
    """Images are flattened (uint8 scaled to [0, 1]); feature vectors pass unchanged."""
    if ds.X_train.ndim == 2:
        return ds

    def flat(X):
        X = X.reshape(len(X), -1)
        return (X.astype(np.float32) / 255.0) if X.dtype == np.uint8 else X.astype(np.float32)
    return dataclasses.replace(ds, X_train=flat(ds.X_train), X_test=flat(ds.X_test))


register_model(ModelSpec("fcnet", _build, _prepare, options=("hidden",), description=(
    "fully connected net, hidden widths = --hidden (default: two layers as wide as the input)")))
