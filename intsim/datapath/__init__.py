"""intsim.datapath: what a layer's matmuls compute, as a composition of parts.

A datapath is a frozen dataclass of parts (parts/: roundings, transforms,
accumulators; number formats from intsim.formats) registered by ``kind``
(base.DATAPATHS):

| kind | class | file |
|---|---|---|
| exact | ExactDatapath: float32 products | exact.py |
| integer | IntegerDatapath: integer operands, tiled integer accumulators, backward transforms (HDQT) | integer.py |
| luq | LUQDatapath: SAWB forward, logarithmic gradients | integer.py |
| formats | FormatsDatapath: any format per operand (MX included), any accumulator | formats.py |
| lptorch | LptorchDatapath: lptorch's tracked tapered floats (FP134) | lptorch.py |

Layers call ``forward(x, W, b, layout, site)`` and the returned context's
``backward(g)`` (base.py); presets.py names the paper's arithmetics (fp,
hdqt, luq, fp8, fp134) and the MX ones. :func:`datapath_from_spec` builds
one from a preset name or a ``[datapath]`` table.
"""
from intsim.datapath.base import DATAPATHS, Datapath, register_datapath
from intsim.datapath.exact import ExactDatapath
from intsim.datapath.formats import FormatsDatapath
from intsim.datapath.integer import IntegerDatapath, LUQDatapath
from intsim.datapath.layout import Batched, Conv, Dense
from intsim.datapath.lptorch import LptorchDatapath
from intsim.datapath.presets import (FP, FP8, FP134, HDQT, LUQ, PRESETS, Preset,
                                     datapath_from_spec, register_preset)

__all__ = ["DATAPATHS", "Datapath", "datapath_from_spec", "register_datapath", "ExactDatapath",
           "IntegerDatapath", "LUQDatapath", "FormatsDatapath", "LptorchDatapath", "Dense",
           "Conv", "Batched", "FP", "HDQT", "LUQ", "FP8", "FP134", "PRESETS", "Preset",
           "register_preset"]
