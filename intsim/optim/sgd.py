"""SGD with momentum and weight decay (PyTorch semantics) and a MultiStepLR schedule."""
import numpy as np
from numba import njit


@njit(cache=True)
def _sgd_update(w, g, b, lr, wd, mom, use_wd, use_mom, first):
    """One fused pass of SGD.step over flat float arrays (w, b updated in place).

    Same float operations, in the same order and precision, as the NumPy form
    (no fastmath: no FMA contraction), so the bits match it.
    """
    for i in range(w.size):
        d = g[i]
        if use_wd:
            d = d + wd * w[i]
        if use_mom:
            if first:
                b[i] = d
            else:
                d = b[i] * mom + d
                b[i] = d
        w[i] = w[i] - lr * d


class SGD:
    """PyTorch-style SGD: d = grad + wd * w; v = momentum * v + d (v = d at the
    first step); w -= lr * v. Parameters whose .grad is None are skipped.

    params: list of intsim.nn.Parameter (the list is kept; classifier growth
    needs a fresh optimiser, as the paper creates one per task).
    """

    def __init__(self, params, lr, momentum=0.9, weight_decay=2e-4):
        self.params = list(params)
        if not self.params:
            raise ValueError("SGD got an empty parameter list")
        if not lr >= 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"bad SGD hyperparameters lr={lr} momentum={momentum} wd={weight_decay}")
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self._buf = [None] * len(self.params)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        lr = np.float32(self.lr)
        wd = np.float32(self.weight_decay)
        mom = np.float32(self.momentum)
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if p.grad.shape != p.data.shape:
                raise ValueError(f"parameter {p.name!r}: grad shape {p.grad.shape} != {p.data.shape}")
            w, g = p.data, p.grad
            if (w.dtype == np.float32 and g.dtype == np.float32 and w.flags.c_contiguous
                    and g.flags.c_contiguous):
                b = self._buf[i] if mom else None
                first = b is None or b.shape != w.shape
                if mom and first:
                    b = np.empty_like(w)
                _sgd_update(w.reshape(-1), g.reshape(-1),
                            b.reshape(-1) if mom else w.reshape(-1)[:0],
                            lr, wd, mom, bool(wd), bool(mom), first)
                if mom:
                    self._buf[i] = b
                continue
            d = p.grad.astype(p.data.dtype, copy=True)
            if wd:
                d += wd * p.data
            if mom:
                b = self._buf[i]
                if b is None or b.shape != d.shape:
                    b = d
                else:
                    b *= mom
                    b += d
                self._buf[i] = b
                d = b
            p.data -= lr * d

    def state_dict(self):
        """{"lr", "momentum", "weight_decay": float, "buf.<i>": array (present buffers)}."""
        d = {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}
        for i, b in enumerate(self._buf):
            if b is not None:
                d[f"buf.{i}"] = b.copy()
        return d

    def load_state_dict(self, d):
        self.lr = float(d["lr"])
        self.momentum = float(d["momentum"])
        self.weight_decay = float(d["weight_decay"])
        bufs = [None] * len(self.params)
        for k, v in d.items():
            if k.startswith("buf."):
                i = int(k[4:])
                if i >= len(self.params) or np.shape(v) != self.params[i].data.shape:
                    raise ValueError(f"optimizer state {k} does not match the parameters")
                bufs[i] = np.array(v, dtype=self.params[i].data.dtype, copy=True)
        self._buf = bufs


class MultiStepLR:
    """lr = base_lr * gamma^(number of milestones <= epoch); step() once per epoch."""

    def __init__(self, optimizer, milestones, gamma=0.1):
        ms = [int(m) for m in milestones]
        if ms != sorted(ms):
            raise ValueError(f"milestones must be increasing ints, got {milestones!r}")
        self.optimizer = optimizer
        self.milestones = ms
        self.gamma = float(gamma)
        self.base_lr = optimizer.lr
        self.epoch = 0

    def get_lr(self):
        n = sum(1 for m in self.milestones if m <= self.epoch)
        return self.base_lr * self.gamma ** n

    def step(self):
        self.epoch += 1
        self.optimizer.lr = self.get_lr()

    def state_dict(self):
        return {"epoch": self.epoch, "base_lr": self.base_lr, "gamma": self.gamma,
                "milestones": np.asarray(self.milestones, np.int64)}

    def load_state_dict(self, d):
        self.epoch = int(d["epoch"])
        self.base_lr = float(d["base_lr"])
        self.gamma = float(d["gamma"])
        self.milestones = [int(m) for m in np.asarray(d["milestones"]).ravel()]
        self.optimizer.lr = self.get_lr()
