"""Fully connected net for the HAR data (hdqt.md sec 10)."""
import numpy as np

from intsim.nn import Linear, ReLU, Sequential
from intsim.nn.linear import check_arith
from intsim.nn.model import Model


class FCNet(Model):
    """Linear(in -> h1, no bias) -> ReLU -> ... -> Linear(-> h_last) -> ReLU -> classifier.

    x: (B, in_dim) float32 -> logits (B, num_classes). hidden: int or sequence
    of ints (the paper's net: hidden=(in_dim, in_dim)). features(x) is the
    last hidden layer's ReLU output (feature_dim = hidden[-1]). The
    classifier has a bias only if classifier_bias (BiC). Every Linear runs in
    ``arith``; rng (np.random.Generator) draws the init and seeds the layers'
    own Generators.
    """

    def __init__(self, in_dim, hidden, arith, rng, num_classes=0, classifier_bias=False):
        super().__init__()
        self.arith = check_arith(arith)
        hidden = [int(hidden)] if np.isscalar(hidden) else [int(h) for h in hidden]
        if int(in_dim) < 1 or not hidden or min(hidden) < 1 or int(num_classes) < 0:
            raise ValueError(f"bad FCNet sizes in_dim={in_dim} hidden={hidden} classes={num_classes}")
        self.in_dim = int(in_dim)
        self.hidden = tuple(hidden)
        layers = []
        d = self.in_dim
        for h in hidden:
            layers += [Linear(d, h, False, arith, rng), ReLU()]
            d = h
        self.backbone = Sequential(*layers)
        self.feature_dim = d
        self._make_classifier(int(num_classes), bool(classifier_bias), rng)

    def _input(self, x):
        x = super()._input(x)
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"FCNet expects (B, {self.in_dim}) input, got shape {x.shape}")
        return x
