"""intsim.formats: number formats as small frozen objects (layer 1, beside kernels).

- :class:`IntFormat` (integer.py): signed (symmetric or two's complement) and
  unsigned integers, the grid of intsim.kernels.quant's quantizers.
- :class:`FloatFormat` (floating.py): sign/exponent/mantissa floats with a
  bias, subnormals on/off, inf/NaN codes and saturating or inf overflow.
- :class:`TaperedFormat` (tapered.py): lptorch's custom_fp_format, the
  mantissa width per binade ('555555543210', the paper's FP134).
- :class:`MXFormat` (mx.py): OCP MX block formats (OCP MX spec v1.0), an
  element format and one E8M0 (power of two) scale per block of 32 along an
  axis: MXFP8_E4M3, MXFP8_E5M2, MXFP6_E3M2, MXFP6_E2M3, MXFP4_E2M1, MXINT8.
- presets.py: E4M3, E5M2, FP16, BF16, FP134, FP130, LPTORCH_MASTER, the six
  MX formats, and :func:`get_format` (a format from a name or digit string).
- scaling.py: :func:`amax_scale`, per-tensor and per-channel scales.

Every format has ``values()`` (every representable value, sorted),
``max_value``, ``min_positive``, ``quantize(x, rounding="nearest"|"stochastic",
rng=None, scale=None)`` and ``quantize_stats(...)`` (the same plus
:class:`QuantStats`: values flushed to zero and saturated). The rounding
arithmetic shared by all of them is in _grid.py. Plain vectorised NumPy;
randomness only from the np.random.Generator passed in. The MX formats
differ: ``quantize(x, rounding, rng, axis=-1)`` sets the scales itself (one
per block along ``axis``; a ``scale`` is a ValueError), ``values()`` are the
element values, and ``encode`` gives the elements and block exponents.
"""
from intsim.formats._grid import ROUNDINGS, QuantStats
from intsim.formats.floating import FloatFormat
from intsim.formats.integer import IntFormat
from intsim.formats.mx import (MXFP4_E2M1, MXFP6_E2M3, MXFP6_E3M2, MXFP8_E4M3, MXFP8_E5M2,
                               MXINT8, MXFormat)
from intsim.formats.presets import (BF16, E4M3, E5M2, FP16, FP32, FP130, FP134, LPTORCH_MASTER,
                                    PRESETS, get_format)
from intsim.formats.scaling import amax_scale
from intsim.formats.tapered import TaperedFormat

__all__ = ["ROUNDINGS", "QuantStats", "IntFormat", "FloatFormat", "TaperedFormat",
           "E4M3", "E5M2", "FP16", "BF16", "FP32", "FP134", "FP130", "LPTORCH_MASTER", "PRESETS",
           "MXFormat", "MXFP8_E4M3", "MXFP8_E5M2", "MXFP6_E3M2", "MXFP6_E2M3", "MXFP4_E2M1",
           "MXINT8", "get_format", "amax_scale"]
