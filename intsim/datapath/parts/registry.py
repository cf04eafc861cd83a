"""The registries of datapath parts, their base class, and how a part is built
from its spec.

A part spec is the part's name (``"stochastic"``) or a table with its name
and fields (``{kind = "int", bits = 8, tile = 32, mode = "clamp"}``). Field
values are checked against the part dataclass's own annotations
(:func:`intsim.datapath.fields.coerce_fields`), so a part's settings are
written once, in its dataclass. A field annotated with a part class takes a
part spec: fields.py builds it through the class (:meth:`Part.from_spec`).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from intsim.datapath.fields import check_fields, coerce_fields, to_plain

#: slot ("rounding", "transform", "accumulator") -> {name: part class}
PARTS: dict[str, dict[str, type]] = {"rounding": {}, "transform": {}, "accumulator": {}}


class Part:
    """Base of the slots' part classes (rounding.Rounding, transform.Transform,
    accumulator.Accumulator), which are frozen dataclasses: ``slot`` names the
    registry, ``name`` the part in it. Fields are checked when a part is built."""

    slot = ""
    name = ""

    def __post_init__(self):
        check_fields(self)

    @classmethod
    def from_spec(cls, spec: Any, where: str):
        """A part of ``cls.slot`` from a spec (:func:`part_from_spec`)."""
        return part_from_spec(cls.slot, spec, where)

    def to_spec(self) -> Any:
        """This part's spec (:func:`part_to_spec`)."""
        return part_to_spec(self)


def register_part(cls):
    """Class decorator: make ``cls`` selectable by ``cls.name`` in its slot (``cls.slot``)."""
    slot = getattr(cls, "slot", None)
    if slot not in PARTS:
        raise ValueError(f"{cls.__name__}: slot must be one of {tuple(PARTS)}, got {slot!r}")
    PARTS[slot][cls.name] = cls
    return cls


def part_from_spec(slot: str, spec: Any, where: str):
    """The part of ``slot`` a spec names: an instance of a registered part (returned as
    is), a name, or a mapping with ``kind`` (the name) and the part's fields.
    ValueError with one line naming ``where`` otherwise."""
    reg = PARTS[slot]
    if isinstance(spec, tuple(reg.values())):
        return spec
    if isinstance(spec, str):
        name, fields = spec.strip().lower(), {}
    elif isinstance(spec, dict):
        fields = dict(spec)
        name = fields.pop("kind", None)
        if not isinstance(name, str):
            raise ValueError(f"{where}: a table needs kind = one of {', '.join(reg)}")
        name = name.strip().lower()
    else:
        raise ValueError(f"{where}: expected a {slot} name ({', '.join(reg)}) or a table, "
                         f"got {spec!r}")
    if name not in reg:
        raise ValueError(f"{where}: unknown {slot} {name!r} (choose from {', '.join(reg)})")
    cls = reg[name]
    return cls(**coerce_fields(cls, fields, where))


def part_to_spec(part) -> Any:
    """The spec of a part: its name when every field has its default, else a table."""
    fields = {f.name: getattr(part, f.name) for f in dataclasses.fields(part)}
    changed = {k: v for k, v in fields.items()
               if v != next(f for f in dataclasses.fields(part) if f.name == k).default}
    if not changed:
        return part.name
    return {"kind": part.name, **{k: to_plain(v) for k, v in fields.items()}}
