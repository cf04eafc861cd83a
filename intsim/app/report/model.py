"""What the report shows, as plain data, from results.json dicts and sweep folders.

:class:`RunInput` is one run to report (its results.json dict, a short name,
a label); :func:`load_sweep` reads a sweep folder into a :class:`SweepInput`
(its finished runs as RunInputs, labelled by their grid point). The other
functions compute what a section shows: the settings and which differ
(:func:`settings_table`), the accuracy after each task
(:func:`task_accuracies`), the accuracy matrix and the forgetting per task
(:func:`accuracy_matrix`, :func:`stored_matrix`, :func:`matrix_forgetting`), the audit per task
(:func:`audit_views`), the cost (:func:`cost_view`) and a sweep's grid points
(:func:`sweep_view`). A results file without the fields a part needs gives
None or an empty list for that part; :class:`ReportError` (one line) is
raised only for input that is not a run or a sweep at all.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

from intsim.app import costreport, runfolder, sweepreport
from intsim.app.auditreport import PASSES, PASS_SHORT, audit_rows, merge_audits


class ReportError(ValueError):
    """Input the report cannot read (the message is one line naming it)."""


@dataclass
class RunInput:
    """One run of the report: its results.json dict, a short unique name (the folder),
    the label shown, and for a run of a sweep the sweep's index and grid point."""
    name: str
    label: str
    results: dict
    path: str = ""
    sweep: int | None = None
    grid: str | None = None


@dataclass
class SweepInput:
    """A sweep folder: its finished runs and the number not finished."""
    path: str
    name: str
    runs: list[RunInput] = field(default_factory=list)
    missing: int = 0


def check_results(res, where: str) -> dict:
    """``res`` if it looks like an intsim results.json dict, else ReportError."""
    if not isinstance(res, dict) or not isinstance(res.get("tasks"), list):
        raise ReportError(f"{where} is not an intsim results file (no 'tasks' list)")
    for t in res["tasks"]:
        if not isinstance(t, dict):
            raise ReportError(f"{where} is not an intsim results file (a task is not an object)")
    return res


def load_sweep(folder) -> SweepInput:
    """A sweep folder (with sweep.json) and its finished runs, in sweep.json order;
    each run is named by its folder (the run key) and labelled by its grid point."""
    folder = os.fspath(folder)
    path = os.path.join(folder, sweepreport.SWEEP_FILE)
    try:
        with open(path) as f:
            state = json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"cannot read {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise ReportError(f"{path} is not valid JSON: {e}") from None
    entries = state.get("runs") if isinstance(state, dict) else None
    if not isinstance(entries, dict):
        raise ReportError(f"{path} is not a sweep file (no 'runs' object)")
    name = os.path.basename(os.path.normpath(os.path.abspath(folder)))
    sweep = SweepInput(path=folder, name=name)
    for key, entry in entries.items():
        try:
            res = runfolder.read_json(os.path.join(folder, key, runfolder.RESULTS))
        except (OSError, ValueError):
            res = None
        if not isinstance(res, dict) or not res.get("complete") \
                or not isinstance(res.get("tasks"), list):
            sweep.missing += 1
            continue
        label = str((entry or {}).get("label") or key) if isinstance(entry, dict) else key
        sweep.runs.append(RunInput(name=key, label=label, results=res,
                                   path=os.path.join(folder, key), grid=label))
    return sweep


# ---------------------------------------------------------------- settings

def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def run_settings(res: dict) -> dict:
    """A run's settings, flat (as ``intsim compare`` lists them): results.json
    ``config``, then ``run.threads``."""
    cfg = res.get("config")
    flat = _flatten(cfg if isinstance(cfg, dict) else {})
    run = res.get("run") if isinstance(res.get("run"), dict) else {}
    if run.get("threads") is not None:
        flat.update(_flatten({"threads": run["threads"]}, "run."))
    return flat


MISSING = object()


def setting_text(v) -> str:
    """A setting as text: strings bare, missing as '-', the rest as JSON."""
    if v is MISSING:
        return "-"
    return v if isinstance(v, str) else json.dumps(v)


def settings_table(results: list[dict]) -> tuple[list[str], list[list], set[str]]:
    """(keys in config order, [values per run] per key (MISSING where a run lacks the
    key), the keys whose value is not the same in every run)."""
    flats = [run_settings(r) for r in results]
    keys: list[str] = []
    seen = set()
    for flat in flats:
        for k in flat:
            if k not in seen:
                seen.add(k)
                keys.append(k)
    values = [[flat.get(k, MISSING) for flat in flats] for k in keys]
    differs = {k for k, vals in zip(keys, values) if any(v != vals[0] for v in vals[1:])}
    return keys, values, differs


# ---------------------------------------------------------------- accuracy

def _num(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def task_accuracies(res: dict) -> dict:
    """{"cnn": [acc after each task], "nme": [...] or None (no task has NME),
    "classes_seen": [...]}, None for a task without the value."""
    tasks = res.get("tasks") or []
    cnn = [_num(t.get("cnn")) for t in tasks]
    nme = [_num(t.get("nme")) for t in tasks]
    seen = [t.get("classes_seen") for t in tasks]
    return {"cnn": cnn, "nme": nme if any(v is not None for v in nme) else None,
            "classes_seen": seen}


def summary_of(res: dict, which: str) -> dict:
    """{"avg", "last", "forgetting"} of results.json ``summary[which]`` (computed from
    the tasks when the summary lacks them; forgetting None then)."""
    s = (res.get("summary") or {}).get(which) if isinstance(res.get("summary"), dict) else None
    accs = [a for a in task_accuracies(res)[which] or [] if a is not None]
    out = {"avg": sum(accs) / len(accs) if accs else None,
           "last": accs[-1] if accs else None, "forgetting": None}
    if isinstance(s, dict):
        for k in out:
            if _num(s.get(k)) is not None:
                out[k] = _num(s.get(k))
    return out


def stored_matrix(res: dict, which: str = "cnn") -> list[list[float | None]] | None:
    """The accuracy matrix results.json records (``summary[which].by_task.matrix``:
    accuracy on task j's test samples after task i), or None when it has none."""
    summ = res.get("summary") if isinstance(res.get("summary"), dict) else {}
    s = summ.get(which) if isinstance(summ.get(which), dict) else {}
    by_task = s.get("by_task") if isinstance(s.get("by_task"), dict) else {}
    mat = by_task.get("matrix")
    if not isinstance(mat, list) or not mat or not all(isinstance(r, list) for r in mat):
        return None
    return [[_num(v) for v in row] for row in mat]


def accuracy_matrix(res: dict, which: str = "cnn") -> list[list[float | None]] | None:
    """A[i][j]: the accuracy (%) on task j's test data after task i (j <= i): the
    matrix results.json records (:func:`stored_matrix`), else the mean over task j's
    classes of each task's ``per_class_<which>`` (remapped class order) and
    ``classes``; None where a class has no value. None when the results lack both."""
    stored = stored_matrix(res, which)
    if stored is not None:
        return stored
    tasks = res.get("tasks") or []
    classes = [t.get("classes") for t in tasks]
    per = [t.get(f"per_class_{which}") for t in tasks]
    if not tasks or any(not isinstance(c, list) for c in classes) \
            or any(not isinstance(p, list) for p in per):
        return None
    mat = []
    for i, pc in enumerate(per):
        row = []
        for j in range(i + 1):
            vals = [_num(pc[c]) for c in classes[j] if isinstance(c, int) and 0 <= c < len(pc)]
            vals = [v for v in vals if v is not None]
            row.append(sum(vals) / len(vals) if vals else None)
        mat.append(row)
    return mat


def matrix_forgetting(mat: list[list[float | None]]) -> list[float | None]:
    """Per task j before the last: the best accuracy on its classes after any task
    before the last, minus the accuracy after the last task (percentage points)."""
    if not mat:
        return []
    last = mat[-1]
    out = []
    for j in range(len(mat) - 1):
        before = [mat[i][j] for i in range(j, len(mat) - 1) if mat[i][j] is not None]
        out.append(max(before) - last[j] if before and last[j] is not None else None)
    return out


# ---------------------------------------------------------------- audit

def acc_bits(res: dict):
    """The run's effective accumulator bits (None: no limit), for the audit's /range."""
    run = res.get("run") if isinstance(res.get("run"), dict) else {}
    c = res.get("config") if isinstance(res.get("config"), dict) else {}
    if "acc_limit" in run:
        return run["acc_limit"]
    if c.get("arith") == "fp" or c.get("acc_mode") == "wide":
        return None
    return c.get("acc_bits")


def audit_views(res: dict) -> list[tuple[str, str, list[dict]]]:
    """[(key, title, audit rows)]: all tasks ("all"), then each task ("0", "1", ...),
    the rows of :func:`intsim.app.auditreport.audit_rows`; empty when no task has
    an audit (an FP run)."""
    tasks = res.get("tasks") or []
    audits = [t.get("audit") if isinstance(t.get("audit"), dict) else {} for t in tasks]
    if not any(audits):
        return []
    cfg = res.get("config") if isinstance(res.get("config"), dict) else {}
    threshold = _num(cfg.get("audit_threshold"))
    threshold = 1.0 if threshold is None else threshold
    bits = acc_bits(res)
    total = res.get("audit_total") if isinstance(res.get("audit_total"), dict) else None
    views = [("all", "all tasks", audit_rows(total or merge_audits(audits), bits, threshold))]
    for i, aud in enumerate(audits):
        views.append((str(i), f"task {i + 1}", audit_rows(aud, bits, threshold)))
    return views


def heat_grid(rows: list[dict]) -> tuple[list[str], list[str], dict]:
    """(layers, passes (short names), {(layer, pass): sat %}) of audit rows; a pass
    without tiles has no value."""
    layers: list[str] = []
    passes: list[str] = []
    values = {}
    for r in rows:
        if r["layer"] not in layers:
            layers.append(r["layer"])
        p = PASS_SHORT.get(r["pass"], r["pass"])
        if p not in passes:
            passes.append(p)
        if r["tiles"]:
            values[(r["layer"], p)] = r["sat_pct"]
    order = [PASS_SHORT[p] for p in PASSES]
    passes.sort(key=lambda p: order.index(p) if p in order else len(order))
    return layers, passes, values


# ---------------------------------------------------------------- cost

def cost_view(res: dict, table=None) -> dict | None:
    """The run's cost record as the report shows it: {"record", "rows" (per layer and
    pass, then totals: intsim.app.costreport.cost_rows), "by_pass": [(pass, pJ)],
    "by_layer": [(layer, pJ)] (every pass), "energy_uj", "pj_per_mac", "table"};
    None without a record. ReportError for a malformed one."""
    try:
        rec = costreport.run_cost(res, table=table)
    except ValueError as e:
        raise ReportError(str(e)) from None
    if rec is None:
        return None
    try:
        rows = costreport.cost_rows(rec)
        by_pass = [(p, float(e["energy_pj"])) for p, e in rec["by_pass"].items()]
        by_layer = [(layer, float(sum(e["energy_pj"] for e in passes.values())))
                    for layer, passes in rec["by_layer"].items()]
    except (KeyError, TypeError, AttributeError) as e:
        raise ReportError(f"results.json 'cost' is not a cost record ({e!r})") from None
    return {"record": rec, "rows": rows, "by_pass": by_pass, "by_layer": by_layer,
            "energy_uj": costreport.energy_uj(rec), "pj_per_mac": costreport.pj_per_mac(rec),
            "table": costreport.table_name(rec.get("table") or {}),
            "source": str((rec.get("table") or {}).get("source", ""))}


# ---------------------------------------------------------------- sweeps

def sweep_view(sweep: SweepInput, table=None) -> dict:
    """A sweep's grid points and figures: {"header", "rows", "missing", "members"
    (the runs of each row: indices into sweep.runs), "point_labels" (each row's grid
    point as energy_points labels it), "series" {field: (axis,
    {line: (xs, means, stds)})}, "points" (energy_points), "front"}."""
    try:
        header, rows, missing = sweepreport.sweep_table(sweep.path, table)
        points = sweepreport.energy_points(sweep.path, table=table)
    except ValueError as e:
        raise ReportError(f"{sweep.path}: {e}") from None
    except (KeyError, TypeError) as e:
        raise ReportError(f"{sweep.path}: a run's results.json lacks {e!r}") from None
    # the rows are the grid points without the seed, in the order their first run
    # comes in sweep.json: the same grouping here gives each row its runs
    members: dict[tuple, list[int]] = {}
    for i, run in enumerate(sweep.runs):
        axes = sweepreport.axes_of(run.grid or "")
        members.setdefault(tuple((k, v) for k, v in axes.items() if k != "seed"), []).append(i)
    fits = len(members) == len(rows)
    member_rows = list(members.values()) if fits else [[] for _ in rows]
    # energy_points labels a grid point by its axes without the seed, as here
    point_labels = ([" ".join(f"{k}={v}" for k, v in key) or "all" for key in members]
                    if fits else [None for _ in rows])
    series = {}
    for fld in ("cnn_avg", "sat_pct"):
        try:
            series[fld] = sweepreport.sweep_series(sweep.path, fld)
        except (KeyError, TypeError, ValueError):
            series[fld] = (None, {})
    front = sweepreport.pareto_front([(p["energy_uj"], p["acc"]) for p in points])
    return {"header": header, "rows": rows, "missing": missing, "members": member_rows,
            "point_labels": point_labels, "series": series, "points": points, "front": front}
