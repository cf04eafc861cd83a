"""The datapath interface every layer calls, and the registry of datapath kinds.

A layer computes ``y, ctx = datapath.forward(x, W, b, layout, site)`` and
later ``dx, dW, db = ctx.backward(g)``; it knows nothing of the arithmetic.

- x, W, b: the layer's input, weight (N, K) and bias (N,) or None, float32;
  ``layout`` (intsim.datapath.layout) says whether x are rows (Dense) or
  images (Conv) and how they unfold, or whether x and W are S pairs of
  activations (Batched: x (S, M, K), W (S, N, K), no bias);
- ``site``: what the layer owns for its datapath: ``rng`` (its Generator,
  for stochastic rounding), ``layer_audit`` (intsim.arith.qmatmul.LayerAudit),
  ``arith_state`` (per-layer state, :meth:`Datapath.new_state`; absent when
  None), ``training`` and ``need_input_grad`` (False for a first layer: dx
  is neither computed nor audited, and is None);
- dx like x, dW like W, db (N,) or None when b is None.

A datapath kind is a frozen dataclass of parts (intsim.datapath.parts, number
formats) registered with :func:`register_datapath` under its ``kind``; the
named presets (intsim.datapath.presets) are instances of these kinds.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from intsim.arith.qmatmul import PassAudit
from intsim.datapath.fields import check_fields, coerce_fields, to_plain

#: kind name -> datapath class
DATAPATHS: dict[str, type] = {}


def register_datapath(cls):
    """Class decorator: make ``cls`` a datapath kind, ``kind = cls.kind`` in a spec."""
    DATAPATHS[cls.kind] = cls
    return cls


@dataclass(frozen=True)
class Datapath:
    """Base of the datapath kinds (see the module docstring for the interface)."""

    kind = ""
    #: the layers give it a Generator and an audit (False only for the float baseline)
    quantized = True
    #: the optimizer quantizes the update (intsim.optim.make_optimizer)
    quantized_update = False
    #: the class of the per-pass audits of its layers
    pass_audit = PassAudit
    #: largest accumulator bits the audit's range reports (None: unlimited)
    acc_limit = None
    #: every BLAS product it runs sums integers exactly, so BLAS's thread count cannot
    #: change its bits (False: float sums, which OpenBLAS splits differently by thread
    #: count; a run then keeps BLAS at one thread, intsim.app.driver)
    blas_exact = False

    def __post_init__(self):
        check_fields(self)

    def new_state(self):
        """Per-layer state kept in the layer's buffer ``arith_state`` (None: none)."""
        return None

    def fresh_classifier_bias(self) -> bool:
        """Whether a classifier that grows gets a freshly initialised bias for every row
        (its old rows' bias dropped), as a released-code quirk requires; False: the old
        rows keep theirs."""
        return False

    def conv_style(self):
        """(bias, init) of ResNet's 3x3 convs under this datapath, as the released code:
        quantized layers have a bias and PyTorch's default init."""
        return (True, "kaiming_uniform") if self.quantized else (False, "he_normal")

    def forward(self, x, W, b, layout, site):
        """(y, ctx): the layer output and the context whose backward(g) gives (dx, dW, db)."""
        raise NotImplementedError

    def op_counts(self, pass_: str, shape, training: bool = True):
        """The operations of one call of ``pass_`` ("forward", "backward_input",
        "backward_weight") on a layer call of ``shape`` (intsim.datapath.layout.Shape),
        as an intsim.cost.tally.OpCounts, composed from the parts' own counts. A
        quantizer whose result both backward products read is counted in
        backward_weight (always computed). ``shape`` is one product (``items`` 1);
        :meth:`call_counts` counts a call of several."""
        raise NotImplementedError

    def call_counts(self, pass_: str, shape, training: bool = True):
        """The operations of one call of ``pass_`` on a layer call of ``shape``: a call of
        ``shape.items`` independent products (Batched, grouped Conv) counts each as one
        call of its item shape (:meth:`op_counts`)."""
        items = getattr(shape, "items", 1)
        if items == 1:
            return self.op_counts(pass_, shape, training)
        return self.op_counts(pass_, shape._replace(items=1), training).scaled(items)

    # ---------------------------------------------------------------- specs
    def to_spec(self) -> dict:
        """{"kind": kind, **fields as plain data} (parts as names or tables)."""
        return {"kind": self.kind, **{f.name: to_plain(getattr(self, f.name))
                                      for f in dataclasses.fields(self)}}

    @classmethod
    def from_fields(cls, values: dict, where: str = "datapath"):
        """An instance from a table of this kind's fields (ValueError, one line)."""
        kw = coerce_fields(cls, values, where)
        try:
            return cls(**kw)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None

    def with_settings(self, values: dict, where: str = "datapath"):
        """A copy with some fields changed; a dotted key (``accumulator.bits``) changes
        one field of a part."""
        flat, nested = {}, {}
        for k, v in values.items():
            head, _, rest = str(k).partition(".")
            if rest:
                nested.setdefault(head, {})[rest] = v
            else:
                flat[k] = v
        kw = coerce_fields(type(self), flat, where)
        for head, sub in nested.items():
            cur = kw.get(head, getattr(self, head, None))
            if cur is None or not hasattr(cur, "slot"):
                raise ValueError(f"{where}: {head!r} is not a part of datapath {self.kind}")
            spec = cur.to_spec()
            spec = {"kind": spec} if isinstance(spec, str) else dict(spec)
            spec.update(sub)
            kw.update(coerce_fields(type(self), {head: spec}, where))
        try:
            return dataclasses.replace(self, **kw)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None

    def describe(self) -> str:
        """One line: the kind and the fields that differ from the kind's defaults."""
        d = self.to_spec()
        base = type(self)().to_spec() if _default_constructible(type(self)) else {}
        diff = {k: v for k, v in d.items() if k != "kind" and base.get(k) != v}
        return self.kind + ("" if not diff else " " + ", ".join(f"{k}={v}" for k, v in diff.items()))


def _default_constructible(cls) -> bool:
    return all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
               for f in dataclasses.fields(cls))
