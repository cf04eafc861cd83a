"""Arithmetic configurations: which number formats a layer's matmuls use.

Three small frozen dataclasses select the arithmetic of every Linear/Conv2d
layer of a model (docs/paper.md sections 2-8):

- ``FP()``: float32 everywhere (the baseline; no quantization at all).
- ``HDQT(...)``: Hadamard Domain Quantized Training, as the authors' released
  code runs it. Every field that encodes a quirk of that code (docs/paper.md
  section 8) defaults to the released behaviour.
- ``LUQ(...)``: the LUQ baseline (SAWB forward fake-quantization, 4-bit
  logarithmic unbiased gradient quantization).

Each kind is registered in :data:`ARITHS` by its ``name`` (``--arith``); it
says which run settings it takes (``config_fields``), builds itself from a
run's settings (:meth:`from_config`) and is the strategy the layers call:
``quantizes_forward``, ``quantize_fwd``, ``fwd_tile``, ``ste_bound``,
``per_sample_eval``, ``backward`` and ``conv_backward_km``. Adding an
arithmetic means adding one registered class here (docs/architecture.md).

acc_bits None means "no accumulator limit" (the only spelling of it); any
other value 2..32 is a real accumulator of that width.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from intsim.arith import qmatmul as qm

#: name -> arithmetic class (the single list of arithmetic kinds).
ARITHS: dict[str, type] = {}


def register_arith(cls):
    """Class decorator: make ``cls`` selectable as ``--arith cls.name``."""
    ARITHS[cls.name] = cls
    return cls


class _Kind:
    """What every kind shares: its run settings and construction from them."""

    #: RunConfig fields that are fields of this kind (the rest go through
    #: ``arith_options``).
    config_fields: tuple = ()
    #: the layers run this kind's float-datapath hooks (intsim.arith.floatkinds)
    #: instead of the integer passes
    float_datapath = False
    #: the optimizer quantizes the update (intsim.optim.make_optimizer)
    quantized_update = False
    #: the class of the layers' per-pass audits (None: qmatmul.PassAudit)
    pass_audit = None

    @classmethod
    def from_config(cls, cfg) -> Any:
        """The arithmetic of a RunConfig (ValueError naming a bad option)."""
        kw = {f: getattr(cfg, f) for f in cls.config_fields}
        known = {f.name for f in dataclasses.fields(cls)}
        for k, v in cfg.arith_options:
            if k not in known:
                raise ValueError(f"unknown arith option {k!r} for {cls.name} "
                                 f"(known: {', '.join(sorted(known)) or 'none'})")
            kw[k] = v
        try:
            return cls(**kw)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{cls.name}: {e}") from None

    @classmethod
    def run_settings(cls, spec: dict) -> dict:
        """RunConfig values of an arith spec {"kind": name, **fields}."""
        known = {f.name for f in dataclasses.fields(cls)}
        bad = set(spec) - known - {"kind"}
        if bad:
            raise ValueError(f"arith {cls.name}: unknown fields {sorted(bad)}")
        out: dict[str, Any] = {"arith": cls.name}
        extra = {}
        for k, v in spec.items():
            if k == "kind":
                continue
            if k in cls.config_fields:
                out[k] = v
            else:
                extra[k] = v
        if extra:
            out["arith_options"] = extra
        return out

_ACC_MODES = ("clamp", "saturate", "wrap", "wide")
_ROUNDINGS = ("nearest", "stochastic")


def _check_bits(name, bits, lo, hi):
    if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= hi:
        raise ValueError(f"{name} must be an int in {lo}..{hi}, got {bits!r}")


def _check_acc(acc_bits, acc_mode):
    from intsim.kernels.accumulator import check_acc_bits
    check_acc_bits(acc_bits)
    if acc_mode not in _ACC_MODES:
        raise ValueError(f"acc_mode must be one of {_ACC_MODES}, got {acc_mode!r}")


def _check_tile(name, tile):
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise ValueError(f"{name} must be a positive int or None, got {tile!r}")


def _acc_limit(acc_bits, acc_mode):
    if acc_bits is None or acc_mode == "wide":
        return None
    return acc_bits


class _Quantized(_Kind):
    """What HDQT and LUQ share: quantized passes and an effective accumulator limit."""

    @property
    def quantized(self):
        return True

    @property
    def acc_limit(self):
        """Effective accumulator bits, or None when there is no limit."""
        return _acc_limit(self.acc_bits, self.acc_mode)

    #: forward reduction tile of the accumulator (None: one tile over K)
    fwd_tile = None
    #: |raw input| above which the straight-through gradient is zeroed (None: never)
    ste_bound = None

    @property
    def quantizes_forward(self) -> bool:
        return True

    def per_sample_eval(self, training: bool) -> bool:
        """Quantize each test sample's activations with its own scale."""
        return False

    #: the layer's bias is one more addend of the accumulator (inside its limit),
    #: and its gradient is summed from the quantized output gradient (LUQ, as the
    #: authors' F.linear(..., bias) before AccQuant and GradStochasticClippingQ)
    bias_in_accumulator = False

    def backward(self, gT, xT, sx, wq, sw, rng, audit, need_dx=True):
        """Feature-major backward of y = (x sx)(wq sw)^T: (dxT, dw, db).

        db is None when the layer sums its bias gradient from the float
        output gradient (HDQT), else the bias gradient (N,) float32 (LUQ).
        """
        dxT, dw = self._backward(gT, xT, sx, wq, sw, self, rng, audit, need_dx=need_dx)
        return dxT, dw, None


@register_arith
@dataclass(frozen=True)
class FP(_Kind):
    """Float32 arithmetic everywhere (no layer is quantized)."""

    name = "fp"
    quantizes_forward = False
    acc_limit = None

    @property
    def quantized(self):
        return False

    def per_sample_eval(self, training: bool) -> bool:
        return False


@register_arith
@dataclass(frozen=True)
class HDQT(_Quantized):
    """HDQT arithmetic (docs/paper.md sections 2-5, quirks of section 8).

    bits: operand bits of every quantizer (3..8 in the paper's ablations).
    acc_bits: accumulator bits 2..32 (clamp range +-(2^(a-1)-1)); None means
        no accumulator limit (the released code's 16).
    tile: forward reduction tile (None = one tile over the whole K).
    acc_mode: "clamp" (the paper's), "saturate", "wrap" or "wide"; used by
        the forward and both backward matmuls.
    fwd_clip: the max-clip factor of the forward quantizers (0.975).
    grad_rounding: rounding of both error tensors (g H_o and g^T H_b).
    act_rounding: rounding of H_b x (the weight-gradient activation).
    weight_rounding: rounding of H_o W (the input-gradient weight).
    hadamard: apply the block Hadamard transforms in the backward pass.
    requantize: re-quantize the Hadamard-transformed forward operands
        (H_o Wq and H_b Xq); False uses them as the (wider) integers they are.
    fwd_quant / bwd_quant: switch the forward / backward quantizers off
        (for checks: with both off and no accumulator limit the gradients
        equal the float ones).
    bwd_tile: tiling of the backward reductions (None = one clamp over the
        whole reduction, as the released code).

    Quirk fields (docs/paper.md section 8; defaults = released code):
    ste_raw_clip (quirk 1): the straight-through estimator of the forward
        quantizers zeroes the gradient where the RAW input has
        |x| > 2^(bits-1)-1 (7 for 4 bits). False: gradient passes unchanged.
    bwd_clip (quirk 2): max-clip factor of the backward quantizers; the
        released code clips only forward, so 1.0.
    eval_per_sample (quirk 5): the released code quantizes test batches with
        one scale per batch, so predictions depend slightly on the batch
        composition (False). True quantizes each test sample's activations
        with its own scale in eval mode (batch-independent predictions).
    Quirk 4 (the HAR LR milestone passed as a string, so it never decays) is
    a training-schedule matter and lives in the CIL configuration.
    """

    bits: int = 4
    acc_bits: Optional[int] = 8
    tile: Optional[int] = 32
    acc_mode: str = "clamp"
    fwd_clip: float = 0.975
    grad_rounding: str = "stochastic"
    act_rounding: str = "stochastic"
    weight_rounding: str = "nearest"
    hadamard: bool = True
    requantize: bool = True
    fwd_quant: bool = True
    bwd_quant: bool = True
    bwd_tile: Optional[int] = None
    ste_raw_clip: bool = True
    bwd_clip: float = 1.0
    eval_per_sample: bool = False

    name = "hdqt"
    config_fields = ("bits", "acc_bits", "tile", "acc_mode", "fwd_clip", "grad_rounding",
                     "act_rounding", "weight_rounding", "hadamard", "requantize")

    @property
    def fwd_tile(self):
        return self.tile

    @property
    def ste_bound(self):
        return (1 << (self.bits - 1)) - 1 if self.ste_raw_clip else None

    @property
    def quantizes_forward(self) -> bool:
        return self.fwd_quant

    def per_sample_eval(self, training: bool) -> bool:
        return self.eval_per_sample and not training

    def quantize_fwd(self, x, batch_dims=0):
        """Forward quantizer: (q float32 integers, scale float or (S,) array)."""
        from intsim.kernels import quant
        return quant.quantize_f32(x, self.bits, rounding="nearest", signed=None,
                                  clip=self.fwd_clip, batch_dims=batch_dims)

    @staticmethod
    def _backward(*args, **kw):
        return qm.hdqt_backward(*args, **kw)

    def conv_backward_km(self, gT, cols, sx, wq, sw, rng, audit, need_dx=True):
        """Convolution backward on K-major columns cols (K, B, L), gT (B, N, L).

        Returns (dcols, dx_scale, dw, kmajor, db): dcols (K, B, L) with the
        per-image factors dx_scale for col2im_km (kmajor True); dcols None
        when not need_dx; db as in backward.
        """
        g = np.ascontiguousarray(gT.transpose(1, 0, 2))                     # (N, B, L)
        dcols, dw = qm.hdqt_backward_km(g, cols, sx, wq, sw, self, rng, audit, need_dx=need_dx,
                                        scaled_dx=False)
        dcols, scale = dcols if isinstance(dcols, tuple) else (dcols, None)
        return dcols, scale, dw, True, None

    def __post_init__(self):
        _check_bits("bits", self.bits, 2, 8)
        _check_acc(self.acc_bits, self.acc_mode)
        _check_tile("tile", self.tile)
        _check_tile("bwd_tile", self.bwd_tile)
        for f in ("grad_rounding", "act_rounding", "weight_rounding"):
            if getattr(self, f) not in _ROUNDINGS:
                raise ValueError(f"{f} must be one of {_ROUNDINGS}, got {getattr(self, f)!r}")
        for f in ("fwd_clip", "bwd_clip"):
            v = getattr(self, f)
            if not (isinstance(v, (int, float)) and 0.0 < v <= 1.0):
                raise ValueError(f"{f} must be in (0, 1], got {v!r}")


@register_arith
@dataclass(frozen=True)
class LUQ(_Quantized):
    """LUQ baseline (docs/paper.md section 7; Chmiel et al., ICLR 2023).

    bits: forward operand bits (SAWB clip, deterministic rounding, STE).
    grad_bits: bits of the logarithmic gradient format (sign + exponent bits;
        4 gives magnitudes alpha * 2^0..2^6 and 0).
    acc_bits / acc_mode: optional forward accumulator limit over the whole
        reduction (no tiling); None = no limit.
    """

    bits: int = 4
    grad_bits: int = 4
    acc_bits: Optional[int] = None
    acc_mode: str = "clamp"

    name = "luq"
    config_fields = ("bits", "acc_bits", "acc_mode")
    bias_in_accumulator = True

    def quantize_fwd(self, x, batch_dims=0):
        """SAWB forward fake-quantizer: (q float32 integers, scale float)."""
        from intsim.kernels import luq
        return luq.sawb_quantize(x, self.bits)

    def backward(self, gT, xT, sx, wq, sw, rng, audit, need_dx=True):
        """(dxT, dw, db): db summed from the log-quantized gradient."""
        return qm.luq_backward(gT, xT, sx, wq, sw, self, rng, audit, need_dx=need_dx)

    def conv_backward_km(self, gT, cols, sx, wq, sw, rng, audit, need_dx=True):
        """As HDQT's, but the float input gradient stays per image (one GEMM
        over the batch would sum in another order): dcols (B, K, L), kmajor False."""
        dcols, dw, db = qm.luq_backward_km(gT, cols, sx, wq, sw, self, rng, audit,
                                           need_dx=need_dx)
        return dcols, None, dw, False, db

    def __post_init__(self):
        _check_bits("bits", self.bits, 2, 8)
        _check_bits("grad_bits", self.grad_bits, 2, 8)
        _check_acc(self.acc_bits, self.acc_mode)
