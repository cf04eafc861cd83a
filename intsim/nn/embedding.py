"""Embedding: a table lookup in float32 (no product, so no datapath)."""
import numpy as np

from intsim.nn.module import Module, Parameter


class Embedding(Module):
    """Integer ids (...) -> rows of ``weight`` (..., dim).

    weight: (num, dim) float32, N(0, 1) as PyTorch's nn.Embedding. The backward
    sums the gradient rows of equal ids into weight.grad (scatter-add) and
    returns None: ids have no gradient.
    """

    def __init__(self, num, dim, rng):
        super().__init__()
        if int(num) < 1 or int(dim) < 1:
            raise ValueError(f"bad Embedding({num}, {dim})")
        self.num, self.dim = int(num), int(dim)
        self.weight = Parameter(rng.standard_normal((self.num, self.dim)).astype(np.float32),
                                "weight")

    def forward(self, ids):
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise ValueError(f"Embedding expects integer ids, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num):
            raise ValueError(f"Embedding({self.num}) got ids outside 0..{self.num - 1}")
        self._ids = ids
        return self.weight.data[ids]

    def backward(self, grad):
        dw = np.zeros_like(self.weight.data)
        np.add.at(dw, self._ids.reshape(-1), grad.reshape(-1, self.dim).astype(dw.dtype))
        self.weight.grad = dw
        return None
