"""``synthetic``: a tiny deterministic Gaussian-blob dataset for smoke runs and tests.

6 classes (labels 1..6) of 24 float32 features, 40 training and 20 test
samples a class, drawn from np.random.default_rng(seed).
"""
import numpy as np

from .common import Dataset


def synthetic_dataset(num_classes: int = 6, dim: int = 24, per_class: int = 40,
                      seed: int = 0) -> Dataset:
    """Class centres N(0, 1)^dim; samples centre + 0.7 N(0, 1)^dim."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, (num_classes, dim))

    def draw(n):
        y = np.repeat(np.arange(1, num_classes + 1), n)
        X = centres[y - 1] + 0.7 * rng.normal(0.0, 1.0, (y.size, dim))
        return X.astype(np.float32), y.astype(np.int64)

    Xtr, ytr = draw(per_class)
    Xte, yte = draw(per_class // 2)
    return Dataset(X_train=Xtr, y_train=ytr, X_test=Xte, y_test=yte, users_train=None,
                   users_test=None, feature_names=None, name="synthetic",
                   class_names={c: f"c{c}" for c in range(1, num_classes + 1)})
