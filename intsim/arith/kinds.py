"""Arithmetic configurations: which number formats a layer's matmuls use.

Three small frozen dataclasses select the arithmetic of every Linear/Conv2d
layer of a model (hdqt.md sections 2-8):

- ``FP()``: float32 everywhere (the baseline; no quantization at all).
- ``HDQT(...)``: Hadamard Domain Quantized Training, as the authors' released
  code runs it. Every field that encodes a quirk of that code (hdqt.md
  section 8) defaults to the released behaviour.
- ``LUQ(...)``: the LUQ baseline (SAWB forward fake-quantization, 4-bit
  logarithmic unbiased gradient quantization).

acc_bits >= 16 or None means "no accumulator limit" (the released code's 16
means no clamp); ``acc_limit`` gives the effective value (None or < 16).
"""
from dataclasses import dataclass
from typing import Optional

_ACC_MODES = ("clamp", "saturate", "wrap", "wide")
_ROUNDINGS = ("nearest", "stochastic")


def _check_bits(name, bits, lo, hi):
    if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= hi:
        raise ValueError(f"{name} must be an int in {lo}..{hi}, got {bits!r}")


def _check_acc(acc_bits, acc_mode):
    if acc_bits is not None:
        _check_bits("acc_bits", acc_bits, 2, 64)
    if acc_mode not in _ACC_MODES:
        raise ValueError(f"acc_mode must be one of {_ACC_MODES}, got {acc_mode!r}")


def _check_tile(name, tile):
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise ValueError(f"{name} must be a positive int or None, got {tile!r}")


def _acc_limit(acc_bits, acc_mode):
    if acc_bits is None or acc_bits >= 16 or acc_mode == "wide":
        return None
    return acc_bits


def _check_conv_init(conv_init):
    if conv_init not in ("kaiming_uniform", "he_normal"):
        raise ValueError(f"conv_init must be 'kaiming_uniform' or 'he_normal', got {conv_init!r}")


class _Quantized:
    """What HDQT and LUQ share: they quantize, and have an effective accumulator limit."""

    @property
    def quantized(self):
        return True

    @property
    def acc_limit(self):
        """Effective accumulator bits, or None when there is no limit."""
        return _acc_limit(self.acc_bits, self.acc_mode)


@dataclass(frozen=True)
class FP:
    """Float32 arithmetic everywhere (no layer is quantized)."""

    name = "fp"

    @property
    def quantized(self):
        return False


@dataclass(frozen=True)
class HDQT(_Quantized):
    """HDQT arithmetic (hdqt.md sections 2-5, quirks of section 8).

    bits: operand bits of every quantizer (3..8 in the paper's ablations).
    acc_bits: accumulator bits (clamp range +-(2^(a-1)-1)); >= 16 or None
        means no accumulator limit.
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

    Quirk fields (hdqt.md section 8; defaults = released code):
    ste_raw_clip (quirk 1): the straight-through estimator of the forward
        quantizers zeroes the gradient where the RAW input has
        |x| > 2^(bits-1)-1 (7 for 4 bits). False: gradient passes unchanged.
    bwd_clip (quirk 2): max-clip factor of the backward quantizers; the
        released code clips only forward, so 1.0.
    conv_bias, conv_init (quirk 3): quantized convs carry a float bias and use
        PyTorch's default kaiming-uniform(a=sqrt(5)) init ("kaiming_uniform");
        conv_bias=False, conv_init="he_normal" matches the float ResNet.
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
    conv_bias: bool = True
    conv_init: str = "kaiming_uniform"
    eval_per_sample: bool = False

    name = "hdqt"

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
        _check_conv_init(self.conv_init)


@dataclass(frozen=True)
class LUQ(_Quantized):
    """LUQ baseline (hdqt.md section 7; Chmiel et al., ICLR 2023).

    bits: forward operand bits (SAWB clip, deterministic rounding, STE).
    grad_bits: bits of the logarithmic gradient format (sign + exponent bits;
        4 gives magnitudes alpha * 2^0..2^6 and 0).
    acc_bits / acc_mode: optional forward accumulator limit over the whole
        reduction (no tiling); None or >= 16 = no limit.
    conv_bias, conv_init: as HDQT's quirk 3 fields (the swapped layers of the
        released code).
    """

    bits: int = 4
    grad_bits: int = 4
    acc_bits: Optional[int] = None
    acc_mode: str = "clamp"
    conv_bias: bool = True
    conv_init: str = "kaiming_uniform"

    name = "luq"

    def __post_init__(self):
        _check_bits("bits", self.bits, 2, 8)
        _check_bits("grad_bits", self.grad_bits, 2, 8)
        _check_acc(self.acc_bits, self.acc_mode)
        _check_conv_init(self.conv_init)
