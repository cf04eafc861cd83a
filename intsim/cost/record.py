"""The ``cost`` object of results.json: a run's operation counts, priced.

:func:`cost_record` prices ``{layer: {pass: OpCounts}}`` (intsim.cost.counts) with
an EnergyTable::

    {"table": {"name", "integer", "source"},
     "total": {"macs", "energy_pj", "by_class": {op class: {"count", "energy_pj"}}},
     "by_pass": {pass: {"macs", "energy_pj"}},
     "by_layer": {layer: {pass: {"macs", "energy_pj", "by_class": {...}}}}}

``macs`` are the multiplies (the ``mul:*`` counts), energies in pJ. The counts
are stored per class, so :func:`reprice` prices a stored record again with
another table without re-running anything. :func:`merge_cost_records` sums the
records of several tasks into the run's. docs/run-folder.md documents the fields.
"""
from __future__ import annotations

from typing import Iterable, Mapping

#: the order passes are listed in (others follow in first-seen order)
PASS_ORDER = ("forward", "backward_input", "backward_weight", "optimizer")


def _ordered(passes) -> list:
    passes = list(passes)
    return [p for p in PASS_ORDER if p in passes] + [p for p in passes if p not in PASS_ORDER]


def _entry(by_class: Mapping) -> dict:
    """{"macs", "energy_pj", "by_class"} of priced classes {op: {"count", "energy_pj"}}."""
    by_class = {op: {"count": int(v["count"]), "energy_pj": float(v["energy_pj"])}
                for op, v in sorted(by_class.items())}
    return {"macs": sum(v["count"] for op, v in by_class.items() if op.startswith("mul:")),
            "energy_pj": sum(v["energy_pj"] for v in by_class.values()),
            "by_class": by_class}


def _add_into(acc: dict, by_class: Mapping) -> None:
    for op, v in by_class.items():
        a = acc.setdefault(op, {"count": 0, "energy_pj": 0.0})
        a["count"] += int(v["count"])
        a["energy_pj"] += float(v["energy_pj"])


def _assemble(table_info: dict, priced: Mapping) -> dict:
    """The record of ``priced`` = {layer: {pass: {op: {"count", "energy_pj"}}}}."""
    by_layer: dict = {}
    pass_classes: dict = {}
    total_classes: dict = {}
    for layer, passes in priced.items():
        out = by_layer.setdefault(str(layer), {})
        for p in _ordered(passes):
            out[str(p)] = _entry(passes[p])
            _add_into(pass_classes.setdefault(str(p), {}), passes[p])
            _add_into(total_classes, passes[p])
    by_pass = {}
    for p in _ordered(pass_classes):
        e = _entry(pass_classes[p])
        by_pass[p] = {"macs": e["macs"], "energy_pj": e["energy_pj"]}
    return {"table": dict(table_info), "total": _entry(total_classes), "by_pass": by_pass,
            "by_layer": by_layer}


def cost_record(by_layer: Mapping, table) -> dict:
    """The cost object of ``by_layer`` = {layer: {pass: {op class: count}}}, priced with
    the EnergyTable ``table``. The total and each pass are the sums of the layers'
    entries. ValueError (one line) for an op class the table cannot price."""
    priced = {layer: {p: table.price(counts)["by_class"] for p, counts in passes.items()}
              for layer, passes in by_layer.items()}
    return _assemble(table.info(), priced)


def record_counts(record: Mapping) -> dict:
    """The counts a cost record was priced from: {layer: {pass: {op class: count}}}."""
    return {layer: {p: {op: int(v["count"]) for op, v in e["by_class"].items()}
                    for p, e in passes.items()}
            for layer, passes in record["by_layer"].items()}


def reprice(record: Mapping, table) -> dict:
    """``record`` priced again with ``table`` (its stored counts, another table)."""
    return cost_record(record_counts(record), table)


def merge_cost_records(records: Iterable[Mapping]) -> dict:
    """The sum of several cost records (e.g. a run's tasks): counts and energies add per
    layer, pass and op class. ValueError if there are none or they were priced with
    different tables."""
    records = list(records)
    if not records:
        raise ValueError("no cost records to merge")
    table = records[0]["table"]
    merged: dict = {}
    for r in records:
        if r["table"] != table:
            raise ValueError(f"cannot merge cost records priced with different tables "
                             f"({table.get('name')!r} and {r['table'].get('name')!r}); "
                             "reprice them with one table first")
        for layer, passes in r["by_layer"].items():
            out = merged.setdefault(layer, {})
            for p, e in passes.items():
                _add_into(out.setdefault(p, {}), e["by_class"])
    return _assemble(table, merged)
