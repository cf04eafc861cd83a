"""Model files: a network described in TOML, checked layer by layer, built as a GraphModel.

The format (docs/architecture.md, "A model in a file")::

    name = "tiny-mlp"                 # optional; the audit and messages use it
    input = [561]                     # one sample's shape (no batch axis)
    quantize_products = ["qk", "av"]  # attention products under the datapath (default: none)
    memo_split = "res1"               # MEMO's specialized part starts here (default below)
    layers = [
      { kind = "linear", out = 128 },
      { kind = "relu" },
      { block = "res", repeat = 2 },  # a named block, twice (res0, res1)
    ]

    [blocks.res]                      # x + linear(relu(linear(x)))
    residual = true
    layers = [{ kind = "linear", out = 128 }, { kind = "relu" }, { kind = "linear", out = 128 }]

A layer is ``{ kind = KIND, settings... }`` (kinds: intsim.models.layerkinds), a
use of a named block ``{ block = NAME, repeat = N }``, or an inline block
``{ kind = "residual", layers = [...] }`` (``kind = "sequence"``: without the
add). Every layer may set ``name`` (default: its kind or block name, numbered
when it occurs more than once in its block). The last layer's output is one
vector per sample (the features); the growing Linear classifier the CIL method
trains follows it. Every Linear and Conv2d runs under the run's datapath.

MEMO (``--method memo``) splits the top-level layers in two: the generalized
part shared by all tasks, then the specialized part each task gets a copy of.
``memo_split`` names the top-level layer or block the specialized part starts
at; by default it is the last top-level block with parameters, or without
blocks the last layer with parameters (for a transformer: its last encoder
block and the layers after it). Both parts must have parameters, else the
file refuses MEMO (and only MEMO) in one line.

:func:`read_model_file` checks a file (every problem is a ValueError of one
line naming the file, the layer's position and kind), :func:`build_model`
builds it, :func:`model_spec_from_file` makes it a ModelSpec (``--model FILE``).
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field

import numpy as np

from intsim.models.graph import Block, GraphModel
from intsim.models.layerkinds import LAYER_KINDS, REQUIRED, BuildContext
from intsim.models.registry import ModelSpec
from intsim.nn.attention import PRODUCTS

#: the top-level keys of a model file
FILE_KEYS = ("name", "description", "input", "quantize_products", "memo_split", "layers",
             "blocks")
#: the keys of a [blocks.NAME] table and of an inline block
BLOCK_KEYS = ("residual", "layers")
#: inline block kinds -> residual
INLINE_BLOCKS = {"residual": True, "sequence": False}


class ModelFileError(ValueError):
    """A model file is unreadable or describes no valid network (one-line message)."""


@dataclass(frozen=True)
class LayerPlan:
    """One checked layer: its name, kind, settings (defaults filled in) and per-sample
    input and output shapes."""
    name: str
    kind: str
    settings: dict
    in_shape: tuple
    out_shape: tuple


@dataclass(frozen=True)
class BlockPlan:
    """A checked block: named children (LayerPlan or BlockPlan) and residual."""
    name: str
    residual: bool
    children: tuple
    in_shape: tuple
    out_shape: tuple


@dataclass(frozen=True)
class ModelFile:
    """A checked model file: name, description, one sample's input shape, the default
    quantize_products, the plan of the backbone (a BlockPlan), and MEMO's split: the
    index of the top-level layer its specialized part starts at, or None with the
    reason in ``memo_problem``."""
    path: str
    name: str
    description: str
    input: tuple
    quantize_products: tuple
    plan: BlockPlan = field(repr=False)
    memo_start: int | None = None
    memo_problem: str | None = None

    @property
    def feature_dim(self) -> int:
        return int(self.plan.out_shape[0])

    @property
    def ids_input(self) -> bool:
        first = self.plan.children[0] if self.plan.children else None
        return isinstance(first, LayerPlan) and first.kind == "embedding"


class _Reader:
    """Walks a file's layers with their shapes; ``fail`` names the file and the layer."""

    def __init__(self, path, blocks):
        self.path, self.blocks = path, blocks

    def fail(self, where, problem):
        loc = f"layer {where[0]} ({where[1]})" if where else "model"
        raise ModelFileError(f"model file {self.path}: {loc}: {problem}")

    def block(self, name, residual, layers, shape, where, stack):
        if not isinstance(layers, list) or not layers:
            self.fail(where, "a block needs a non-empty list 'layers'")
        children, names = [], _default_names(layers)
        for i, (entry, default) in enumerate(zip(layers, names)):
            pos = f"{where[0]}.{i}" if where else str(i)
            for child in self.entry(entry, default, shape, pos, stack):
                children.append(child)
                shape = child.out_shape
        taken = [c.name for c in children]
        dup = sorted({n for n in taken if taken.count(n) > 1})
        if dup:
            self.fail(where, f"layer names repeat: {', '.join(dup)} (give each a 'name')")
        plan = BlockPlan(name, bool(residual), tuple(children), children[0].in_shape, shape)
        if residual and plan.out_shape != plan.in_shape:
            self.fail(where, f"a residual block must keep its input's shape "
                             f"{list(plan.in_shape)}, its layers give {list(plan.out_shape)}")
        return plan

    def entry(self, entry, default, shape, pos, stack):
        """The plans of one entry of a ``layers`` list (several for a repeated block)."""
        if not isinstance(entry, dict):
            self.fail((pos, "?"), f"a layer is a table such as {{ kind = \"linear\", out = 64 }}, "
                                  f"got {entry!r}")
        entry = dict(entry)
        name = entry.pop("name", None)
        if name is not None and (not isinstance(name, str) or not name.isidentifier()):
            self.fail((pos, entry.get("kind", entry.get("block", "?"))),
                      f"name must be an identifier, got {name!r}")
        if "block" in entry:
            return self.block_use(entry, name, default, shape, pos, stack)
        kind = entry.pop("kind", None)
        if kind is None:
            self.fail((pos, "?"), "a layer needs 'kind' (or 'block' = a [blocks.NAME] table)")
        if kind in INLINE_BLOCKS:
            extra = sorted(set(entry) - {"layers"})
            if extra:
                self.fail((pos, kind), f"unknown setting {extra[0]!r} (a {kind} block takes: "
                                       f"name, layers)")
            return [self.block(name or default, INLINE_BLOCKS[kind], entry.get("layers"),
                               shape, (pos, kind), stack)]
        return [self.layer(kind, entry, name or default, shape, (pos, kind))]

    def block_use(self, entry, name, default, shape, pos, stack):
        ref = entry.pop("block")
        repeat = entry.pop("repeat", 1)
        where = (pos, f"block {ref}")
        if entry:
            self.fail(where, f"unknown setting {sorted(entry)[0]!r} (a block use takes: "
                             f"block, repeat, name)")
        if ref not in self.blocks:
            self.fail(where, f"no [blocks.{ref}] table (blocks: "
                             f"{', '.join(self.blocks) or 'none'})")
        if ref in stack:
            self.fail(where, f"block {ref} contains itself")
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
            self.fail(where, f"repeat must be a positive integer, got {repeat!r}")
        table = self.blocks[ref]
        base = name or default
        out = []
        for r in range(repeat):
            plan = self.block(base if repeat == 1 else f"{base}{r}",
                              table.get("residual", False), table.get("layers"), shape,
                              where, stack + (ref,))
            out.append(plan)
            shape = plan.out_shape
        return out

    def layer(self, kind, settings, name, shape, where):
        spec = LAYER_KINDS.get(kind)
        if spec is None:
            self.fail(where, f"unknown layer kind {kind!r} (kinds: "
                             f"{', '.join(sorted(LAYER_KINDS))}, residual, sequence)")
        if kind == "embedding" and where[0] != "0":
            self.fail(where, "an embedding reads the integer ids: it must be the first layer")
        unknown = sorted(set(settings) - set(spec.settings))
        if unknown:
            self.fail(where, f"unknown setting {unknown[0]!r} (it takes: "
                             f"{', '.join(spec.settings) or 'no settings'}, name)")
        s = {k: settings.get(k, d) for k, d in spec.settings.items()}
        missing = [k for k, v in s.items() if v is REQUIRED]
        if missing:
            self.fail(where, f"missing setting {missing[0]!r}")
        try:
            out = tuple(int(n) for n in spec.shape(tuple(shape), s))
        except ValueError as e:
            self.fail(where, f"{e} (input {list(shape)})")
        return LayerPlan(name, kind, s, tuple(shape), out)


def _default_names(layers) -> list:
    """Each entry's default name: its kind or block name, numbered when that name
    occurs more than once in the list."""
    base = []
    for e in layers if isinstance(layers, list) else []:
        b = (e.get("block") or e.get("kind") or "layer") if isinstance(e, dict) else "layer"
        base.append(str(b))
    seen: dict = {}
    out = []
    for b in base:
        if base.count(b) > 1:
            out.append(f"{b}{seen.get(b, 0)}")
            seen[b] = seen.get(b, 0) + 1
        else:
            out.append(b)
    return out


def parse_model_file(raw: dict, path: str = "<model>") -> ModelFile:
    """Check a model file's table (as tomllib reads it); ModelFileError on any problem."""
    r = _Reader(path, {})
    unknown = sorted(set(raw) - set(FILE_KEYS))
    if unknown:
        r.fail(None, f"unknown key {unknown[0]!r} (a model file has: {', '.join(FILE_KEYS)})")
    shape = raw.get("input")
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        r.fail(None, f"input must be one sample's shape, a list of positive integers such as "
                     f"[3, 32, 32], got {shape!r}")
    qp = raw.get("quantize_products", [])
    if not isinstance(qp, list) or set(qp) - set(PRODUCTS):
        r.fail(None, f"quantize_products takes a list of {list(PRODUCTS)}, got {qp!r}")
    blocks = raw.get("blocks", {})
    if not isinstance(blocks, dict):
        r.fail(None, "blocks must be tables [blocks.NAME]")
    for bname, table in blocks.items():
        extra = sorted(set(table) - set(BLOCK_KEYS)) if isinstance(table, dict) else ["?"]
        if extra:
            r.fail(None, f"[blocks.{bname}] has unknown key {extra[0]!r} (it takes: "
                         f"{', '.join(BLOCK_KEYS)})")
    r.blocks = blocks
    plan = r.block("backbone", False, raw.get("layers"), tuple(shape), None, ())
    if len(plan.out_shape) != 1:
        last = plan.children[-1]
        r.fail((str(len(plan.children) - 1), getattr(last, "kind", "block")),
               f"the last layer gives {list(plan.out_shape)} per sample; the classifier needs "
               f"one vector (end with token_mean, flatten or global_avgpool)")
    name = raw.get("name", os.path.splitext(os.path.basename(str(path)))[0])
    start, problem = _memo_split(r, plan, raw.get("memo_split"))
    return ModelFile(str(path), str(name), str(raw.get("description", "")), tuple(shape),
                     tuple(p for p in PRODUCTS if p in qp), plan, start, problem)


def _trains(plan) -> bool:
    """Whether a layer or block plan has parameters."""
    if isinstance(plan, BlockPlan):
        return any(_trains(c) for c in plan.children)
    return LAYER_KINDS[plan.kind].trains


def _memo_split(r: _Reader, plan: BlockPlan, given):
    """(index of the first top-level layer of MEMO's specialized part, None) or (None, why
    the file cannot run MEMO). A ``memo_split`` naming no top-level layer is an error of
    the file; a split leaving a part without parameters refuses only MEMO."""
    names = [c.name for c in plan.children]
    if given is None:
        trains = [i for i, c in enumerate(plan.children) if _trains(c)]
        blocks = [i for i in trains if isinstance(plan.children[i], BlockPlan)]
        if not trains:
            return None, "its network has no parameters"
        start = (blocks or trains)[-1]
        how = (f"its last top-level {'block' if blocks else 'layer'} with parameters, "
               f"{names[start]}")
    else:
        if not isinstance(given, str) or given not in names:
            r.fail(None, f"memo_split must name a top-level layer or block "
                         f"({', '.join(names)}), got {given!r}")
        start, how = names.index(given), f"memo_split = {given!r}"
    if not any(_trains(c) for c in plan.children[:start]):
        return None, (f"MEMO's shared part (the layers before {how}) has no parameters; set "
                      f"memo_split in the model file")
    if not any(_trains(c) for c in plan.children[start:]):
        return None, (f"MEMO's specialized part ({how} and after) has no parameters; set "
                      f"memo_split in the model file")
    return start, None


def read_model_file(path) -> ModelFile:
    """Read and check a model file (ModelFileError: one line naming the file)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ModelFileError(f"model file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ModelFileError(f"model file {path}: cannot read it: {e}") from None
    return parse_model_file(raw, path)


def _build_block(plan: BlockPlan, ctx: BuildContext) -> Block:
    layers = []
    for child in plan.children:
        if isinstance(child, BlockPlan):
            layers.append((child.name, _build_block(child, ctx)))
        else:
            layers.append((child.name, LAYER_KINDS[child.kind].build(child.in_shape,
                                                                     child.settings, ctx)))
    return Block(layers, residual=plan.residual)


def build_model(mf: ModelFile, arith, rng, num_classes=0, classifier_bias=False) -> GraphModel:
    """The GraphModel of a checked file under datapath ``arith``; rng draws every layer's
    init in file order, then the classifier's."""
    ctx = BuildContext(arith, rng, mf.quantize_products)
    backbone = _build_block(mf.plan, ctx)
    model = GraphModel(backbone, mf.feature_dim, mf.input, arith, rng, num_classes=num_classes,
                       classifier_bias=classifier_bias, ids_input=mf.ids_input, name=mf.name)
    if mf.memo_start is not None:
        model.set_memo_split(mf.memo_start, _specialized_builder(mf, arith))
    else:
        model.memo_problem = mf.memo_problem
    return model


def _specialized_builder(mf: ModelFile, arith):
    """``build(rng) -> Block``: a fresh copy of MEMO's specialized part of the file (the
    top-level layers from mf.memo_start on) under ``arith``, drawn from rng."""
    children = mf.plan.children[mf.memo_start:]
    part = BlockPlan("specialized", False, children, children[0].in_shape, mf.plan.out_shape)

    def build(rng):
        return _build_block(part, BuildContext(arith, rng, mf.quantize_products))
    return build


def model_spec_for(mf: ModelFile, spec_name: str) -> ModelSpec:
    """A ModelSpec that builds the file's network (``--model`` value ``spec_name``)."""

    def build(cc, arith, in_shape, rng):
        if int(np.prod(in_shape)) != int(np.prod(mf.input)):
            raise ValueError(f"model {spec_name} takes input {list(mf.input)}, the data has "
                             f"{list(in_shape)}")
        return build_model(with_products(mf, cc.attn_products), arith, rng, 0,
                           cc.classifier_bias)

    def prepare(ds):
        return _prepare(ds, mf.input)

    return ModelSpec(spec_name, build, prepare, needs_images=len(mf.input) == 3,
                     options=("attn_products",),
                     description=mf.description or f"model file {mf.path}",
                     refuses={"memo": mf.memo_problem} if mf.memo_problem else {})


def with_products(mf: ModelFile, products: str = "file") -> ModelFile:
    """``mf`` with its default ``quantize_products`` replaced by a run's setting
    ``attn_products`` ("none", "qk", "av" or "qk,av"; "file" keeps the file's). An
    attention layer that names its own ``quantize_products`` keeps them."""
    if products == "file":
        return mf
    chosen = () if products == "none" else tuple(products.split(","))
    unknown = sorted(set(chosen) - set(PRODUCTS))
    if unknown:
        raise ValueError(f"attn_products takes file, none, qk, av or qk,av, got {products!r}")
    return dataclasses.replace(mf, quantize_products=tuple(p for p in PRODUCTS if p in chosen))


def _prepare(ds, in_shape):
    """The data as (N, *in_shape): single-channel images get their channel axis, any other
    layout of the same size is reshaped (a flat feature vector into the file's input)."""
    X = ds.X_train
    if tuple(X.shape[1:]) == tuple(in_shape):
        return ds
    if int(np.prod(X.shape[1:])) != int(np.prod(in_shape)):
        return ds          # build() refuses it with both shapes
    return dataclasses.replace(ds, X_train=ds.X_train.reshape((len(ds.X_train),) + in_shape),
                               X_test=ds.X_test.reshape((len(ds.X_test),) + in_shape))


def model_spec_from_file(path) -> ModelSpec:
    """The ModelSpec of ``--model FILE`` (ModelFileError on a bad file)."""
    return model_spec_for(read_model_file(path), os.fspath(path))
