"""A sweep folder as a table and a figure: runs grouped by their grid point.

A sweep folder (``intsim sweep SPEC --out DIR``) holds ``sweep.json``, whose
entries name each run's grid point as a label of ``axis=value`` words (e.g.
``method=icarl arith=fp seed=42467``), and one run folder per run. Runs that
differ only in ``seed`` form one group; :func:`sweep_table` gives each group's
mean +- sample std over its seeds, :func:`sweep_series` the accuracy against
the swept numeric axis for the figure of ``intsim plot DIR``. The figures include
the CNN forgetting and backward transfer by task (results.json
``summary.cnn.by_task``; '-' for records without them). When runs of the
sweep have a cost record (results.json ``cost``), the table adds their energy
(uJ) and energy per MAC (pJ), also mean +- std over the seeds.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

from intsim.app import costreport, runfolder
from intsim.app.jobs import fmt_pm, mean_std, run_summary

SWEEP_FILE = "sweep.json"
FIGURES = (("cnn_avg", "CNN avg inc %"), ("cnn_last", "CNN last %"), ("nme_avg", "NME avg inc %"),
           ("nme_last", "NME last %"), ("cnn_task_forgetting", "CNN task forg"),
           ("cnn_bwt", "CNN BWT"), ("sat_pct", "sat %"))


def is_sweep(folder) -> bool:
    return os.path.isfile(os.path.join(os.fspath(folder), SWEEP_FILE))


def axes_of(label: str) -> dict:
    """``"method=icarl arith=hdqt,bits=4 seed=1"`` -> {"method": "icarl",
    "arith": "hdqt,bits=4", "seed": "1"} (words without '=' count as their own axis)."""
    out: dict[str, str] = {}
    for word in label.split():
        k, sep, v = word.partition("=")
        out[k if sep else word] = v if sep else word
    return out


def sweep_runs(folder) -> tuple[list[tuple[dict, dict]], int]:
    """([(axes, results.json dict) of each complete run], number of runs not complete)."""
    folder = os.fspath(folder)
    with open(os.path.join(folder, SWEEP_FILE)) as f:
        state = json.load(f)
    done, missing = [], 0
    for key, entry in state.get("runs", {}).items():
        try:
            res = runfolder.read_json(os.path.join(folder, key, runfolder.RESULTS))
        except (OSError, ValueError):
            res = None
        if not isinstance(res, dict) or not res.get("complete"):
            missing += 1
            continue
        done.append((axes_of(entry.get("label", "")), res))
    return done, missing


def groups(runs: list[tuple[dict, dict]]) -> dict[tuple, list[dict]]:
    """{((axis, value), ... without seed): [run summaries]} in first-seen order."""
    out: dict[tuple, list[dict]] = {}
    for axes, res in runs:
        key = tuple((k, v) for k, v in axes.items() if k != "seed")
        out.setdefault(key, []).append(run_summary(res))
    return out


def sweep_table(folder, table=None) -> tuple[list[str], list[list[str]], int]:
    """(header, rows, runs not complete): one row per grid point without the seed;
    with "energy uJ" and "pJ/MAC" columns when a run has a cost record (priced with
    the EnergyTable ``table`` when given; '-' for a point without records)."""
    runs, missing = sweep_runs(folder)
    grouped = groups(runs)
    costs: dict[tuple, list] = {}
    for axes, res in runs:
        key = tuple((k, v) for k, v in axes.items() if k != "seed")
        rec = costreport.run_cost(res, table=table)
        if rec is not None:
            costs.setdefault(key, []).append(rec)
    names: list[str] = []
    for key in grouped:
        for k, _ in key:
            if k not in names:
                names.append(k)
    header = names + ["seeds"] + [title for _, title in FIGURES]
    if costs:
        header += ["energy uJ", "pJ/MAC"]
    rows = []
    for key, summaries in grouped.items():
        d = dict(key)
        cells = [d.get(n, "-") for n in names] + [str(len(summaries))]
        for field, _ in FIGURES:
            digits = 3 if field == "sat_pct" else 2
            cells.append(fmt_pm([s.get(field) for s in summaries], digits))
        if costs:
            cells += costreport.energy_cells_pm(costs.get(key, []))
        rows.append(cells)
    return header, rows, missing


def _number(v: str) -> float | None:
    try:
        x = float(v)
    except ValueError:
        return 16.0 if v == "none" else None        # no accumulator limit: plotted at 16
    return x if math.isfinite(x) else None


def swept_axis(runs: list[tuple[dict, dict]]) -> str | None:
    """The last axis (seed aside) whose values are numbers and take several values."""
    axes: dict[str, set] = {}
    for a, _ in runs:
        for k, v in a.items():
            if k != "seed":
                axes.setdefault(k, set()).add(v)
    numeric = [k for k, vs in axes.items() if len(vs) > 1 and all(_number(v) is not None for v in vs)]
    return numeric[-1] if numeric else None


def sweep_series(folder, field: str = "cnn_avg") -> tuple[str | None, dict[str, Any]]:
    """(x axis, {line label: (xs, means, stds)}): ``field`` (mean +- std over seeds)
    against the swept axis, one line per combination of the other axes."""
    runs, _ = sweep_runs(folder)
    x = swept_axis(runs)
    if x is None:
        return None, {}
    points: dict[str, dict[float, list]] = {}
    for axes, res in runs:
        if x not in axes:
            continue
        line = " ".join(f"{k}={v}" for k, v in axes.items() if k not in (x, "seed")) or "all"
        points.setdefault(line, {}).setdefault(_number(axes[x]), []).append(
            run_summary(res).get(field))
    series = {}
    for line, by_x in points.items():
        xs = sorted(by_x)
        stats = [mean_std(by_x[v]) for v in xs]
        series[line] = (xs, [m for m, _, _ in stats], [s or 0.0 for _, s, _ in stats])
    return x, series


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points (energy, accuracy) no other point beats: none has lower or
    equal energy with higher or equal accuracy, one of them strictly. Sorted by energy."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def energy_points(folder, field: str = "cnn_avg", table=None) -> list[dict]:
    """Per grid point of a sweep (seeds pooled) with cost records: {"label", "energy_uj",
    "energy_std", "acc", "acc_std", "seeds"}, the mean +- std over seeds of the run's
    energy (priced with ``table`` when given) and of ``field``."""
    runs, _ = sweep_runs(folder)
    by_point: dict[str, list] = {}
    for axes, res in runs:
        rec = costreport.run_cost(res, table=table)
        if rec is None:
            continue
        label = " ".join(f"{k}={v}" for k, v in axes.items() if k != "seed") or "all"
        by_point.setdefault(label, []).append((costreport.energy_uj(rec),
                                               run_summary(res).get(field)))
    out = []
    for label, vals in by_point.items():
        e, es, _ = mean_std([v[0] for v in vals])
        a, as_, n = mean_std([v[1] for v in vals])
        if n:
            out.append({"label": label, "energy_uj": e, "energy_std": es or 0.0, "acc": a,
                        "acc_std": as_ or 0.0, "seeds": n})
    return out
