"""The layer kinds a model file names: each is one registered :class:`LayerKind`.

A kind declares its settings (name -> default; :data:`REQUIRED` for none),
computes its output shape from its input shape (per sample, no batch axis),
and builds its module. ``shape`` and ``build`` raise ValueError with a short
reason; intsim.models.modelfile adds the file, the layer's index and kind.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from intsim import nn
from intsim.nn.attention import PRODUCTS

#: a setting without a default
REQUIRED = object()

#: kind name -> LayerKind
LAYER_KINDS: dict[str, "LayerKind"] = {}


@dataclass(frozen=True)
class BuildContext:
    """What every layer is built with: the datapath of the run, the Generator the
    init draws from (layers in file order), and the file's default
    ``quantize_products`` of attention layers."""
    arith: Any
    rng: np.random.Generator
    quantize_products: tuple = ()


@dataclass(frozen=True)
class LayerKind:
    """name: the ``kind`` of a model file's layer. settings: {setting: default or
    REQUIRED}. shape(in_shape, s) -> out_shape and build(in_shape, s, ctx) ->
    Module, s being the layer's settings with the defaults filled in. A ``None``
    default means "from the input shape" (e.g. Linear's ``in``). ``trains``: the
    module has parameters (where MEMO may split a file's network: a part without
    any trains nothing)."""
    name: str
    settings: dict
    shape: Callable
    build: Callable
    doc: str = ""
    trains: bool = False


def register_layer_kind(kind: LayerKind) -> LayerKind:
    LAYER_KINDS[kind.name] = kind
    return kind


def _ndim(shape, dims, what):
    if len(shape) not in dims:
        want = " or ".join(f"{d}-D" for d in dims)
        raise ValueError(f"takes {want} input per sample ({what}), got {list(shape)}")


def _match(s, key, actual):
    if s.get(key) is not None and s[key] != actual:
        raise ValueError(f"{key} = {s[key]} does not match its input's {actual}")
    return actual


def _positive(s, *keys):
    for k in keys:
        if not isinstance(s[k], int) or isinstance(s[k], bool) or s[k] < 1:
            raise ValueError(f"{k} must be a positive integer, got {s[k]!r}")


def _same(shape, s):
    return tuple(shape)


def _kind(name, settings, shape, build, doc, trains=False):
    register_layer_kind(LayerKind(name, settings, shape, build, doc, trains))


# -- products under the datapath ------------------------------------------------
def _linear_shape(shape, s):
    _ndim(shape, (1, 2), "(features) or (tokens, features)")
    _positive(s, "out")
    _match(s, "in", shape[-1])
    return tuple(shape[:-1]) + (s["out"],)


_kind("linear", {"out": REQUIRED, "in": None, "bias": True}, _linear_shape,
      lambda sh, s, c: nn.TokenLinear(sh[-1], s["out"], bool(s["bias"]), c.arith, c.rng),
      "(..., in) -> (..., out), every token through the datapath", trains=True)


def _conv_out(n, s):
    o = (n + 2 * s["padding"] - s["kernel"]) // s["stride"] + 1
    if o < 1:
        raise ValueError(f"kernel {s['kernel']} does not fit an input of {n} "
                         f"(padding {s['padding']})")
    return o


def _conv2d_shape(shape, s):
    _ndim(shape, (3,), "(channels, height, width)")
    _positive(s, "out", "kernel", "stride", "groups")
    _match(s, "in", shape[0])
    if shape[0] % s["groups"] or s["out"] % s["groups"]:
        raise ValueError(f"groups = {s['groups']} does not divide in = {shape[0]} and "
                         f"out = {s['out']}")
    return (s["out"], _conv_out(shape[1], s), _conv_out(shape[2], s))


_kind("conv2d", {"out": REQUIRED, "kernel": REQUIRED, "stride": 1, "padding": 0, "groups": 1,
                 "bias": True, "in": None}, _conv2d_shape,
      lambda sh, s, c: nn.Conv2d(sh[0], s["out"], s["kernel"], s["stride"], s["padding"],
                                 bool(s["bias"]), c.arith, c.rng, groups=s["groups"]),
      "(C, H, W) -> (out, H', W'); groups = C is depthwise", trains=True)


def _attention_shape(shape, s):
    _ndim(shape, (2,), "(tokens, width)")
    _positive(s, "heads")
    _match(s, "dim", shape[1])
    if shape[1] % s["heads"]:
        raise ValueError(f"width {shape[1]} is not divisible into {s['heads']} heads")
    qp = s["quantize_products"]
    if qp is not None and (not isinstance(qp, list) or set(qp) - set(PRODUCTS)):
        raise ValueError(f"quantize_products takes a list of {list(PRODUCTS)}, got {qp!r}")
    return tuple(shape)


def _attention(shape, s, c):
    qp = c.quantize_products if s["quantize_products"] is None else tuple(s["quantize_products"])
    return nn.MultiHeadSelfAttention(shape[1], s["heads"], c.arith, c.rng,
                                     quantize_products=qp, causal=bool(s["causal"]),
                                     bias=bool(s["bias"]))


_kind("attention", {"heads": REQUIRED, "dim": None, "causal": False, "bias": True,
                    "quantize_products": None}, _attention_shape, _attention,
      "(T, dim) -> (T, dim), multi-head self-attention", trains=True)


# -- float32 layers ---------------------------------------------------------------
def _layernorm_shape(shape, s):
    _match(s, "dim", shape[-1])
    if not (isinstance(s["eps"], (int, float)) and s["eps"] > 0):
        raise ValueError(f"eps must be a positive number, got {s['eps']!r}")
    return tuple(shape)


_kind("layernorm", {"dim": None, "eps": 1e-5}, _layernorm_shape,
      lambda sh, s, c: nn.LayerNorm(sh[-1], float(s["eps"])), "over the last axis",
      trains=True)
_kind("gelu", {}, _same, lambda sh, s, c: nn.GELU(), "exact erf form")
_kind("relu", {}, _same, lambda sh, s, c: nn.ReLU(), "")


def _dropout_shape(shape, s):
    if not (isinstance(s["p"], (int, float)) and 0 <= s["p"] < 1):
        raise ValueError(f"p must be in [0, 1), got {s['p']!r}")
    return tuple(shape)


_kind("dropout", {"p": REQUIRED}, _dropout_shape,
      lambda sh, s, c: nn.Dropout(float(s["p"]), c.rng), "seeded inverted dropout")


def _embedding_shape(shape, s):
    _ndim(shape, (1,), "(tokens) of integer ids")
    _positive(s, "num", "dim")
    return (shape[0], s["dim"])


_kind("embedding", {"num": REQUIRED, "dim": REQUIRED}, _embedding_shape,
      lambda sh, s, c: nn.Embedding(s["num"], s["dim"], c.rng),
      "integer ids (T) -> (T, dim); only as the first layer", trains=True)


def _position_shape(shape, s):
    _ndim(shape, (2,), "(tokens, width)")
    return tuple(shape)


_kind("position", {}, _position_shape,
      lambda sh, s, c: nn.PositionEmbedding(sh[0], sh[1], c.rng),
      "x + a learned (T, dim) table", trains=True)


def _tokens_shape(shape, s):
    _ndim(shape, (2, 3), "(C, L) or (C, H, W)")
    return (int(np.prod(shape[1:])), shape[0])


_kind("tokens", {}, _tokens_shape, lambda sh, s, c: nn.Tokens(),
      "(C, H, W) -> (H W, C); (C, L) -> (L, C)")


def _patches_shape(shape, s):
    _ndim(shape, (2,), "(channels, length)")
    _positive(s, "size")
    if shape[1] % s["size"]:
        raise ValueError(f"size {s['size']} does not divide the length {shape[1]}")
    return (shape[1] // s["size"], shape[0] * s["size"])


_kind("patches1d", {"size": REQUIRED}, _patches_shape,
      lambda sh, s, c: nn.Patches1d(s["size"]), "(C, L) -> (L / size, C size)")


def _token_mean_shape(shape, s):
    _ndim(shape, (2,), "(tokens, width)")
    return (shape[1],)


_kind("token_mean", {}, _token_mean_shape, lambda sh, s, c: nn.TokenMean(),
      "(T, dim) -> (dim): mean pooling")
_kind("flatten", {}, lambda sh, s: (int(np.prod(sh)),), lambda sh, s, c: nn.Flatten(),
      "(...) -> (prod ...)")


def _global_avgpool_shape(shape, s):
    _ndim(shape, (3,), "(channels, height, width)")
    return (shape[0],)


_kind("global_avgpool", {}, _global_avgpool_shape, lambda sh, s, c: nn.GlobalAvgPool(),
      "(C, H, W) -> (C)")


def _pool_shape(dims):
    def shape(sh, s):
        _ndim(sh, (dims + 1,), "(channels, height, width)" if dims == 2 else "(channels, length)")
        stride = s["stride"] if s["stride"] is not None else s["kernel"]
        _positive(dict(s, stride=stride), "kernel", "stride")
        t = dict(s, stride=stride)
        return (sh[0],) + tuple(_conv_out(n, t) for n in sh[1:])
    return shape


for _name, _cls in (("maxpool2d", nn.MaxPool2d), ("avgpool2d", nn.AvgPool2d),
                    ("maxpool1d", nn.MaxPool1d), ("avgpool1d", nn.AvgPool1d)):
    _kind(_name, {"kernel": REQUIRED, "stride": None, "padding": 0},
          _pool_shape(2 if _name.endswith("2d") else 1),
          (lambda cls: lambda sh, s, c: cls(s["kernel"], s["stride"], s["padding"]))(_cls),
          "stride defaults to the kernel")
