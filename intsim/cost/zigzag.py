"""An accelerator-level energy and latency estimate of a layer, through ZigZag.

ZigZag (PyPI ``zigzag-dse``, MIT; ``pip install -e ".[energy]"``) maps a
layer's loop nest onto an accelerator description and prices every memory
access and MAC of the best mapping it finds. This module generates that
description from intsim's per-operation energies, runs ZigZag on one layer
(:func:`estimate_layer`) or a list of them (:func:`estimate_model`), and caches
every result on disk. ZigZag is imported only when a result is not cached; the
rest of intsim never imports this module.

The accelerator (:func:`accelerator_description`, :data:`DEFAULT_ARCH`)
-----------------------------------------------------------------------
A ``rows x cols`` MAC array (16 x 16): output channels (K) along the rows,
input channels (C) along the columns, reduced across the columns.

==========  ================  ==============================================
level       holds             size, energy
==========  ================  ==============================================
MAC         --                ``mac_pj(activation bits, weight bits,
                              partial-sum bits)`` per MAC: a wa x wb
                              multiplier and an adder at the partial-sum width
``w_reg``   weights           one weight per PE
``i_reg``   activations       one activation per column, broadcast down it
``o_reg``   partial sums      ``psum_words`` partial sums per row, at the
                              partial-sum width (the outer accumulator)
``sram``    all three         ``sram_bytes`` (64 KiB), ``sram_pj_per_bit``
``dram``    all three         unbounded, ``dram_pj_per_bit``
==========  ================  ==============================================

Registers cost ``reg_pj_per_bit`` per bit read or written; SRAM and DRAM are
priced per bit moved (their ports have a 1-bit granularity and
``sram_bus_bits``/``dram_bus_bits`` of bandwidth a cycle). Weights and
activations are read from DRAM at their widths, partial sums move between the
levels at ``precisions["partial_sums"]`` bits and final outputs are written
back at ``precisions["outputs"]`` bits.

The energies come from ``table``, a dict with ``mac_pj(wa, wb, acc_bits)`` (a
callable), ``sram_pj_per_bit``, ``dram_pj_per_bit`` and optionally
``reg_pj_per_bit``; missing keys take :data:`DEFAULT_TABLE`'s, a minimal
Horowitz (ISSCC 2014) 45 nm set: an int8 add 0.03 pJ and an int32 add 0.1 pJ
(adders linear in bits between and beyond), an int8 multiply 0.2 pJ and
multipliers proportional to wa * wb (int32: 3.2 pJ, the paper's 3.1), a 64-bit
read of an 8 KB SRAM 10 pJ (0.156 pJ/bit, used for the 64 KiB buffer: an
under-estimate for a larger SRAM), a 64-bit DRAM access 1.3 nJ (the low end of
the paper's 1.3-2.6 nJ: 20.3 pJ/bit), a register bit as one bit of an int32 add
(0.1/32 pJ).

The mapping search (``search``)
-------------------------------
``"full"`` is ZigZag's own loop-order search (LOMA, ``lpf_limit`` 6: every
order of the loops split into at most six prime-factor loops, at least one per
loop; 720 orders for a ResNet-32 conv of the first stage, 5040 for the later
ones). ``"fixed"`` is this module's bounded search, in two steps:

1. every order of the whole loops (none split) in which the filter window stays
   together (FX inside FY), the batch loop is innermost or outermost and, for a
   square layer, OX is inside OY (the other orders are their transposes): at
   most 120 orders, 4 for a dense layer;
2. refinement: for the 6 best orders, every order made by splitting one loop
   in two (an inner part where it was, at up to 6 of its divisors, and an outer
   part at any later position), then the same once more for the best order not
   yet refined: the tilings that keep a tile in the SRAM.

``"auto"`` (the default) counts the orders the full search would try, from the
layer's loop sizes (:func:`full_search_orders`), and takes it if that many at
:data:`SECONDS_PER_ORDER` each fit in ``max_seconds`` (default 10 s), else the
fixed one. The result names the search used and how many orders it evaluated;
cached results are per search.

Measured with ZigZag 3.9.1 on a 2-core machine, 8-bit weights and
activations, 32-bit partial sums, 8-bit outputs, the default accelerator:

===================================  ==========================  ==========================  ========
layer                                full: pJ, orders, time      fixed: pJ, orders, time     fixed
===================================  ==========================  ==========================  ========
ResNet-32 conv 16->16, 32x32, B 128  1.0002e9, 720, 6.6 s        0.9994e9, 301, 1.9 s        -0.08 %
ResNet-32 conv 16->32 stride 2       6.7235e8, 720, 5.7 s        6.7235e8, 264, 1.7 s        0
ResNet-32 conv 64->64, 8x8, B 128    4.9530e8, 5040, 38.8 s      4.9530e8, 386, 4.8 s        0
FCNet dense 561x561, batch 32        6.8607e7, 720, 5.3 s        6.8606e7, 170, 0.9 s        -0.002 %
===================================  ==========================  ==========================  ========

(The last column: the fixed search's energy against the full one's; below zero
where a split at a divisor that LOMA's prime-factor merging does not produce
finds a better tiling. Latencies differ by at most 0.72 %.) With 4-bit weights
and activations (16-bit partial sums), or 4-bit weights and 8-bit activations
(32-bit sums), the 16->16 conv, the 64->64 conv and the dense layer differ by
0 to -0.04 %. :data:`FIXED_SEARCH_TOLERANCE` (5 %) is the documented bound.
Where it fails: a tile that fits the SRAM only with two loops split at once,
e.g. one 32x32 image (B = 1) on a 4 KiB SRAM, +31 % (-0.07 % with the default
64 KiB). ``"auto"`` takes the full search whenever it fits ``max_seconds``.

ResNet-32's 32 forward layers (:func:`resnet32_layers`, batch 128; 7 distinct
shapes, computed once each): 2.198e10 pJ (88 % memory), 20.8 s cold with
``"auto"`` (the 5040-order layers fixed, the others full; the same total as
the full search, which takes 136.6 s cold), 5 ms with a warm cache.

What ZigZag cannot express
--------------------------
- A MAC's energy depends on its operand widths only through the one
  ``unit_energy`` of the array: this module computes it from the widths, but a
  mixed-width datapath (a few wide MACs among narrow ones) is one average.
- One accumulator width per layer: partial sums have one precision (``O``)
  and final outputs another (``O_final``). An 8-bit tile accumulator whose
  sums are added into a 32-bit outer sum (intsim's tiled integer
  accumulation) cannot be described; price it with ``partial_sums`` at the
  outer width (an upper bound for the MACs) or the tile width (a lower one).
- Quantization, rounding, Hadamard transforms, stochastic rounding and the
  optimizer's update are not loop nests of this form: they are not priced here
  (intsim.cost.energy prices them per operation).
- Its loop-order search takes 2-40 s a layer (hence ``"fixed"``); it writes
  into a dump folder and configures the root logger through its API. This
  module runs its stages without the save and plot stages, gives them a
  private temporary dump folder deleted afterwards, silences the ``zigzag``
  loggers and restores the root logger's handlers and level.

Everything here is plain data: results are JSON-able dicts.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import logging
import math
import os
import tempfile
import time
from collections import Counter
from importlib import metadata
from typing import Any, Iterator, Mapping, Sequence

__all__ = [
    "DEFAULT_ARCH", "DEFAULT_TABLE", "FIXED_SEARCH_TOLERANCE", "SECONDS_PER_ORDER",
    "accelerator_description", "cache_folder", "estimate_layer", "estimate_model",
    "horowitz45_add_pj", "horowitz45_mac_pj", "horowitz45_mul_pj", "resnet32_layers",
    "full_search_orders", "workload_description", "zigzag_version",
]

#: the one-line error when ZigZag is missing
MISSING = 'ZigZag (zigzag-dse) is not installed: pip install -e ".[energy]"'

#: bumped whenever the generated description or the reading of ZigZag's results
#: changes, so that older cache entries are not reused
MODEL_REVISION = 1

#: the full search's cost per loop order, measured (ZigZag 3.9.1, this module's
#: accelerator): 36 s for the 5040 orders of the 64->64 conv
SECONDS_PER_ORDER = 0.008

#: the bounded search's energy is within this fraction of the full search's on
#: the measured layers (module docstring)
FIXED_SEARCH_TOLERANCE = 0.05

#: ZigZag's default loop-prime-factor limit: the full search
FULL_LPF_LIMIT = 6

PRECISION_KEYS = ("weights", "activations", "outputs", "partial_sums")

DEFAULT_ARCH: Mapping[str, int] = {
    "rows": 16,            # MAC array rows: output channels K
    "cols": 16,            # MAC array columns: input channels C (reduced)
    "psum_words": 1,       # partial sums held per row in o_reg
    "sram_bytes": 64 * 1024,
    "sram_bus_bits": 1024,
    "dram_bus_bits": 64,
}


# -- the default per-operation energies (Horowitz, ISSCC 2014, 45 nm) ----------
def horowitz45_add_pj(bits: int) -> float:
    """An integer adder of ``bits`` bits: linear through int8 0.03 pJ and int32 0.1 pJ."""
    return 0.03 + (bits - 8) * (0.1 - 0.03) / (32 - 8)


def horowitz45_mul_pj(wa: int, wb: int) -> float:
    """A wa x wb integer multiplier: proportional to wa * wb, int8 x int8 0.2 pJ."""
    return 0.2 * wa * wb / 64


def horowitz45_mac_pj(wa: int, wb: int, acc_bits: int) -> float:
    """One MAC: a wa x wb multiplier and an adder of ``acc_bits`` bits."""
    return horowitz45_mul_pj(wa, wb) + horowitz45_add_pj(acc_bits)


DEFAULT_TABLE: Mapping[str, Any] = {
    "mac_pj": horowitz45_mac_pj,
    "sram_pj_per_bit": 10.0 / 64,      # a 64-bit read of an 8 KB SRAM: 10 pJ
    "dram_pj_per_bit": 1300.0 / 64,    # a 64-bit DRAM access: 1.3 nJ
    "reg_pj_per_bit": 0.1 / 32,        # one bit of an int32 add
}


# -- inputs ------------------------------------------------------------------
def zigzag_version() -> str | None:
    """The installed zigzag-dse version (without importing it), or None."""
    try:
        return metadata.version("zigzag-dse")
    except metadata.PackageNotFoundError:
        return None


def _int(d: Mapping[str, Any], key: str, what: str, default: int | None = None, minimum: int = 1) -> int:
    if key not in d:
        if default is None:
            raise ValueError(f"{what} needs {key!r}")
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int) and not (isinstance(v, float) and v.is_integer()):
        raise ValueError(f"{what} {key!r} must be an integer, got {v!r}")
    if int(v) < minimum:
        raise ValueError(f"{what} {key!r} must be >= {minimum}, got {v!r}")
    return int(v)


def _shape(shape: Mapping[str, Any]) -> dict[str, Any]:
    """The shape with its defaults filled in and nothing else (no "name")."""
    kind = shape.get("kind")
    if kind == "dense":
        return {"kind": "dense", **{k: _int(shape, k, "a dense shape") for k in ("M", "K", "N")}}
    if kind == "conv":
        out = {"kind": "conv", **{k: _int(shape, k, "a conv shape") for k in ("B", "C", "H", "W", "N", "k")}}
        out["stride"] = _int(shape, "stride", "a conv shape", default=1)
        out["padding"] = _int(shape, "padding", "a conv shape", default=0, minimum=0)
        if out["H"] + 2 * out["padding"] < out["k"] or out["W"] + 2 * out["padding"] < out["k"]:
            raise ValueError(f"conv kernel {out['k']} larger than the padded input {shape}")
        return out
    raise ValueError(f"a layer shape's kind must be 'dense' or 'conv', got {kind!r}")


def _precisions(precisions: Mapping[str, Any]) -> dict[str, int]:
    missing = [k for k in PRECISION_KEYS if k not in precisions]
    if missing:
        raise ValueError(f"precisions need {', '.join(PRECISION_KEYS)}; missing {', '.join(missing)}")
    return {k: _int(precisions, k, "precisions") for k in PRECISION_KEYS}


def _with_defaults(given: Mapping[str, Any] | None, defaults: Mapping[str, Any],
                   what: str) -> dict[str, Any]:
    """``defaults`` updated with ``given`` (ValueError naming an unknown key)."""
    out = dict(defaults)
    if given is not None:
        unknown = set(given) - set(defaults)
        if unknown:
            raise ValueError(f"unknown {what} keys {sorted(unknown)}; known: {sorted(defaults)}")
        out.update(given)
    return out


def _table(table: Mapping[str, Any] | None) -> dict[str, Any]:
    out = _with_defaults(table, DEFAULT_TABLE, "energy table")
    if not callable(out["mac_pj"]):
        raise ValueError("table['mac_pj'] must be a callable mac_pj(wa, wb, acc_bits) -> pJ")
    return out


def _arch(arch: Mapping[str, Any] | None) -> dict[str, int]:
    out = _with_defaults(arch, DEFAULT_ARCH, "architecture")
    return {k: _int(out, k, "the architecture") for k in DEFAULT_ARCH}


# -- the generated descriptions ----------------------------------------------
def _energy(x: Any, what: str) -> float:
    v = float(x)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{what} must be a finite energy >= 0 pJ, got {x!r}")
    return v


def accelerator_description(precisions: Mapping[str, Any], table: Mapping[str, Any] | None = None,
                            arch: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """ZigZag's accelerator description (the dict its YAML file holds) for these
    operand widths, energies and sizes: ``yaml.safe_dump(d, sort_keys=False)``
    writes a file ZigZag's own API reads (the memories' order matters)."""
    p, t, a = _precisions(precisions), _table(table), _arch(arch)
    wa, wb, ps = p["activations"], p["weights"], p["partial_sums"]
    mac = _energy(t["mac_pj"](wa, wb, ps), "table['mac_pj'](wa, wb, acc_bits)")
    reg = _energy(t["reg_pj_per_bit"], "table['reg_pj_per_bit']")
    sram = _energy(t["sram_pj_per_bit"], "table['sram_pj_per_bit']")
    dram = _energy(t["dram_pj_per_bit"], "table['dram_pj_per_bit']")

    def port(name: str, kind: str, bw_min: int, bw_max: int, alloc: list[str]) -> dict[str, Any]:
        return {"name": name, "type": kind, "bandwidth_min": bw_min, "bandwidth_max": bw_max,
                "allocation": alloc}

    def register(bits: int, operand: str, ports: list[dict[str, Any]], served: list[str]) -> dict[str, Any]:
        # a register access moves one word of the port's width
        return {"size": bits, "r_cost": reg * ports[0]["bandwidth_max"], "w_cost": reg * ports[0]["bandwidth_max"],
                "area": 0.0, "latency": 1, "operands": [operand], "ports": ports, "served_dimensions": served}

    sram_bus, dram_bus = a["sram_bus_bits"], a["dram_bus_bits"]
    return {
        "name": "intsim_mac_array",
        # the order is the hierarchy's, innermost first for every operand
        "memories": {
            "w_reg": register(wb, "I2", [port("r_port_1", "read", wb, wb, ["I2, tl"]),
                                         port("w_port_1", "write", wb, wb, ["I2, fh"])], []),
            "i_reg": register(wa, "I1", [port("r_port_1", "read", wa, wa, ["I1, tl"]),
                                         port("w_port_1", "write", wa, wa, ["I1, fh"])], ["D1"]),
            "o_reg": register(ps * a["psum_words"], "O",
                              [port("r_port_1", "read", ps, ps, ["O, tl"]),
                               port("r_port_2", "read", ps, ps, ["O, th"]),
                               port("w_port_1", "write", ps, ps, ["O, fh"]),
                               port("w_port_2", "write", ps, ps, ["O, fl"])], ["D2"]),
            "sram": {"size": 8 * a["sram_bytes"], "r_cost": sram * sram_bus, "w_cost": sram * sram_bus,
                     "area": 0.0, "latency": 1, "operands": ["I1", "I2", "O"],
                     "ports": [port("r_port_1", "read", 1, sram_bus, ["I1, tl", "I2, tl", "O, tl", "O, th"]),
                               port("w_port_1", "write", 1, sram_bus, ["I1, fh", "I2, fh", "O, fh", "O, fl"])],
                     "served_dimensions": ["D1", "D2"]},
            "dram": {"size": 2 ** 50, "r_cost": dram * dram_bus, "w_cost": dram * dram_bus,
                     "area": 0.0, "latency": 1, "operands": ["I1", "I2", "O"],
                     "ports": [port("rw_port_1", "read_write", 1, dram_bus,
                                    ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"])],
                     "served_dimensions": ["D1", "D2"]},
        },
        "operational_array": {"unit_energy": mac, "unit_area": 1.0, "dimensions": ["D1", "D2"],
                              "sizes": [a["rows"], a["cols"]]},
    }


def _loop_sizes(shape: Mapping[str, Any]) -> dict[str, int]:
    """ZigZag's layer dimensions of a normalized shape, in its loop_dims order."""
    if shape["kind"] == "dense":
        return {"B": shape["M"], "K": shape["N"], "C": shape["K"]}
    s, p, k = shape["stride"], shape["padding"], shape["k"]
    return {"B": shape["B"], "K": shape["N"], "C": shape["C"],
            "OY": (shape["H"] + 2 * p - k) // s + 1, "OX": (shape["W"] + 2 * p - k) // s + 1,
            "FY": k, "FX": k}


def workload_description(shape: Mapping[str, Any], precisions: Mapping[str, Any],
                         layer_id: int = 0) -> dict[str, Any]:
    """ZigZag's description of one layer (one item of its workload list)."""
    sh, p = _shape(shape), _precisions(precisions)
    sizes = _loop_sizes(sh)
    layer: dict[str, Any] = {
        "id": layer_id, "name": f"layer{layer_id}",
        "loop_dims": list(sizes), "loop_sizes": list(sizes.values()),
        "operand_precision": {"W": p["weights"], "I": p["activations"], "O": p["partial_sums"],
                              "O_final": p["outputs"]},
        "operand_source": {"W": layer_id},  # the weights are the constant operand
    }
    if sh["kind"] == "dense":
        layer.update(operator_type="Gemm", equation="O[b][k]+=W[k][c]*I[b][c]", dimension_relations=[])
    else:
        s, pad = sh["stride"], sh["padding"]
        layer.update(operator_type="Conv", equation="O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
                     dimension_relations=[f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"],
                     pr_loop_dims=["IX", "IY"], pr_loop_sizes=[sh["W"], sh["H"]],
                     padding=[[pad, pad], [pad, pad]])
    return layer


def _spatial(sizes: Mapping[str, int], arch: Mapping[str, int]) -> dict[str, int]:
    return {"K": min(arch["rows"], sizes["K"]), "C": min(arch["cols"], sizes["C"])}


def _mapping_description(spatial: Mapping[str, int]) -> list[dict[str, Any]]:
    return [{"name": "default",
             "spatial_mapping": {"D1": [f"K, {spatial['K']}"], "D2": [f"C, {spatial['C']}"]},
             "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}]


def _temporal_loops(sizes: Mapping[str, int], spatial: Mapping[str, int]) -> dict[str, int]:
    """The loops left to schedule in time (as ZigZag's LOMA computes them)."""
    out = {}
    for d, n in sizes.items():
        q = -(-n // spatial[d]) if d in spatial else n
        if q > 1:
            out[d] = q
    return out


# -- the searches ------------------------------------------------------------
def _prime_factors(n: int) -> list[int]:
    out, f = [], 2
    while f * f <= n:
        while n % f == 0:
            out.append(f)
            n //= f
        f += 1
    if n > 1:
        out.append(n)
    return out


def _full_search_orders(loops: Mapping[str, int], lpf_limit: int = FULL_LPF_LIMIT) -> int:
    """How many loop orders ZigZag's LOMA tries (its lpf limiting and count)."""
    factors = {d: sorted(_prime_factors(n)) for d, n in loops.items()}
    limit = max(lpf_limit, len(factors))
    while sum(len(f) for f in factors.values()) > limit:
        d = max(factors, key=lambda x: len(factors[x]))    # the first loop with the most factors
        f = factors[d]
        f[:2] = [f[0] * f[1]]
        f.sort()
    n = math.factorial(sum(len(f) for f in factors.values()))
    for f in factors.values():
        for c in Counter(f).values():
            n //= math.factorial(c)
    return n


def _fixed_orders(loops: Mapping[str, int]) -> list[list[tuple[str, int]]]:
    """The bounded search's loop orders, innermost loop first: every loop whole
    (not split into factors), the filter window kept together (FX inside FY), the
    batch loop innermost or outermost, and for a square layer (OX and OY of one
    size) only the orders with OX inside OY (the others are their transposes)."""
    units = [[(d, loops[d])] for d in ("B", "K", "C", "OX", "OY") if d in loops]
    window = [(d, loops[d]) for d in ("FX", "FY") if d in loops]
    if window:
        units.append(window)
    square = "OX" in loops and "OY" in loops and loops["OX"] == loops["OY"]
    orders = []
    for perm in itertools.permutations(units):
        order = [loop for unit in perm for loop in unit]
        dims = [d for d, _ in order]
        if "B" in loops and len(perm) > 1 and dims[0] != "B" and dims[-1] != "B":
            continue
        if square and dims.index("OX") > dims.index("OY"):
            continue
        orders.append(order)
    return orders


#: the bounded search's refinement rounds: how many of the best orders so far
#: each round splits one more loop of
FIXED_REFINE_ROUNDS = (6, 1)
#: and splits a loop at most at this many of its divisors
FIXED_MAX_SPLITS = 6


def _divisors(n: int) -> list[int]:
    """n's proper divisors (neither 1 nor n); at most FIXED_MAX_SPLITS of them,
    spread evenly over the sorted list."""
    small = [f for f in range(2, math.isqrt(n) + 1) if n % f == 0]
    d = sorted(set(small + [n // f for f in small]))
    if len(d) > FIXED_MAX_SPLITS:
        d = [d[round(i * (len(d) - 1) / (FIXED_MAX_SPLITS - 1))] for i in range(FIXED_MAX_SPLITS)]
    return d


def _split_variants(order: Sequence[tuple[str, int]]) -> list[list[tuple[str, int]]]:
    """The orders made from ``order`` by splitting one loop of size n into an
    inner part f (where the loop was) and an outer part n / f placed at any
    later position: the tilings that a whole-loop order cannot express."""
    out = []
    for i, (d, n) in enumerate(order):
        for f in _divisors(n):
            inner = [*order[:i], (d, f), *order[i + 1:]]
            for j in range(i + 1, len(order) + 1):
                out.append([*inner[:j], (d, n // f), *inner[j:]])
    return out


def full_search_orders(shape: Mapping[str, Any], arch: Mapping[str, Any] | None = None) -> int:
    """How many loop orders ZigZag's full search (LOMA) evaluates for this layer."""
    sizes = _loop_sizes(_shape(shape))
    return _full_search_orders(_temporal_loops(sizes, _spatial(sizes, _arch(arch))))


def _choose_search(shape: Mapping[str, Any], arch: Mapping[str, int], search: str, max_seconds: float) -> str:
    if search in ("full", "fixed"):
        return search
    if search != "auto":
        raise ValueError(f"search must be 'auto', 'full' or 'fixed', got {search!r}")
    return "full" if full_search_orders(shape, arch) * SECONDS_PER_ORDER <= max_seconds else "fixed"


# -- the cache ---------------------------------------------------------------
def cache_folder(cache_dir: str | os.PathLike | None = None) -> str:
    """``cache_dir``, else ``$INTSIM_CACHE/zigzag``, else
    ``$XDG_CACHE_HOME/intsim/zigzag`` (``~/.cache/intsim/zigzag``)."""
    if cache_dir is not None:
        return os.fspath(cache_dir)
    root = os.environ.get("INTSIM_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "intsim")
    return os.path.join(root, "zigzag")


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _cache_key(inputs: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(inputs).encode()).hexdigest()[:40]


def _cache_read(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            entry = json.load(f)
        return dict(entry["result"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cache_write(path: str, inputs: Mapping[str, Any], result: Mapping[str, Any]) -> None:
    """Atomically; a folder that cannot be written leaves the result uncached."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"inputs": inputs, "result": result}, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        pass


# -- running ZigZag ----------------------------------------------------------
@contextlib.contextmanager
def _zigzag_quiet() -> Iterator[str]:
    """A private dump folder (deleted afterwards), the ``zigzag`` loggers off and
    the root logger's handlers and level as they were."""
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    zz = logging.getLogger("zigzag")
    zz_state = (zz.level, zz.propagate, zz.disabled, list(zz.handlers))
    zz.setLevel(logging.CRITICAL + 1)
    zz.propagate = False
    try:
        with tempfile.TemporaryDirectory(prefix="intsim-zigzag-") as tmp:
            yield tmp
    finally:
        zz.propagate, zz.disabled = zz_state[1], zz_state[2]
        zz.handlers[:] = zz_state[3]
        zz.setLevel(zz_state[0])
        root.handlers[:] = root_handlers
        root.setLevel(root_level)


def _import_zigzag() -> dict[str, Any]:
    """ZigZag's pieces this module runs (its stages and parsers, without its API
    module, which loads ONNX and matplotlib)."""
    try:
        from zigzag.datatypes import LayerDim
        from zigzag.mapping.temporal_mapping import TemporalMappingType
        from zigzag.opt.loma.engine import LomaEngine
        from zigzag.opt.loma.memory_allocator import (MemoryAllocator, MemoryHierarchyTooSmallException,
                                                      MemoryTooSmallException)
        from zigzag.parser.accelerator_factory import AcceleratorFactory
        from zigzag.parser.accelerator_validator import AcceleratorValidator
        from zigzag.parser.mapping_validator import MappingValidator
        from zigzag.parser.workload_factory import WorkloadFactory
        from zigzag.parser.workload_validator import WorkloadValidator
        from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
        from zigzag.stages.main import MainStage
        from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
        from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
        from zigzag.stages.results.reduce_stages import MinimalEnergyStage
        from zigzag.stages.workload_iterator import WorkloadStage
    except ImportError as e:
        raise ImportError(MISSING) from e
    return {"LayerDim": LayerDim, "TemporalMappingType": TemporalMappingType, "LomaEngine": LomaEngine,
            "MemoryAllocator": MemoryAllocator,
            "MemoryHierarchyTooSmallException": MemoryHierarchyTooSmallException,
            "MemoryTooSmallException": MemoryTooSmallException, "AcceleratorFactory": AcceleratorFactory,
            "AcceleratorValidator": AcceleratorValidator, "MappingValidator": MappingValidator,
            "WorkloadFactory": WorkloadFactory, "WorkloadValidator": WorkloadValidator,
            "CostModelStage": CostModelStage, "MainStage": MainStage,
            "SpatialMappingGeneratorStage": SpatialMappingGeneratorStage,
            "TemporalMappingGeneratorStage": TemporalMappingGeneratorStage,
            "MinimalEnergyStage": MinimalEnergyStage, "WorkloadStage": WorkloadStage}


def _ordered_stage(zz: Mapping[str, Any]) -> type:
    """ZigZag's TemporalMappingGeneratorStage, counting the loop orders it
    evaluates (kwarg ``counter``, a one-item list) and, with ``fixed_search``,
    running the bounded search instead of LOMA's."""
    base = zz["TemporalMappingGeneratorStage"]
    LayerDim, MemoryAllocator, LomaEngine = zz["LayerDim"], zz["MemoryAllocator"], zz["LomaEngine"]
    too_small = (zz["MemoryHierarchyTooSmallException"], zz["MemoryTooSmallException"])

    class OrderedTemporalMappingStage(base):  # type: ignore[misc, valid-type]
        def __init__(self, list_of_callables, *, fixed_search: bool = False, counter=None, **kwargs):
            super().__init__(list_of_callables, **kwargs)
            self.fixed_search = fixed_search
            self.counter = counter if counter is not None else [0]

        def run(self):
            if not self.fixed_search:
                for cme, extra in super().run():
                    self.counter[0] += 1
                    yield cme, extra
                return
            loops = {str(d): int(n) for d, n in LomaEngine(
                accelerator=self.accelerator, layer=self.layer, spatial_mapping=self.spatial_mapping,
                mapping_type=self.mapping_type).get_temporal_loops().items()}
            energy: dict[tuple, float] = {}
            yield from self._evaluate(_fixed_orders(loops), energy)
            refined: set[tuple] = set()
            for keep in FIXED_REFINE_ROUNDS:
                best = sorted((e, k) for k, e in energy.items() if math.isfinite(e) and k not in refined)[:keep]
                for _, key in best:
                    refined.add(key)
                    yield from self._evaluate(_split_variants(list(key)), energy)
            if not any(math.isfinite(e) for e in energy.values()):
                raise RuntimeError(f"no loop order of {self.layer} fits the generated accelerator")

        def _evaluate(self, orders, energy):
            for order in orders:
                key = tuple(order)
                if key in energy:
                    continue
                energy[key] = math.inf
                try:
                    tm = MemoryAllocator(self.accelerator, self.layer, self.spatial_mapping,
                                         [(LayerDim(d), n) for d, n in order], self.mapping_type).run()
                except too_small:
                    continue
                kwargs = dict(self.kwargs, accelerator=self.accelerator, layer=self.layer,
                              spatial_mapping=self.spatial_mapping, temporal_mapping=tm)
                for cme, extra in self.list_of_callables[0](self.list_of_callables[1:], **kwargs).run():
                    energy[key] = min(energy[key], float(cme.energy_total))
                    self.counter[0] += 1
                    yield cme, (tm, extra)

    return OrderedTemporalMappingStage


def _run_zigzag(layer: dict[str, Any], mapping: list[dict[str, Any]], accelerator: dict[str, Any],
                search: str) -> dict[str, Any]:
    zz = _import_zigzag()
    with _zigzag_quiet() as dump_folder:
        acc_v = zz["AcceleratorValidator"](copy.deepcopy(accelerator))
        acc_data = acc_v.normalized_data
        if not acc_v.validate():
            raise RuntimeError(f"ZigZag rejected the generated accelerator: {acc_v.validator.errors}")
        acc = zz["AcceleratorFactory"](acc_data).create()
        wl_v = zz["WorkloadValidator"]([copy.deepcopy(layer)])
        wl_data = wl_v.normalized_data
        if not wl_v.validate():
            raise RuntimeError("ZigZag rejected the generated workload")
        map_v = zz["MappingValidator"](copy.deepcopy(mapping))
        map_data = map_v.normalized_data
        if not map_v.validate():
            raise RuntimeError("ZigZag rejected the generated mapping")
        workload = zz["WorkloadFactory"](wl_data, map_data).create()

        counter = [0]
        stages = [zz["WorkloadStage"], zz["MinimalEnergyStage"], zz["SpatialMappingGeneratorStage"],
                  zz["MinimalEnergyStage"], _ordered_stage(zz), zz["CostModelStage"]]
        t0 = time.perf_counter()
        answers = zz["MainStage"](
            stages, accelerator=acc, workload=workload, dump_folder=dump_folder,
            loma_lpf_limit=FULL_LPF_LIMIT, loma_show_progress_bar=False, nb_mappings_generated=1,
            enable_mix_spatial_mapping_generation=False, access_same_data_considered_as_no_access=True,
            temporal_mapping_type=zz["TemporalMappingType"]("uneven"),
            fixed_search=search == "fixed", counter=counter,
        ).run()
        seconds = time.perf_counter() - t0
    if len(answers) != 1:
        raise RuntimeError(f"ZigZag returned {len(answers)} results for one layer")
    cme = answers[0][0]
    return {"energy_pj": float(cme.energy_total), "latency_cycles": float(cme.latency_total2),
            "mac_energy_pj": float(cme.mac_energy), "memory_energy_pj": float(cme.mem_energy),
            "orders": counter[0], "search_seconds": round(seconds, 3)}


# -- the public entry points -------------------------------------------------
def estimate_layer(shape: Mapping[str, Any], precisions: Mapping[str, Any],
                   table: Mapping[str, Any] | None = None, *, cache_dir: str | os.PathLike | None = None,
                   max_seconds: float = 10.0, search: str = "auto", arch: Mapping[str, Any] | None = None,
                   cache: bool = True) -> dict[str, Any]:
    """The energy and latency of one dense or conv layer on the generated accelerator.

    shape: ``{"kind": "dense", "M", "K", "N"}`` (an (M, K) x (K, N) matmul) or
    ``{"kind": "conv", "B", "C", "H", "W", "N", "k", "stride"=1, "padding"=0}``
    (B images of C x H x W, N filters of k x k); other keys (a "name") are
    ignored. precisions: ``{"weights", "activations", "outputs",
    "partial_sums"}`` in bits. table: per-op energies (module docstring;
    default :data:`DEFAULT_TABLE`). arch: sizes (:data:`DEFAULT_ARCH`).
    search: ``"auto"`` (full if its predicted time fits ``max_seconds``, else
    fixed), ``"full"`` or ``"fixed"``. cache: read and write the on-disk cache
    in :func:`cache_folder` (``cache_dir``).

    Returns ``{"energy_pj", "latency_cycles", "mac_energy_pj",
    "memory_energy_pj", "macs", "orders" (loop orders evaluated),
    "search_seconds" (ZigZag's time when computed), "zigzag_version",
    "search": "full"|"fixed", "cached": bool}``. Without ZigZag installed, a
    one-line ImportError says how to install it.
    """
    sh, p, a = _shape(shape), _precisions(precisions), _arch(arch)
    accelerator = accelerator_description(p, table, a)
    layer = workload_description(sh, p)
    sizes = _loop_sizes(sh)
    mapping = _mapping_description(_spatial(sizes, a))
    chosen = _choose_search(sh, a, search, float(max_seconds))
    version = zigzag_version()
    if version is None:
        raise ImportError(MISSING)
    inputs = {"revision": MODEL_REVISION, "zigzag_version": version, "shape": sh, "precisions": p,
              "search": chosen, "accelerator": accelerator, "workload": layer, "mapping": mapping}
    path = os.path.join(cache_folder(cache_dir), _cache_key(inputs) + ".json")
    if cache:
        hit = _cache_read(path)
        if hit is not None:
            hit["cached"] = True
            return hit
    result = _run_zigzag(layer, mapping, accelerator, chosen)
    result.update(macs=math.prod(sizes.values()), zigzag_version=version, search=chosen, cached=False)
    if cache:
        _cache_write(path, inputs, result)
    return dict(result)


def estimate_model(layers: Sequence[Mapping[str, Any]], precisions: Mapping[str, Any],
                   table: Mapping[str, Any] | None = None, *, cache_dir: str | os.PathLike | None = None,
                   max_seconds: float = 10.0, search: str = "auto", arch: Mapping[str, Any] | None = None,
                   cache: bool = True) -> dict[str, Any]:
    """The sum of :func:`estimate_layer` over ``layers`` (the same options).

    Returns ``{"energy_pj", "latency_cycles", "mac_energy_pj",
    "memory_energy_pj", "macs"}`` summed, ``"layers"`` (each layer's result,
    with its "name" if the shape had one), ``"zigzag_version"``, ``"cached"``
    (how many layers were cache hits or repeats of an earlier layer of the
    list), ``"searches"`` ({"full": n, "fixed": n}) and ``"seconds"`` (this
    call's wall time). Layers of equal shape are computed once.
    """
    t0 = time.perf_counter()
    seen: dict[str, dict[str, Any]] = {}
    rows, hits = [], 0
    for shape in layers:
        key = _canonical(_shape(shape))
        if key in seen:
            r = dict(seen[key], cached=True)
        else:
            r = estimate_layer(shape, precisions, table, cache_dir=cache_dir, max_seconds=max_seconds,
                               search=search, arch=arch, cache=cache)
            seen[key] = r
        hits += bool(r["cached"])
        if "name" in shape:
            r = {"name": shape["name"], **r}
        rows.append(r)
    total = {k: sum(r[k] for r in rows) for k in ("energy_pj", "latency_cycles", "mac_energy_pj",
                                                  "memory_energy_pj", "macs")}
    return {**total, "layers": rows, "zigzag_version": zigzag_version(), "cached": hits,
            "searches": dict(Counter(r["search"] for r in rows)),
            "seconds": round(time.perf_counter() - t0, 3)}


def resnet32_layers(batch: int = 128, num_classes: int = 10, in_ch: int = 3, hw: int = 32) -> list[dict[str, Any]]:
    """ResNet-32's forward layers (intsim.models.resnet: option-A shortcuts, no
    1x1 convs): 31 3x3 convs and the classifier, as shape dicts with names."""
    out: list[dict[str, Any]] = [{"name": "stem", "kind": "conv", "B": batch, "C": in_ch, "H": hw, "W": hw,
                                  "N": 16, "k": 3, "stride": 1, "padding": 1}]
    cin, size = 16, hw
    for si, width in enumerate((16, 32, 64)):
        for bi in range(5):
            stride = 2 if si > 0 and bi == 0 else 1
            out.append({"name": f"s{si + 1}b{bi + 1}c1", "kind": "conv", "B": batch, "C": cin, "H": size,
                        "W": size, "N": width, "k": 3, "stride": stride, "padding": 1})
            size = (size + 2 - 3) // stride + 1
            out.append({"name": f"s{si + 1}b{bi + 1}c2", "kind": "conv", "B": batch, "C": width, "H": size,
                        "W": size, "N": width, "k": 3, "stride": 1, "padding": 1})
            cin = width
    if num_classes:
        out.append({"name": "fc", "kind": "dense", "M": batch, "K": cin, "N": num_classes})
    return out


# ------------------------------------------- intsim's energy table, and what ZigZag misses
def table_from_energy(table) -> dict[str, Any]:
    """The ``table`` argument of :func:`estimate_layer` from an intsim EnergyTable
    (intsim.cost.energy.load_table): a MAC is the table's integer multiply of the two
    widths plus its integer add at the partial-sum width; SRAM and register bits cost
    the table's ``mem:read`` per byte / 8 (DRAM keeps this module's figure)."""
    sram = table.energy_pj("mem:read") / 8.0
    return {"mac_pj": lambda wa, wb, acc: table.int_mul_pj(wa, wb) + table.int_add_pj(acc),
            "sram_pj_per_bit": sram, "reg_pj_per_bit": sram}


#: op classes an accelerator model of matmul layers prices itself
MATMUL_CLASSES = ("mul:", "add:", "mem:")


def extras_pj(counts: Mapping[str, int], table) -> dict[str, Any]:
    """What ZigZag cannot see, priced with an intsim EnergyTable: every op class of
    ``counts`` (an OpCounts, e.g. a layer's pass from results.json ``cost``) that is not
    a multiply, an accumulator add or memory traffic: Hadamard adds, quantizer work,
    random bits, optimizer updates. Returns {"energy_pj", "by_class"}; add it to an
    :func:`estimate_layer` result for the layer's whole cost."""
    rest = {k: v for k, v in counts.items() if not k.startswith(MATMUL_CLASSES)}
    priced = table.price(rest)
    return {"energy_pj": priced["energy_pj"], "by_class": priced["by_class"]}
