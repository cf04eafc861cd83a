"""Settings of datapaths and their parts, checked from the dataclass annotations.

Each datapath and part is a frozen dataclass; its annotations are the one
definition of its settings. :func:`coerce_fields` turns a table from a config
file, a sweep axis or the command line into the dataclass's keyword
arguments, with one-line errors naming the setting:

- ``int``, ``float``, ``bool``, ``str``: the value's type (TOML strings of
  digits are not taken for numbers);
- ``Optional[X]``: X, or None (spelled ``"none"`` in TOML);
- ``Literal[...]``: one of the listed strings;
- :data:`FormatName`: a number format name (:func:`format_of`); an integer
  is taken as its digits, so lptorch's digit-string formats may be given
  unquoted (``--arith-opt act_format=11111110``, whose value reads as a
  number);
- a part base class (Rounding, Transform, Accumulator): a part spec, built by
  the class (intsim.datapath.parts.registry.Part.from_spec).

Parts are recognised by their ``slot`` attribute and ``from_spec`` method, so
this module imports none of them (the parts' registry imports it).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import typing
from typing import Any, Literal, Union

from intsim.formats import IntFormat, get_format


class FormatName(str):
    """Annotation marker: a number format name (``"int4"``, ``"e4m3"``, ``"mxfp4_e2m1"``, an
    lptorch digit string such as ``"555555543210"``)."""


def format_of(name):
    """The number format a name gives: ``intN`` / ``uintN`` (N = 2..16) an IntFormat,
    anything else through intsim.formats.get_format. ValueError naming it otherwise."""
    if not isinstance(name, str):
        return get_format(name)
    return _format_named(name)


@functools.lru_cache(maxsize=None)
def _format_named(name: str):
    """format_of of a name, built once (the passes ask for their formats every call)."""
    key = name.strip().lower()
    for prefix, signed in (("uint", False), ("int", True)):
        if key.startswith(prefix) and key[len(prefix):].isdigit():
            bits = int(key[len(prefix):])
            if not 2 <= bits <= 16:
                raise ValueError(f"integer format {name!r}: bits must be 2..16")
            return IntFormat(bits, signed=signed)
    return get_format(key)


def _is_part_class(tp) -> bool:
    """Whether ``tp`` is a part class (a subclass of intsim.datapath.parts.registry.Part)."""
    return isinstance(tp, type) and bool(getattr(tp, "slot", None)) and hasattr(tp, "from_spec")


def _hints(cls):
    return typing.get_type_hints(cls)


def _is_optional(tp):
    return typing.get_origin(tp) is Union and type(None) in typing.get_args(tp)


def _strip_optional(tp):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if len(args) == 1 else Union[tuple(args)]


def coerce_value(tp, value, where: str):
    """``value`` checked and converted to the annotation ``tp``; ValueError naming ``where``."""
    if _is_optional(tp):
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            return None
        tp = _strip_optional(tp)
    elif value is None:
        raise ValueError(f"{where} cannot be none")
    if typing.get_origin(tp) is Literal:
        choices = typing.get_args(tp)
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise ValueError(f"{where} must be one of {', '.join(choices)}, got {value!r}")
        return value.strip().lower()
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{where} must be finite, got {value!r}")
        return float(value)
    if tp is FormatName:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)          # a digit string that was read as a number
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a number format name, got {value!r}")
        try:
            format_of(value)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        return value.strip().lower()
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return value
    if _is_part_class(tp):
        return tp.from_spec(value, where)
    raise TypeError(f"{where}: unsupported annotation {tp!r}")  # pragma: no cover


def coerce_fields(cls, values: dict, where: str) -> dict:
    """Keyword arguments of dataclass ``cls`` from ``values`` (ValueError on an unknown
    or ill-typed field, naming ``where.field``)."""
    hints = _hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    out = {}
    for k, v in values.items():
        key = str(k).replace("-", "_")
        if key not in known:
            raise ValueError(f"{where}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
        out[key] = coerce_value(hints[key], v, f"{where}.{key}")
    return out


def to_plain(v) -> Any:
    """A field value as plain data (parts as their specs, tuples as lists)."""
    if _is_part_class(type(v)):
        return v.to_spec()
    if isinstance(v, tuple):
        return [to_plain(x) for x in v]
    return v



def check_fields(obj, where: str = "") -> None:
    """ValueError (one line) unless every field of the dataclass instance ``obj`` holds a
    value its annotation admits; the Python API checks what config files check."""
    hints = _hints(type(obj))
    name = where or getattr(obj, "name", "") or getattr(obj, "kind", "") or type(obj).__name__
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        tp = hints[f.name]
        base = _strip_optional(tp) if _is_optional(tp) else tp
        if _is_part_class(base):
            if v is None and _is_optional(tp):
                continue
            if not isinstance(v, base):
                raise ValueError(f"{name}.{f.name} must be a {base.slot} part, got {v!r}")
            continue
        coerce_value(tp, v, f"{name}.{f.name}")
