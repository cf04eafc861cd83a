"""Named formats.

| name | format | max | smallest positive |
|---|---|---|---|
| E4M3 | OCP FP8 E4M3 ("E4M3FN": no inf, one NaN code), saturating | 448 | 2^-9 |
| E5M2 | OCP FP8 E5M2 (IEEE-style inf/NaN), saturating | 57344 | 2^-16 |
| FP16 | IEEE binary16, overflow to inf | 65504 | 2^-24 |
| BF16 | bfloat16, overflow to inf | (2 - 2^-7) 2^127 ~ 3.39e38 | 2^-133 |
| FP32 | IEEE binary32, overflow to inf | (2 - 2^-23) 2^127 | 2^-149 |
| FP134 | lptorch custom_fp_format '555555543210' (1-3-4, subnormals) | 1.9375 (x 2^scale) | 2^-10 (x 2^scale) |
| FP130 | lptorch custom_fp_format '11111110' (the released fp130_4) | 1 (x 2^scale) | 2^-6 (x 2^scale) |
| LPTORCH_MASTER | lptorch fp_format(exp_bit=6, man_bit=9): FP134's master weights | 2^33 - 2^23 | 2^-39 |
| MXFP8_E4M3 | OCP MX: E4M3 elements, an E8M0 scale per block of 32 | 448 x 2^127 | 2^-9 x 2^-127 |
| MXFP8_E5M2 | OCP MX: E5M2 elements | 57344 x 2^127 | 2^-16 x 2^-127 |
| MXFP6_E3M2 | OCP MX: FP6 E3M2 elements (no inf/NaN) | 28 x 2^127 | 2^-4 x 2^-127 |
| MXFP6_E2M3 | OCP MX: FP6 E2M3 elements (no inf/NaN) | 7.5 x 2^127 | 2^-3 x 2^-127 |
| MXFP4_E2M1 | OCP MX: FP4 E2M1 elements (no inf/NaN) | 6 x 2^127 | 2^-1 x 2^-127 |
| MXINT8 | OCP MX: int8 elements k / 64, k in -127..127 | 127/64 x 2^127 | 2^-6 x 2^-127 |

The FP8 presets saturate (the conversion most FP8 training recipes use);
``dataclasses.replace(E5M2, overflow="inf")`` gives the IEEE overflow.
The MX formats (intsim/formats/mx.py) compute their own scale per block of
32 along an axis (``quantize(x, axis=...)``) and take no ``scale``; their
max is the element max at the largest E8M0 scale 2^127.
Names are matched case-insensitively ('mxfp8_e4m3', 'MXINT8').
"""
from intsim.formats.floating import FloatFormat
from intsim.formats.integer import IntFormat
from intsim.formats.mx import (MXFP4_E2M1, MXFP6_E2M3, MXFP6_E3M2, MXFP8_E4M3, MXFP8_E5M2,
                               MXINT8, MXFormat)
from intsim.formats.tapered import TaperedFormat

E4M3 = FloatFormat(4, 3, specials="fn", overflow="saturate", name="E4M3")
E5M2 = FloatFormat(5, 2, specials="ieee", overflow="saturate", name="E5M2")
FP16 = FloatFormat(5, 10, specials="ieee", overflow="inf", name="FP16")
BF16 = FloatFormat(8, 7, specials="ieee", overflow="inf", name="BF16")
FP32 = FloatFormat(8, 23, specials="ieee", overflow="inf", name="FP32")
FP134 = TaperedFormat.from_string("555555543210", name="FP134")
FP130 = TaperedFormat.from_string("11111110", name="FP130")
LPTORCH_MASTER = FloatFormat(6, 9, bias=31, specials="none", overflow="saturate",
                             name="LPTORCH_MASTER")

#: name (lower case) -> format, for settings that name a format
PRESETS = {f.name.lower(): f for f in (E4M3, E5M2, FP16, BF16, FP32, FP134, FP130, LPTORCH_MASTER,
                                        MXFP8_E4M3, MXFP8_E5M2, MXFP6_E3M2, MXFP6_E2M3,
                                        MXFP4_E2M1, MXINT8)}


def get_format(spec):
    """A format from a preset name ('e4m3', 'fp134', 'mxfp8_e4m3', ...), an lptorch
    digit string ('555555543210'), or a format object (returned as is). ValueError
    otherwise."""
    if isinstance(spec, (FloatFormat, TaperedFormat, MXFormat)):
        return spec
    if isinstance(spec, IntFormat):
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in PRESETS:
            return PRESETS[key]
        if key.isdigit():
            return TaperedFormat.from_string(key)
    raise ValueError(f"unknown number format {spec!r} (presets: {', '.join(PRESETS)}, "
                     "or a tapered digit string such as '555555543210')")
