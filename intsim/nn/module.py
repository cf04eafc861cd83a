"""Parameter, Module base class and Sequential container.

Modules compute in the dtype of their parameters (float32 for training;
tests cast everything to float64 for finite-difference gradient checks).
Each module caches what its backward needs during forward; backward(grad)
returns the gradient with respect to the forward input and ADDS nothing:
it overwrites ``param.grad`` of its own parameters.
"""
from collections import OrderedDict

import numpy as np


class Parameter:
    """A trainable array: ``data`` (float32), ``grad`` (same shape or None), ``name``."""

    __slots__ = ("data", "grad", "name")

    def __init__(self, data, name=""):
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        self.grad = None
        self.name = name

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: registers sub-modules, parameters and buffers by attribute.

    Sub-classes implement forward(x) and backward(grad). Quantized layers
    additionally carry ``rng`` (their own np.random.Generator) and
    ``layer_audit`` (an intsim.arith.qmatmul.LayerAudit).
    """

    def __init__(self):
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_params", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_modules" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call Module.__init__ first")
        for d in (self._modules, self._params):
            d.pop(name, None)
        if isinstance(value, Module):
            self._modules[name] = value
        elif isinstance(value, Parameter):
            if not value.name:
                value.name = name
            self._params[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name, value):
        """A non-trainable array saved in state_dict (e.g. BatchNorm running stats)."""
        self._buffers[name] = None
        object.__setattr__(self, name, value)

    # -- traversal -------------------------------------------------------
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix=""):
        for mname, m in self.named_modules(prefix):
            for pname, p in m._params.items():
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self):
        """All trainable Parameters, in a fixed (registration) order."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        for mname, m in self.named_modules(prefix):
            for bname in m._buffers:
                yield (f"{mname}.{bname}" if mname else bname), getattr(m, bname)

    def train(self, mode=True):
        for _, m in self.named_modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def __call__(self, *inputs):
        return self.forward(*inputs)

    # -- audit and randomness of quantized layers -------------------------
    def audit(self):
        """{layer_name: {"forward"|"backward_input"|"backward_weight": Audit}}; a layer
        that computes no input gradient (the first) has no "backward_input"."""
        out = {}
        for name, m in self.named_modules():
            if getattr(m, "layer_audit", None) is None:
                continue
            passes = m.layer_audit.passes()
            if not getattr(m, "need_input_grad", True):
                passes = {p: a for p, a in passes.items() if p != "backward_input"}
            out[name] = passes
        return out

    def levels_used(self):
        """{layer_name: {tensor: running mean fraction of quantizer levels used}}."""
        return {name: m.layer_audit.levels() for name, m in self.named_modules()
                if getattr(m, "layer_audit", None) is not None}

    def reset_audit(self):
        for _, m in self.named_modules():
            if getattr(m, "layer_audit", None) is not None:
                m.layer_audit.reset()

    def rng_state(self):
        """{layer_name: bit-generator state dict} of every layer owning a Generator.

        JSON-able (plain dicts, str and int); restore with set_rng_state.
        """
        return {name: m.rng.bit_generator.state for name, m in self.named_modules()
                if getattr(m, "rng", None) is not None}

    def set_rng_state(self, state):
        mods = {name: m for name, m in self.named_modules() if getattr(m, "rng", None) is not None}
        missing = set(mods) - set(state)
        if missing:
            raise ValueError(f"rng state misses layers: {sorted(missing)}")
        for name, m in mods.items():
            m.rng.bit_generator.state = state[name]

    # -- state -----------------------------------------------------------
    def state_dict(self):
        """{name: np.ndarray copy} of parameters and buffers."""
        d = {name: p.data.copy() for name, p in self.named_parameters()}
        d.update({name: np.array(b, copy=True) for name, b in self.named_buffers()})
        return d

    def load_state_dict(self, d):
        """Load arrays saved by state_dict (shapes must match)."""
        for name, p in self.named_parameters():
            if name not in d:
                raise ValueError(f"state dict misses parameter {name!r}")
            arr = np.asarray(d[name])
            if arr.shape != p.data.shape:
                raise ValueError(f"parameter {name!r}: shape {arr.shape} != {p.data.shape}")
            p.data = np.ascontiguousarray(arr, dtype=np.float32)
            p.grad = None
        for mname, m in self.named_modules():
            for bname in m._buffers:
                full = f"{mname}.{bname}" if mname else bname
                if full not in d:
                    raise ValueError(f"state dict misses buffer {full!r}")
                cur = getattr(m, bname)
                arr = np.asarray(d[full])
                if np.shape(cur) != arr.shape:
                    raise ValueError(f"buffer {full!r}: shape {arr.shape} != {np.shape(cur)}")
                object.__setattr__(m, bname, arr.astype(np.asarray(cur).dtype, copy=True))

    def to_dtype(self, dtype):
        """Cast parameters and float buffers in place (tests use float64)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        for _, m in self.named_modules():
            for bname in m._buffers:
                b = getattr(m, bname)
                if np.asarray(b).dtype.kind == "f":
                    object.__setattr__(m, bname, np.asarray(b).astype(dtype))
        return self


class Sequential(Module):
    """Apply modules in order; backward runs them in reverse."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for m in self._modules.values():
            x = m.forward(x)
        return x

    def backward(self, grad):
        for m in reversed(self._modules.values()):
            grad = m.backward(grad)
        return grad
