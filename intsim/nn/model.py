"""Model base: a backbone producing features plus a growing linear classifier.

Implements the model API every network shares (forward/backward/features,
add_classes, state_dict with num_classes, save/load .npz, rng_state).
"""
import json
import os

import numpy as np

from intsim.nn.linear import Linear
from intsim.nn.module import Module


class Model(Module):
    """Sub-classes set ``self.backbone`` (Module: input -> (B, feature_dim)),
    ``self.feature_dim`` and call ``self._make_classifier(num_classes, bias, rng)``."""

    def _make_classifier(self, num_classes, bias, rng):
        self.classifier = Linear(self.feature_dim, num_classes, bias, self.arith, rng)
        self._first_layer_without_input_grad()

    def _first_layer_without_input_grad(self):
        """The first layer that takes the data needs no input gradient: it is not
        computed, nor audited (its backward returns None), as on hardware and in
        autograd. The random draws of every other pass stay as they were."""
        for _, m in self.backbone.named_modules():
            if hasattr(m, "need_input_grad"):
                m.need_input_grad = False
                return

    @property
    def num_classes(self):
        return self.classifier.out_features

    def features(self, x):
        """Backbone output (B, feature_dim) float32 (call in eval mode for herding/NME)."""
        return self.backbone.forward(self._input(x))

    def _input(self, x):
        x = np.asarray(x)
        if x.dtype != self.classifier.weight.data.dtype:
            x = x.astype(self.classifier.weight.data.dtype)
        if not np.isfinite(x).all():
            raise ValueError("model input contains NaN or inf")
        return x

    def forward(self, x):
        """x -> logits (B, num_classes) float32."""
        f = self.features(x)
        if self.num_classes == 0:
            raise ValueError("model has no classes yet; call add_classes first")
        return self.classifier.forward(f)

    def backward(self, grad_logits):
        """dL/dlogits (B, num_classes) -> None (the first layer computes no input
        gradient); fills .grad of all parameters."""
        return self.backbone.backward(self.classifier.backward(grad_logits))

    def add_classes(self, n, rng):
        """Grow the classifier by n outputs, keeping the old rows (and their Parameters)."""
        self.classifier.add_outputs(n, rng)

    # -- persistence ------------------------------------------------------
    def state_dict(self):
        d = super().state_dict()
        d["num_classes"] = np.asarray(self.num_classes, np.int64)
        return d

    def load_state_dict(self, d):
        if "num_classes" in d:
            n = int(np.asarray(d["num_classes"]))
            if n != self.num_classes:
                self.classifier.weight.data = np.zeros((n, self.feature_dim), np.float32)
                if self.classifier.bias is not None:
                    self.classifier.bias.data = np.zeros(n, np.float32)
                self.classifier.out_features = n
        super().load_state_dict(d)

    def save(self, path):
        """Write parameters, buffers, num_classes and the layers' rng states to .npz."""
        d = self.state_dict()
        d["__rng_state__"] = np.asarray(json.dumps(self.rng_state()))
        tmp = str(path) + ".tmp.npz"
        np.savez(tmp, **d)
        os.replace(tmp, path)

    def load(self, path):
        """Load what save() wrote (FileNotFoundError / ValueError on a bad file)."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"model file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
        except Exception as e:  # corrupt zip / npy
            raise ValueError(f"cannot read model file {path}: {e}") from e
        rs = d.pop("__rng_state__", None)
        self.load_state_dict(d)
        if rs is not None:
            self.set_rng_state(json.loads(str(rs)))
        return self
