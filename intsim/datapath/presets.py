"""Named datapaths: the paper's arithmetics as compositions of parts.

Each preset is a function of a few settings (its knobs, with the paper's
values as defaults) that returns a datapath; ``--arith NAME`` (or
``[datapath] preset = NAME``) selects one, the run settings it takes
(``config_fields``: ``--bits``, ``--acc-bits``, ...) and ``arith_options``
set its knobs.

| preset | datapath |
|---|---|
| fp | ExactDatapath: float32 everywhere |
| hdqt | IntegerDatapath: int4 operands, 8-bit accumulator tiles of 32 (clamp), block Hadamard + stochastic rounding in the backward pass |
| luq | LUQDatapath: SAWB int4 forward, 4-bit logarithmic gradients |
| fp8 | FormatsDatapath: E4M3 weights/activations, E5M2 gradients, float32 sums |
| fp134 | LptorchDatapath: lptorch's 1-3-4 tapered float at tracked scales |
| mxfp8 / mxfp6 / mxfp4 / mxint8 | FormatsDatapath: OCP MX block formats on every operand (E5M2 / E3M2 / E2M1 / INT8 gradients), float32 sums |

:func:`datapath_from_spec` builds a datapath from a preset name or a
``[datapath]`` table (a kind's fields, or a preset's datapath with fields
changed).
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Optional

from intsim.datapath.base import DATAPATHS, Datapath, _default_constructible
from intsim.datapath.exact import ExactDatapath
from intsim.datapath.formats import FormatsDatapath
from intsim.datapath.integer import IntegerDatapath, LUQDatapath
from intsim.datapath.lptorch import LptorchDatapath
from intsim.datapath.parts import BlockHadamard, Identity, IntAccumulator
from intsim.datapath.parts.registry import part_from_spec
from intsim.kernels.accumulator import check_acc_bits


def _check_bits(name, bits, lo, hi):
    if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= hi:
        raise ValueError(f"{name} must be an int in {lo}..{hi}, got {bits!r}")


def _rounding(name, value):
    return part_from_spec("rounding", value, name)


def FP() -> ExactDatapath:
    """Float32 arithmetic everywhere (the baseline)."""
    return ExactDatapath()


def HDQT(bits: int = 4, acc_bits: Optional[int] = 8, tile: Optional[int] = 32,
         acc_mode: str = "clamp", fwd_clip: float = 0.975, grad_rounding: str = "stochastic",
         act_rounding: str = "stochastic", weight_rounding: str = "nearest",
         hadamard: bool = True, requantize: bool = True, fwd_quant: bool = True,
         bwd_quant: bool = True, bwd_tile: Optional[int] = None, ste_raw_clip: bool = True,
         bwd_clip: float = 1.0, eval_per_sample: bool = False) -> IntegerDatapath:
    """HDQT as the authors' released code runs it (docs/method.md).

    bits: operand bits of every quantizer (2..8); acc_bits / tile / acc_mode:
    the integer accumulator of all three products (acc_bits none: no limit;
    tile none: one tile over K); bwd_tile: the tile of the backward products
    (none: one clamp over the whole reduction, as the released code);
    grad/act/weight_rounding: of g H, H_b x and H_o W; hadamard: the backward
    block Hadamard transforms; the rest as IntegerDatapath's fields.
    """
    _check_bits("bits", bits, 2, 8)
    check_acc_bits(acc_bits)
    return IntegerDatapath(
        forward_format=f"int{bits}", backward_format=f"int{bits}",
        gradient_rounding=_rounding("grad_rounding", grad_rounding),
        activation_rounding=_rounding("act_rounding", act_rounding),
        weight_rounding=_rounding("weight_rounding", weight_rounding),
        transform=BlockHadamard() if hadamard else Identity(),
        accumulator=IntAccumulator(bits=acc_bits, tile=tile, mode=acc_mode),
        backward_tile=bwd_tile, fwd_clip=fwd_clip, bwd_clip=bwd_clip, requantize=requantize,
        fwd_quant=fwd_quant, bwd_quant=bwd_quant, ste_raw_clip=ste_raw_clip,
        eval_per_sample=eval_per_sample)


def LUQ(bits: int = 4, grad_bits: int = 4, acc_bits: Optional[int] = None,
        acc_mode: str = "clamp") -> LUQDatapath:
    """LUQ (Chmiel et al. 2023) as the authors' baseline: SAWB forward with ``bits``,
    ``grad_bits``-bit logarithmic gradients, an optional forward accumulator limit
    over the whole reduction (acc_bits none: no limit)."""
    _check_bits("bits", bits, 2, 8)
    _check_bits("grad_bits", grad_bits, 2, 8)
    check_acc_bits(acc_bits)
    return LUQDatapath(forward_format=f"int{bits}", gradient_bits=grad_bits,
                       accumulator=IntAccumulator(bits=acc_bits, tile=None, mode=acc_mode))


def FP8(fwd_format: str = "e4m3", bwd_format: str = "e5m2", scaling: str = "tensor",
        pow2_scale: bool = False, grad_rounding: str = "nearest",
        bias_grad_quantized: bool = False) -> FormatsDatapath:
    """A generic FP8 training datapath (Micikevicius et al. 2022): weights and
    activations in ``fwd_format``, output gradients in ``bwd_format``, amax scales
    per tensor ("channel": the weight per output row; "none"), float32 sums."""
    return FormatsDatapath.from_fields(dict(
        weights=fwd_format, activations=fwd_format, gradients=bwd_format,
        gradient_rounding=grad_rounding, scaling=scaling, pow2_scale=pow2_scale,
        bias_grad_quantized=bias_grad_quantized), "fp8")


def FP134(**fields) -> LptorchDatapath:
    """The paper's FP134 baseline (LptorchDatapath's fields)."""
    return LptorchDatapath.from_fields(fields, "fp134")


def _mx(elements: str, gradients: str):
    def build(gradient_rounding: str = "nearest", accumulator: Any = "exact") -> FormatsDatapath:
        return FormatsDatapath.from_fields(dict(
            weights=elements, activations=elements, gradients=gradients,
            gradient_rounding=gradient_rounding, accumulator=accumulator), "mx")
    build.__doc__ = (f"OCP MX: {elements} weights and activations, {gradients} gradients, "
                     f"blocks of 32 along each product's reduction axis; accumulator exact "
                     f"(float32) unless given.")
    return build


@dataclass(frozen=True)
class Preset:
    """A named datapath: ``build(**knobs)``; ``config_fields`` are the flat run
    settings (RunConfig fields) that are knobs of it."""

    name: str
    builder: Callable
    config_fields: tuple = ()

    @property
    def knobs(self) -> tuple:
        """The keyword settings ``build`` takes."""
        sig = inspect.signature(self.builder)
        if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            return tuple(f.name for f in dataclasses.fields(self.builder()))
        return tuple(sig.parameters)

    def build(self, **knobs):
        """The datapath with these knobs (ValueError naming a bad one, one line)."""
        bad = sorted(set(knobs) - set(self.knobs))
        if bad:
            raise ValueError(f"unknown setting {bad[0]!r} for {self.name} "
                             f"(known: {', '.join(sorted(self.knobs)) or 'none'})")
        try:
            return self.builder(**knobs)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{self.name}: {e}") from None

    def config_knobs(self, cfg) -> dict:
        """The knobs a RunConfig sets: its config_fields and arith_options."""
        kw = {f: getattr(cfg, f) for f in self.config_fields}
        for k, v in cfg.arith_options:
            if k not in self.knobs:
                raise ValueError(f"unknown arith option {k!r} for {self.name} "
                                 f"(known: {', '.join(sorted(self.knobs)) or 'none'})")
            kw[k] = v
        return kw

    def from_config(self, cfg):
        """The datapath of a RunConfig: its config_fields and arith_options."""
        return self.build(**self.config_knobs(cfg))

    def call_repr(self, knobs: dict) -> str:
        """``NAME(knob=value, ...)`` with every knob (defaults filled in), the
        record of a preset datapath in results.json (run.arith)."""
        sig = inspect.signature(self.builder)
        if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            vals = {f.name: getattr(self.builder(), f.name) for f in dataclasses.fields(
                self.builder())}
        else:
            vals = {k: p.default for k, p in sig.parameters.items()}
        vals.update(knobs)
        return f"{self.builder.__name__}({', '.join(f'{k}={v!r}' for k, v in vals.items())})"

    def run_settings(self, spec: dict) -> dict:
        """RunConfig values of an arith spec {"kind": name, **knobs}."""
        bad = set(spec) - set(self.knobs) - {"kind"}
        if bad:
            raise ValueError(f"arith {self.name}: unknown fields {sorted(bad)}")
        out: dict[str, Any] = {"arith": self.name}
        extra = {k: v for k, v in spec.items() if k != "kind" and k not in self.config_fields}
        out.update({k: v for k, v in spec.items() if k in self.config_fields})
        if extra:
            out["arith_options"] = extra
        return out


#: name -> Preset (``--arith``)
PRESETS: dict[str, Preset] = {}


def register_preset(name: str, builder: Callable, config_fields: tuple = ()) -> Preset:
    """Make ``builder`` selectable as ``--arith name``."""
    PRESETS[name] = Preset(name, builder, tuple(config_fields))
    return PRESETS[name]


register_preset("fp", FP)
register_preset("hdqt", HDQT, ("bits", "acc_bits", "tile", "acc_mode", "hadamard",
                               "requantize", "grad_rounding", "act_rounding", "weight_rounding",
                               "fwd_clip"))
register_preset("luq", LUQ, ("bits", "acc_bits", "acc_mode"))
register_preset("fp8", FP8)
register_preset("fp134", FP134)
register_preset("mxfp8", _mx("mxfp8_e4m3", "mxfp8_e5m2"))
register_preset("mxfp6", _mx("mxfp6_e2m3", "mxfp6_e3m2"))
register_preset("mxfp4", _mx("mxfp4_e2m1", "mxfp4_e2m1"))
register_preset("mxint8", _mx("mxint8", "mxint8"))


def datapath_from_spec(spec: Any, where: str = "datapath"):
    """A datapath from a spec: a Datapath (as is), a preset name, or a table with
    ``kind`` (a datapath kind) or ``preset`` (a preset name) and fields to change.
    ValueError with one line naming the problem."""
    if isinstance(spec, Datapath):
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in PRESETS:
            return PRESETS[key].build()
        raise ValueError(f"{where}: unknown preset {spec!r} (presets: {', '.join(PRESETS)})")
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a preset name or a table, got {spec!r}")
    fields = dict(spec)
    preset, kind = fields.pop("preset", None), fields.pop("kind", None)
    if preset is not None and kind is not None:
        raise ValueError(f"{where}: give kind or preset, not both")
    if preset is not None:
        if not isinstance(preset, str) or preset.strip().lower() not in PRESETS:
            raise ValueError(f"{where}: unknown preset {preset!r} (presets: {', '.join(PRESETS)})")
        return PRESETS[preset.strip().lower()].build().with_settings(fields, where)
    if not isinstance(kind, str) or kind.strip().lower() not in DATAPATHS:
        raise ValueError(f"{where}: kind must be one of {', '.join(DATAPATHS)} "
                         f"(or preset = one of {', '.join(PRESETS)}), got {kind!r}")
    cls = DATAPATHS[kind.strip().lower()]
    if any("." in str(k) for k in fields) and _default_constructible(cls):
        return cls().with_settings(fields, where)
    return cls.from_fields(fields, where)
