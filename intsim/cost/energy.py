"""The energy of an operation, and of a run's operation counts.

An :class:`EnergyTable` gives every op class (intsim.cost.tally) its energy per
operation in picojoules: ``table.energy_pj("mul:int4*int4")``, and
``table.price(counts)`` the energy of an OpCounts. :func:`load_table` reads one
from a TOML file; without a path it is the packaged ``energy_45nm.toml``
(Horowitz, ISSCC 2014, 45 nm; the Aladdin models as a second set of integer
reference points). The file's comments cite its sources and state the rules.

Reference points and the rules between them. Each parametric op class has a
cost variable x; the table holds the energy at a few reference points of x, and
the energy is linear in x between neighbouring points and proportional to x
(a line through 0) below the smallest and above the largest one:

============================  =========================================
op class                      x
============================  =========================================
``add:intN``, ``had:intN``    N (adders are linear in bits)
``mul:intA*intB``             A * B (array multipliers: quadratic in bits)
``mul:<float>*<float>``       p_a * p_b, p = mantissa bits + 1 (the
                              significand multiplier); an integer operand
                              of N bits is a significand of N bits
``add:<float>``               1 + exponent bits + mantissa bits
============================  =========================================

lptorch's tapered formats are floats with their widest significand and their
code width; an OCP MX operand is its element format plus one 8-bit integer add
per block of products (the shared E8M0 exponents); a multiply by a logarithmic
``logN`` operand is a shift: an integer add of the other operand's width (an
integer's bits, a float's exponent bits). The other op classes (``quant:*``,
``rng:bits``, ``opt:update``, ``mem:*``, or any a table adds) are the table's
``[ops]``: a number of pJ, or a combination ``{op class: how many}`` of others.
An ``[ops]`` entry also overrides the rules for its op class.

Errors are one-line ValueErrors: a bad table names the bad key, an op class that
cannot be priced names itself.
"""
from __future__ import annotations

import bisect
import math
import numbers
import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Mapping

from intsim.formats import get_format
from intsim.formats.floating import FloatFormat
from intsim.formats.integer import IntFormat
from intsim.formats.mx import MXFormat
from intsim.formats.tapered import TaperedFormat

#: the packaged table (intsim/cost/)
DEFAULT_TABLE = "energy_45nm.toml"
#: the op classes every table prices in [ops]
REQUIRED_OPS = ("quant:absmax", "quant:scale", "quant:round", "rng:bits", "opt:update",
                "mem:read", "mem:write")
#: bits of an OCP MX block's shared scale (E8M0), added once per block of products
MX_SCALE_BITS = 8
#: widths an intN / uintN / logN name may have
MAX_BITS = 64

_INT = re.compile(r"u?int(\d+)$")
_LOG = re.compile(r"log(\d+)$")


# ------------------------------------------------------------------ operands

@dataclass(frozen=True)
class Operand:
    """What pricing needs of a number format.

    kind: "int", "float" or "log". bits: the code width (a float's 1 + exp + man).
    sig: the significand's bits (an integer's bits, a float's man + 1). exp: a
    float's exponent bits (0 otherwise). block: an OCP MX format's block size (its
    elements are described by the other fields), None otherwise.
    """

    kind: str
    bits: int
    sig: int
    exp: int = 0
    block: int | None = None


def _describe(fmt) -> Operand:
    if isinstance(fmt, IntFormat):
        return Operand("int", fmt.bits, fmt.bits)
    if isinstance(fmt, FloatFormat):
        return Operand("float", 1 + fmt.exp_bits + fmt.man_bits, fmt.man_bits + 1, fmt.exp_bits)
    if isinstance(fmt, TaperedFormat):
        codes = len(fmt.values())
        return Operand("float", max(1, math.ceil(math.log2(codes))), max(fmt.man),
                       max(1, math.ceil(math.log2(fmt.binades))))
    if isinstance(fmt, MXFormat):
        return replace(_describe(fmt.element), block=fmt.block_size)
    raise ValueError(f"no energy rule for the format {fmt!r}")


@lru_cache(maxsize=None)
def operand(name: str) -> Operand:
    """The Operand of a format name: ``intN`` / ``uintN`` (N = 1..64), ``logN``
    (a logarithmic format of N bits: sign and exponent), or any name
    intsim.formats.get_format takes (``e4m3``, ``fp32``, ``mxfp4_e2m1``,
    ``555555543210``). ValueError naming it otherwise."""
    key = str(name).strip().lower()
    for pattern, kind in ((_INT, "int"), (_LOG, "log")):
        m = pattern.match(key)
        if m:
            bits = int(m.group(1))
            if not 1 <= bits <= MAX_BITS:
                raise ValueError(f"format {name!r}: bits must be 1..{MAX_BITS}")
            return Operand(kind, bits, bits)
    try:
        fmt = get_format(key)
    except ValueError:
        raise ValueError(f"unknown number format {name!r} (intN, logN, or a format name "
                         "such as e4m3, fp16, mxfp4_e2m1, 555555543210)") from None
    return _describe(fmt)


def canonical(op: str) -> str:
    """The op class as looked up: stripped; a mul's or add's formats in lower case and
    a mul's two operands sorted (``mul:int8*int4`` is ``mul:int4*int8``)."""
    if not isinstance(op, str):
        raise ValueError(f"an op class is a string, got {op!r}")
    kind, sep, arg = op.strip().partition(":")
    if kind == "mul" and sep:
        a, star, b = arg.partition("*")
        if star:
            return "mul:" + "*".join(sorted((a.strip().lower(), b.strip().lower())))
    if kind in ("add", "had") and sep:
        return f"{kind}:{arg.strip().lower()}"
    return op.strip()


# ------------------------------------------------------------------ curves

def interpolate(x: float, points) -> float:
    """The energy at ``x`` on the reference ``points`` ((x, pJ) sorted by x): linear
    between neighbours, proportional to x (through 0) outside them."""
    x0, e0 = points[0]
    if x <= x0:
        return e0 * x / x0
    xn, en = points[-1]
    if x >= xn:
        return en * x / xn
    i = bisect.bisect_right([p[0] for p in points], x)
    (xa, ea), (xb, eb) = points[i - 1], points[i]
    return ea + (eb - ea) * (x - xa) / (xb - xa)


def _curve(pairs, where: str) -> tuple:
    """((x, pJ), ...) sorted by x; ValueError if one x has two energies."""
    out: dict = {}
    for key, x, e in pairs:
        if x in out and out[x][1] != e:
            raise ValueError(f"{where}.{key}: same cost variable ({x}) as {where}."
                             f"{out[x][0]}, with another energy")
        out[x] = (key, e)
    return tuple((x, out[x][1]) for x in sorted(out))


# ------------------------------------------------------------------ the table

@dataclass(frozen=True)
class EnergyTable:
    """Energies per operation in pJ (see the module docstring for the rules).

    name, source: the table's name and its sources, as the file states them.
    integer: which reference table of the file prices integer operations.
    int_add, int_mul: ((bits, pJ), ...) of that reference: an n-bit add, an n x n
        multiply.
    float_add, float_mul: ((format name, pJ), ...): an add in that format, a
        multiply of two operands in it.
    ops: {op class: pJ, or {op class: how many}}: the priced-by-name op classes.
    integer_tables: every integer reference table of the file, {name: {"source",
        "add", "mul"}} (:meth:`with_integer` switches to another).
    path: where the table was read from.
    """

    name: str
    source: str
    integer: str
    int_add: tuple
    int_mul: tuple
    float_add: tuple
    float_mul: tuple
    ops: Mapping
    integer_tables: Mapping = field(default_factory=dict)
    path: str = ""
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # ------------------------------------------------------------ the curves
    @cached_property
    def _curves(self) -> dict:
        w = f"integer.{self.integer}"
        return {
            "int_add": _curve(((b, b, e) for b, e in self.int_add), f"{w}.add"),
            "int_mul": _curve(((b, b * b, e) for b, e in self.int_mul), f"{w}.mul"),
            "float_add": _curve(((n, operand(n).bits, e) for n, e in self.float_add),
                                "float.add"),
            "float_mul": _curve(((n, operand(n).sig ** 2, e) for n, e in self.float_mul),
                                "float.mul"),
        }

    def int_add_pj(self, bits: int) -> float:
        """An integer add of ``bits`` bits."""
        return interpolate(bits, self._curves["int_add"])

    def int_mul_pj(self, a: int, b: int) -> float:
        """An integer multiply of an a-bit by a b-bit operand."""
        return interpolate(a * b, self._curves["int_mul"])

    def float_add_pj(self, bits: int) -> float:
        """A float add in a format of ``bits`` total bits."""
        return interpolate(bits, self._curves["float_add"])

    def float_mul_pj(self, sig_a: int, sig_b: int) -> float:
        """A float multiply of significands of sig_a and sig_b bits (mantissa + 1)."""
        return interpolate(sig_a * sig_b, self._curves["float_mul"])

    # ------------------------------------------------------------ op classes
    def info(self) -> dict:
        """{"name", "integer", "source"}: what a cost record says of its table."""
        return {"name": self.name, "integer": self.integer, "source": self.source}

    def with_integer(self, name: str) -> "EnergyTable":
        """The table with integer operations priced by its reference ``name``."""
        if name not in self.integer_tables:
            raise ValueError(f"integer: no reference table {name!r} in the energy table "
                             f"(has: {', '.join(self.integer_tables) or 'none'})")
        ref = self.integer_tables[name]
        return replace(self, integer=name, int_add=ref["add"], int_mul=ref["mul"])

    def energy_pj(self, op: str) -> float:
        """The energy of one operation of class ``op``, in pJ. ValueError (one line,
        naming it) for an op class the table cannot price."""
        key = canonical(op)
        if key not in self._memo:
            self._memo[key] = self._energy(key, op, ())
        return self._memo[key]

    def _energy(self, key: str, op: str, stack: tuple) -> float:
        if key in self.ops:
            if key in stack:
                raise ValueError(f"ops.{stack[0]}: defined in terms of itself "
                                 f"({' -> '.join(stack + (key,))})")
            spec = self.ops[key]
            if isinstance(spec, Mapping):
                return sum(n * self._energy(canonical(k), k, stack + (key,))
                           for k, n in spec.items())
            return float(spec)
        kind, sep, arg = key.partition(":")
        try:
            if kind == "mul" and sep and "*" in arg:
                return self._mul(*arg.split("*", 1))
            if kind in ("add", "had") and sep and arg:
                return self._add(arg)
        except ValueError as e:
            raise ValueError(f"op class {op!r}: {e}") from None
        raise ValueError(f"unknown op class {op!r} (priced: mul:<a>*<b>, add:<fmt>, "
                         f"had:<fmt>, {', '.join(self.ops)})")

    def _add(self, name: str) -> float:
        f = operand(name)
        if f.kind == "log":
            raise ValueError(f"{name} is a logarithmic format: no adder works in it")
        return self.int_add_pj(f.bits) if f.kind == "int" else self.float_add_pj(f.bits)

    def _mul(self, a: str, b: str) -> float:
        fa, fb = operand(a), operand(b)
        blocks = [f.block for f in (fa, fb) if f.block]
        scale = self.int_add_pj(MX_SCALE_BITS) / min(blocks) if blocks else 0.0
        if "log" in (fa.kind, fb.kind):
            other = fb if fa.kind == "log" else fa
            width = other.exp if other.kind == "float" else other.bits
            return self.int_add_pj(width) + scale
        if fa.kind == fb.kind == "int":
            return self.int_mul_pj(fa.bits, fb.bits) + scale
        return self.float_mul_pj(fa.sig, fb.sig) + scale

    # ------------------------------------------------------------ counts
    def price(self, counts: Mapping) -> dict:
        """The energy of ``counts`` ({op class: count}): ``{"macs": the multiplies
        (sum of the mul:* counts), "energy_pj": total, "by_class": {op class:
        {"count", "energy_pj"}}}`` (classes sorted)."""
        by_class = {}
        total, macs = 0.0, 0
        for op in sorted(counts):
            n = counts[op]
            if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
                raise ValueError(f"count of {op!r} must be an integer >= 0, got {n!r}")
            n = int(n)
            e = n * self.energy_pj(op)
            by_class[op] = {"count": n, "energy_pj": e}
            total += e
            if canonical(op).startswith("mul:"):
                macs += n
        return {"macs": macs, "energy_pj": total, "by_class": by_class}


# ------------------------------------------------------------------ loading

_TOP = ("name", "source", "integer", "float", "ops")


def _number(v, where: str, positive: bool = True) -> float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not ok or (v <= 0 if positive else v < 0):
        raise ValueError(f"{where} must be a number {'>' if positive else '>='} 0 (pJ), "
                         f"got {v!r}")
    return float(v)


def _table(d, where: str) -> dict:
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a table, got {d!r}")
    return d


def _keys(d: dict, where: str, allowed, required=()) -> None:
    for k in d:
        if k not in allowed:
            raise ValueError(f"{where + '.' if where else ''}{k}: unknown key "
                             f"(keys: {', '.join(allowed)})")
    for k in required:
        if k not in d:
            raise ValueError(f"missing key {where + '.' if where else ''}{k}")


def _text(v, where: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"{where} must be a non-empty string, got {v!r}")
    return v.strip()


def _points(d, where: str, key_of) -> tuple:
    d = _table(d, where)
    if not d:
        raise ValueError(f"{where} needs at least one reference point")
    return tuple((key_of(k, f"{where}.{k}"), _number(v, f"{where}.{k}"))
                 for k, v in d.items())


def _width(k: str, where: str) -> int:
    if not (isinstance(k, str) and k.isdigit() and 1 <= int(k) <= MAX_BITS):
        raise ValueError(f"{where}: a reference point's key is a width in bits, "
                         f"1..{MAX_BITS}")
    return int(k)


def _float_format(k: str, where: str) -> str:
    try:
        f = operand(k)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    if f.kind != "float" or f.block:
        raise ValueError(f"{where}: a reference point's key is a float format "
                         "(fp16, fp32, bf16, e4m3, ...)")
    return k.strip().lower()


def table_from_dict(d: dict, path: str = "", integer: str | None = None) -> EnergyTable:
    """An EnergyTable from the parsed TOML ``d`` (schema: energy_45nm.toml). ValueError
    naming the bad key."""
    d = _table(d, "the energy table")
    _keys(d, "", _TOP, required=_TOP)
    name, source = _text(d["name"], "name"), _text(d["source"], "source")

    ints = _table(d["integer"], "integer")
    refs = {}
    for k, v in ints.items():
        if k == "default":
            continue
        w = f"integer.{k}"
        v = _table(v, w)
        _keys(v, w, ("source", "add", "mul"), required=("source", "add", "mul"))
        refs[k] = MappingProxyType({"source": _text(v["source"], f"{w}.source"),
                                    "add": _points(v["add"], f"{w}.add", _width),
                                    "mul": _points(v["mul"], f"{w}.mul", _width)})
    if not refs:
        raise ValueError("integer: needs at least one reference table ([integer.<name>])")
    default = ints.get("default")
    if default is None:
        raise ValueError("missing key integer.default")
    if default not in refs:
        raise ValueError(f"integer.default: {default!r} is not one of its tables "
                         f"({', '.join(refs)})")
    choice = default if integer is None else integer
    if choice not in refs:
        raise ValueError(f"integer: no reference table {choice!r} in the energy table "
                         f"(has: {', '.join(refs)})")

    fl = _table(d["float"], "float")
    _keys(fl, "float", ("source", "add", "mul"), required=("source", "add", "mul"))
    _text(fl["source"], "float.source")
    float_add = _points(fl["add"], "float.add", _float_format)
    float_mul = _points(fl["mul"], "float.mul", _float_format)

    ops_in = _table(d["ops"], "ops")
    ops = {}
    for k, v in ops_in.items():
        w = f"ops.{k}"
        if isinstance(v, dict):
            if not v:
                raise ValueError(f"{w}: an empty combination")
            ops[canonical(k)] = MappingProxyType(
                {str(c): _number(n, f'{w}."{c}"', positive=False) for c, n in v.items()})
        else:
            ops[canonical(k)] = _number(v, w, positive=False)
    for k in REQUIRED_OPS:
        if k not in ops:
            raise ValueError(f'missing key ops."{k}"')

    table = EnergyTable(name=name, source=source, integer=choice,
                        int_add=refs[choice]["add"], int_mul=refs[choice]["mul"],
                        float_add=float_add, float_mul=float_mul,
                        ops=MappingProxyType(ops), integer_tables=MappingProxyType(refs),
                        path=str(path))
    for ref in refs:                       # the curves of every reference are valid
        _ = table.with_integer(ref)._curves
    for k in ops_in:                       # every [ops] entry can be priced
        try:
            table.energy_pj(k)
        except ValueError as e:
            msg = str(e)
            raise ValueError(msg if msg.startswith("ops.") else f"ops.{k}: {msg}") from None
    return table


def load_table(path=None, integer: str | None = None) -> EnergyTable:
    """The energy table in the TOML file ``path`` (None: the packaged
    energy_45nm.toml); ``integer`` names the integer reference table to use
    (default: the file's ``integer.default``). ValueError (one line: the file and
    the bad key) for a missing, malformed or invalid table."""
    if path is None:
        where = f"intsim/cost/{DEFAULT_TABLE}"
        text = resources.files("intsim.cost").joinpath(DEFAULT_TABLE).read_text()
    else:
        where = str(path)
        try:
            with open(path, "rb") as fh:
                text = fh.read().decode("utf-8")
        except FileNotFoundError:
            raise ValueError(f"energy table not found: {path}") from None
        except IsADirectoryError:
            raise ValueError(f"energy table {path} is a folder, not a TOML file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"cannot read energy table {path}: {e}") from None
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"energy table {where} is not valid TOML: {e}") from None
    try:
        return table_from_dict(d, where, integer)
    except ValueError as e:
        raise ValueError(f"energy table {where}: {e}") from None
