"""The cost of a run as tables: ``intsim audit RUN --cost`` and the energy columns of
``intsim compare``.

A run's cost record (results.json ``cost``, intsim.cost.record) holds its
operation counts per layer, pass and op class with their energies. :func:`run_cost`
finds it in a results.json dict (the run's, a task's, or the tasks' merged when
the run has none) and prices it again when given another EnergyTable;
:func:`format_cost` prints it per layer and pass; :func:`energy_cells` gives the
two compare columns. Energies are shown in uJ (microjoules; records hold pJ).
"""
from __future__ import annotations

import math
import textwrap

from intsim.app.auditreport import PASS_SHORT
from intsim.app.jobs import mean_std
from intsim.cost.energy import load_table
from intsim.cost.record import merge_cost_records, reprice

#: the short pass names of the cost table
COST_PASS_SHORT = dict(PASS_SHORT, optimizer="opt")
#: op classes listed per row of the cost table
TOP_CLASSES = 3

COST_LEGEND = [
    ("layer", "the layer's name in the model; 'total' rows sum every layer"),
    ("pass", "fwd (forward), bwd-in (input gradient), bwd-w (weight gradient), "
             "opt (the optimizer's update of the layer's parameters); 'all': every pass"),
    ("MACs", "multiplies (the mul:* operations) of the row"),
    ("energy uJ", "the row's energy in microjoules, by the run's energy table "
                  "(or --energy-table)"),
    ("share %", "the row's energy as a % of the table's whole: the run's (all tasks), "
                "or the task's with --task"),
    ("top op classes", "the op classes that cost the row most, with their % of the row "
                       "(docs/method.md, 'What a datapath costs')"),
]


def load_energy_table(path):
    """The EnergyTable of ``--energy-table`` (None: none given -> None). ValueError
    (one line) for a bad file."""
    return None if path is None else load_table(path)


def run_cost(res: dict, task: int | None = None, table=None) -> dict | None:
    """The cost record of a results.json dict: task ``task``'s (0-based) or, for None,
    the run's ``cost`` (else the tasks' merged, when every task has one); priced again
    with ``table`` when given. None when the run has no cost record."""
    tasks = res.get("tasks") or []
    if task is not None:
        rec = tasks[task].get("cost") if 0 <= task < len(tasks) else None
    else:
        rec = res.get("cost")
        if rec is None:
            per_task = [t.get("cost") for t in tasks]
            if per_task and all(r is not None for r in per_task):
                for r in per_task:
                    _check(r)
                return merge_cost_records([reprice(r, table) if table is not None else r
                                           for r in per_task])
    if rec is None:
        return None
    _check(rec)
    return reprice(rec, table) if table is not None else rec


def _check(rec) -> None:
    """ValueError (one line) unless ``rec`` has the fields of a cost record."""
    if not isinstance(rec, dict):
        raise ValueError(f"results.json 'cost' is not a cost record: {type(rec).__name__}")
    for k in ("table", "total", "by_pass", "by_layer"):
        if not isinstance(rec.get(k), dict):
            raise ValueError(f"results.json 'cost' is not a cost record (no '{k}' object)")


def table_name(info: dict) -> str:
    """``45nm (integer ops: horowitz)``: the energy table of a cost record, by name."""
    name = str(info.get("name", "?"))
    return name + (f" (integer ops: {info['integer']})" if info.get("integer") else "")


# ---------------------------------------------------------------- numbers

def fmt_energy(x: float | None) -> str:
    """A number to 4 significant digits, thousands separated, never in e-notation:
    1,235 / 12.35 / 0.001235; '-' for None."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if x == 0:
        return "0"
    decimals = max(0, 3 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def energy_uj(record: dict | None) -> float | None:
    return None if record is None else record["total"]["energy_pj"] * 1e-6


def pj_per_mac(record: dict | None) -> float | None:
    """The whole energy over the multiplies (None without a record or without MACs)."""
    if record is None or not record["total"]["macs"]:
        return None
    return record["total"]["energy_pj"] / record["total"]["macs"]


def energy_cells(record: dict | None) -> list[str]:
    """The compare columns of a run: [energy uJ, pJ/MAC] ('-' without a record)."""
    return [fmt_energy(energy_uj(record)), fmt_energy(pj_per_mac(record))]


def energy_cells_pm(records: list) -> list[str]:
    """The compare columns of a sweep's grid point: mean +- std over its seeds' records."""
    cells = []
    for values in ([energy_uj(r) for r in records], [pj_per_mac(r) for r in records]):
        m, s, n = mean_std(values)
        cells.append("-" if n == 0 else fmt_energy(m) if n == 1
                     else f"{fmt_energy(m)} +- {fmt_energy(s)}")
    return cells


# ---------------------------------------------------------------- the table

def _top(by_class: dict, energy: float, k: int = TOP_CLASSES) -> str:
    ranked = sorted(by_class.items(), key=lambda kv: (-kv[1]["energy_pj"], kv[0]))[:k]
    return ", ".join(f"{op} {100 * v['energy_pj'] / energy:.0f}%"
                     for op, v in ranked if energy > 0 and v["energy_pj"] > 0)


def cost_rows(record: dict) -> list[dict]:
    """Rows of the cost table: per layer and pass, then a total per pass and the
    total: layer, pass, macs, energy_pj, share (% of the total), top (the op classes
    that cost the row most)."""
    total = record["total"]["energy_pj"]

    def row(layer, p, macs, energy, by_class):
        return {"layer": layer, "pass": p, "macs": macs, "energy_pj": energy,
                "share": 100 * energy / total if total else 0.0,
                "top": _top(by_class, energy)}

    rows = []
    pass_classes: dict = {}
    for layer, passes in record["by_layer"].items():
        for p, e in passes.items():
            rows.append(row(layer, p, e["macs"], e["energy_pj"], e["by_class"]))
            acc = pass_classes.setdefault(p, {})
            for op, v in e["by_class"].items():
                acc.setdefault(op, {"energy_pj": 0.0})["energy_pj"] += v["energy_pj"]
    for p, e in record["by_pass"].items():
        rows.append(row("total", p, e["macs"], e["energy_pj"], pass_classes.get(p, {})))
    t = record["total"]
    rows.append(row("total", "all", t["macs"], t["energy_pj"], t["by_class"]))
    return rows


def format_cost(record: dict, title: str | None = None) -> str:
    """The cost record as a text table: per layer and pass, the totals per pass, the
    total, and the energy per MAC."""
    rows = cost_rows(record)
    head = ["layer", "pass", "MACs", "energy uJ", "share %", "top op classes"]
    body = [[r["layer"], COST_PASS_SHORT.get(r["pass"], r["pass"]), f"{r['macs']:,}",
             fmt_energy(r["energy_pj"] * 1e-6), f"{r['share']:.1f}", r["top"]] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    right = {2, 3, 4}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    tab = record.get("table") or {}
    out = [title] if title else []
    out.append(textwrap.shorten(f"energy table: {table_name(tab)}; {tab.get('source', '')}",
                                200))
    out.append(line(head))
    out.append(line(["-" * w for w in widths]))
    n_layer_rows = len(rows) - len(record["by_pass"]) - 1
    out.extend(line(b) for b in body[:n_layer_rows])
    out.append(line(["-" * w for w in widths]))
    out.extend(line(b) for b in body[n_layer_rows:])
    t = record["total"]
    per_mac = pj_per_mac(record)
    out.append(f"total: {fmt_energy(t['energy_pj'] * 1e-6)} uJ over {t['macs']:,} MACs"
               + (f", {fmt_energy(per_mac)} pJ per MAC (every operation counted)"
                  if per_mac is not None else ""))
    return "\n".join(out)


def format_legend(title: str, legend) -> str:
    """A table's column legend (``legend``: [(column, meaning)]), one column a line."""
    width = max(len(col) for col, _ in legend)
    lines = [f"columns of the {title} table (docs/run-folder.md, 'The {title} table'):"]
    for col, text in legend:
        lines.append(textwrap.fill(text, 79, initial_indent=f"  {col.ljust(width)}  ",
                                   subsequent_indent=" " * (width + 4),
                                   break_on_hyphens=False))
    return "\n".join(lines)


def format_cost_legend() -> str:
    """The column legend of the cost table, one column a line."""
    return format_legend("cost", COST_LEGEND)
