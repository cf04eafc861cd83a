"""``intsim audit RUN``, ``intsim compare RUN...``, ``intsim plot RUN...``.

All three read RUN/results.json written by ``intsim train`` (or a benchmark
job); a missing or unreadable run is one line on stderr, exit 2. Runs are
named by their folder (with parent folders when two share a name).
``audit --explain`` prints the legend of the table's columns; ``audit
--cost`` prints the run's energy per layer and pass instead of the overflow
audit; ``audit --csv`` the audit rows as CSV; ``compare`` first lists every setting that differs between the runs,
and adds energy columns when runs have a cost record (``--energy-table
FILE`` prices the stored counts with another table, in both); ``plot``
writes its PNGs to ``--out`` (default: the current folder).
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import click

from intsim.app import costreport
from intsim.app import runfolder as runio
from intsim.app import sweepreport
from intsim.app.auditreport import audit_rows, format_audit, merge_audits
from intsim.app.jobs import run_summary
from intsim.app.report.model import MISSING, run_settings, setting_text
from intsim.cli import plotting
from intsim.cli.errors import fail
from intsim.datapath import PRESETS as ARITHS


def load_results(run) -> dict:
    """Parsed RUN/results.json (RUN may also be the results.json path itself)."""
    p = Path(run)
    path = p if p.is_file() else p / runio.RESULTS
    if not p.exists():
        fail(f"run folder not found: {run}")
    if p.is_file() and p.suffix.lower() != ".json":
        fail(f"{run} is not a run: give a run folder (or its {runio.RESULTS})")
    try:
        res = runio.read_json(path)
    except FileNotFoundError:
        fail(f"{run} has no {runio.RESULTS} (not a finished or started intsim run)")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        fail(f"{path} is not valid JSON: {e}")
    if not isinstance(res, dict) or "tasks" not in res:
        fail(f"{path} is not an intsim results file (no 'tasks')")
    return res


def run_name(run) -> str:
    """The folder name of RUN (RUN may be the folder, '.', or its results.json)."""
    p = Path(run).resolve()
    return p.parent.name if p.is_file() else p.name


def _tail(path: Path, depth: int) -> str:
    """The last ``depth`` components of an absolute path, e.g. ``a/run``."""
    parts = path.relative_to(path.anchor).parts
    return "/".join(parts[-depth:]) or str(path)


def unique_names(runs) -> list[str]:
    """Short names that tell RUNs apart: the folder name, with as many parent
    folders as it takes when two folders share a name, and ``#k`` for a RUN
    given twice."""
    paths = [Path(r).resolve() for r in runs]
    paths = [p.parent if p.is_file() else p for p in paths]
    names = [_tail(p, 1) for p in paths]
    for depth in range(2, max(len(p.parts) for p in paths) + 1):
        clash = {n for n in names
                 if len({p for p, m in zip(paths, names) if m == n}) > 1}
        if not clash:
            break
        names = [_tail(p, depth) if n in clash else n for n, p in zip(names, paths)]
    count: dict[str, int] = {}
    out = []
    for n in names:
        count[n] = count.get(n, 0) + 1
        out.append(n if names.count(n) == 1 else f"{n}#{count[n]}")
    return out


def run_label(run, res: dict, name: str | None = None) -> str:
    """``name (method, arith)``, e.g. ``a (icarl, hdqt4/8)`` or ``b (icarl,
    hdqt4/8 saturate)`` (acc_mode when not clamp); name defaults to the folder
    name of RUN."""
    c = res.get("config") or {}
    name = name if name is not None else run_name(run)
    arith = c.get("arith", "?")
    # bits/acc_bits only for the arithmetics that take them (not fp, fp8, fp134)
    takes_bits = "bits" in ARITHS[arith].config_fields if arith in ARITHS else arith != "fp"
    if takes_bits and c.get("bits") is not None:
        acc = c.get("acc_bits")
        arith += f"{c['bits']}/{acc if acc is not None else 'inf'}"
        if c.get("acc_mode") not in (None, "clamp"):
            arith += f" {c['acc_mode']}"
    return f"{name} ({c.get('method', '?')}, {arith})"


def _acc_bits(res: dict):
    """Effective accumulator bits of a run (None = unlimited), for the audit range."""
    c = res.get("config", {})
    if "acc_limit" in res.get("run", {}):
        return res["run"]["acc_limit"]
    if c.get("arith") == "fp" or c.get("acc_mode") == "wide":
        return None
    return c.get("acc_bits")


# ------------------------------------------------------------------ audit

AUDIT_LEGEND = [
    ("layer", "the layer's name in the model (backbone.0, stage2.1.conv1, "
              "classifier, ...); only quantized layers are listed"),
    ("pass", "fwd (forward), bwd-in (backward, input gradient), "
             "bwd-w (backward, weight gradient)"),
    ("tiles", "accumulator results produced (one per output element and reduction tile)"),
    ("saturated", "results beyond the accumulator's range (clamped, saturated or "
                  "wrapped, by the run's acc_mode)"),
    ("sat %", "saturated as a % of tiles"),
    ("max|psum|", "max_abs: the largest exact |tile sum| seen, in integer units"),
    ("/range", "max|psum| over the accumulator's largest magnitude 2^(acc_bits-1)-1; "
               "above 1 means overflow happened ('-': no limit)"),
    ("levels", "the mean fraction of the quantizer's levels that occurred "
               "('-': not recorded, e.g. benchmark runs)"),
    ("values", "float datapaths (fp8, fp134): the values the pass's quantizers rounded "
               "(this table replaces tiles/max|psum|/range/levels)"),
    ("flushed", "float datapaths: nonzero values rounded to zero (underflow)"),
    ("flush %", "flushed as a % of values"),
    ("max|x/s|", "float datapaths: the largest |value / scale| seen, in format units "
                 "(compare with the format's max: 448 for E4M3)"),
    ("<<", "flagged: more than the threshold % of the layer's results saturated "
           "(--threshold; default: the run's audit_threshold)"),
]


def format_legend() -> str:
    """The column legend of the audit table, one column a line."""
    return costreport.format_legend("audit", AUDIT_LEGEND)


def _check_threshold(ctx, param, value):
    """--threshold must be a finite percentage >= 0."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise click.BadParameter(f"{value:g} is not a percentage >= 0", ctx, param)
    return value


def _energy_table(path):
    """The EnergyTable of --energy-table FILE (None: not given); a bad file is one line,
    exit 2."""
    try:
        return costreport.load_energy_table(path)
    except ValueError as e:
        fail(str(e))


@click.command("audit")
@click.argument("run", type=click.Path(), required=False)
@click.option("--task", "task", type=int, default=None,
              help="Only this task (1-based); default: every task and the total.")
@click.option("--threshold", type=float, default=None, callback=_check_threshold,
              help="Flag layers with more than this % saturated tiles (>= 0; "
                   "default: the run's).")
@click.option("--cost", is_flag=True,
              help="Print the run's energy by layer and pass (its results.json cost) "
                   "instead of the overflow audit.")
@click.option("--energy-table", "energy_table", type=click.Path(dir_okay=False), default=None,
              help="Price the stored operation counts with this energy table (TOML, the "
                   "schema of intsim/cost/energy_45nm.toml); implies --cost.")
@click.option("--explain", is_flag=True,
              help="Print what each column of the table means (RUN optional).")
@click.option("--csv", "as_csv", is_flag=True,
              help="The audit rows as CSV on stdout: task (1-based, 'all' for the total), "
                   "layer, pass, tiles, saturated, sat_pct, max_abs, levels_used, and the "
                   "float datapaths' columns when the run has them.")
def audit_cmd(run, task, threshold, cost, energy_table, explain, as_csv):
    """Reprint the overflow audit tables of RUN; --cost: its energy by layer and pass;
    --explain: what the columns mean; --csv: the rows as CSV."""
    cost = cost or energy_table is not None
    legend = costreport.format_cost_legend if cost else format_legend
    if as_csv and (cost or explain):
        fail(f"--csv and {'--cost' if cost else '--explain'} exclude each other")
    if run is None:
        if not explain:
            fail("missing argument RUN (see 'intsim audit --help')")
        click.echo(legend())
        return
    res = load_results(run)
    tasks = res["tasks"]
    if task is not None and not 1 <= task <= len(tasks):
        fail(f"--task {task} out of range (the run has {len(tasks)} finished task(s))")
    if as_csv:
        _print_audit_csv(res, task)
        return
    if cost:
        _print_cost(run, res, task, _energy_table(energy_table))
    else:
        _print_audit(res, task, threshold)
    if explain:
        click.echo()
        click.echo(legend())


def _print_audit(res, task, threshold):
    acc_bits = _acc_bits(res)
    thr = threshold
    if thr is None:
        thr = (res.get("config") or {}).get("audit_threshold", 1.0)
    tasks = res["tasks"]
    if task is not None:
        click.echo(format_audit(tasks[task - 1].get("audit") or {}, acc_bits, thr,
                                title=f"audit after task {task}"))
    else:
        for t in tasks:
            click.echo(format_audit(t.get("audit") or {}, acc_bits, thr,
                                    title=f"audit after task {t['task'] + 1}"))
            click.echo()
        total = res.get("audit_total") or merge_audits(t.get("audit") or {} for t in tasks)
        click.echo(format_audit(total, acc_bits, thr, title="audit, all tasks"))


#: the columns of ``intsim audit --csv``; the float datapaths' only when a row has them
CSV_COLUMNS = ("task", "layer", "pass", "tiles", "saturated", "sat_pct", "max_abs",
               "levels_used")
CSV_FLOAT_COLUMNS = ("flushed", "flushed_pct", "acc_adds", "swamped", "swamped_pct", "absorbed",
                     "acc_overflows", "acc_tiles", "acc_saturated", "acc_sat_pct", "acc_max_abs")


def _print_audit_csv(res, task):
    """The audit rows of every task (or ``task``, 1-based) and, for every task, the
    total ('all') as CSV on stdout; empty cells for values not recorded."""
    tasks = res["tasks"]
    parts = [(task, tasks[task - 1].get("audit") or {})] if task is not None else \
        [(t["task"] + 1, t.get("audit") or {}) for t in tasks] + \
        [("all", res.get("audit_total") or merge_audits(t.get("audit") or {} for t in tasks))]
    rows = [{"task": k, **r} for k, aud in parts for r in audit_rows(aud, None)]
    cols = list(CSV_COLUMNS) + [c for c in CSV_FLOAT_COLUMNS if any(c in r for r in rows)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r[c] for c in cols])
    click.echo(buf.getvalue(), nl=False)


def _print_cost(run, res, task, table):
    try:
        record = costreport.run_cost(res, None if task is None else task - 1, table)
    except ValueError as e:
        fail(f"{run}: {e}")
    if record is None:
        where = "" if task is None else f" for task {task}"
        fail(f"{run} has no cost record{where} (results.json 'cost')")
    title = f"cost of task {task}" if task is not None else "cost, all tasks"
    if table is not None:
        title += f" (priced with --energy-table {table.path})"
    click.echo(costreport.format_cost(record, title=title))


# ---------------------------------------------------------------- compare

def _fmt(v, signed=False):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def compare_rows(runs: list[tuple[str, dict]], costs: list | None = None) -> list[list[str]]:
    """Table rows (header first): run, metric, avg, last, forgetting, the forgetting and
    backward transfer by task (summary ``by_task``; '-' without), and deltas to run 1;
    with ``costs`` (a cost record or None per run, one of them not None) also the run's
    energy (uJ) and energy per MAC (pJ), '-' for runs without a record."""
    head = ["run", "metric", "tasks", "avg inc", "last", "forgetting", "task forg", "BWT",
            "d avg", "d last", "d forg"]
    energy = costs is not None and any(c is not None for c in costs)
    if energy:
        head += ["energy uJ", "pJ/MAC"]
    rows = [head]
    base = runs[0][1].get("summary", {}) if runs else {}
    for k, (label, res) in enumerate(runs):
        summ = res.get("summary", {})
        for metric in ("cnn", "nme"):
            s = summ.get(metric)
            if not s:
                continue
            b = base.get(metric) or {}
            vals = [s.get("avg"), s.get("last"), s.get("forgetting")]
            bvals = [b.get("avg"), b.get("last"), b.get("forgetting")]
            deltas = [None if (v is None or bv is None) else v - bv for v, bv in zip(vals, bvals)]
            by_task = s.get("by_task") or {}
            rows.append([label, metric.upper(), str(len(res.get("tasks", [])))]
                        + [_fmt(v) for v in vals]
                        + [_fmt(by_task.get("forgetting")), _fmt(by_task.get("bwt"))]
                        + [_fmt(d, True) for d in deltas]
                        + (costreport.energy_cells(costs[k]) if energy else []))
    return rows


def differing_settings(runs: list[tuple[str, dict]]) -> list[str]:
    """One line per setting that is not the same in every run, in config order:
    ``differs: epochs: a=15 b=100`` (``-``: the run has no such setting)."""
    flats = [(name, run_settings(res)) for name, res in runs]
    keys: list[str] = []
    for _, flat in flats:
        keys += [k for k in flat if k not in keys]
    lines = []
    for k in keys:
        vals = [flat.get(k, MISSING) for _, flat in flats]
        if any(v != vals[0] for v in vals[1:]):
            lines.append(f"differs: {k}: " + " ".join(
                f"{name}={setting_text(v)}" for (name, _), v in zip(flats, vals)))
    return lines


def _print_table(rows, left: int = 2) -> None:
    """Rows (the first is the header) in aligned columns; the first ``left`` left-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        click.echo("  ".join(c.ljust(w) if i < left else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if k == 0:
            click.echo("  ".join("-" * w for w in widths))


def _run_cost(run, res, table):
    """The run's cost record (None without one), priced with ``table`` when given."""
    try:
        return costreport.run_cost(res, table=table)
    except ValueError as e:
        fail(f"{run}: {e}")


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--energy-table", "energy_table", type=click.Path(dir_okay=False), default=None,
              help="Price the runs' stored operation counts with this energy table (TOML, "
                   "the schema of intsim/cost/energy_45nm.toml).")
def compare_cmd(runs, energy_table):
    """Print runs side by side: average incremental, last, forgetting (%), the
    forgetting and backward transfer by task (task forg, BWT; percentage points),
    and the difference to the first run; when runs have a cost record, their
    energy (uJ) and energy per MAC (pJ). Above the table: every setting
    that is not the same in all runs. A sweep folder (with sweep.json), given
    alone: one row per grid point, mean +- std over its seeds."""
    table = _energy_table(energy_table)
    _sweep_alone(runs, "compare")
    if len(runs) == 1 and sweepreport.is_sweep(runs[0]):
        try:
            header, rows, missing = sweepreport.sweep_table(runs[0], table)
        except ValueError as e:
            fail(f"{runs[0]}: {e}")
        if not rows:
            fail(f"{runs[0]}: no finished run in this sweep yet")
        _print_table([header] + rows)
        if missing:
            click.echo(f"note: {missing} run(s) of the sweep not finished (intsim sweep status)")
        if table is not None and "energy uJ" not in header:
            click.echo("note: no run of the sweep has a cost record; --energy-table not used")
        return
    names = unique_names(runs)
    loaded = [(name, r, load_results(r)) for name, r in zip(names, runs)]
    if len(loaded) > 1:
        diffs = differing_settings([(name, res) for name, _, res in loaded])
        for line in diffs or ["same settings in every run"]:
            click.echo(line)
        click.echo()
    labelled = [(run_label(r, res, name), res) for name, r, res in loaded]
    costs = [_run_cost(r, res, table) for _, r, res in loaded]
    _print_table(compare_rows(labelled, costs))
    incomplete = [lab for lab, res in labelled if not res.get("complete", True)]
    if incomplete:
        click.echo(f"note: unfinished run(s): {', '.join(incomplete)}")
    if any(c is not None for c in costs):
        names = sorted({costreport.table_name(c["table"]) for c in costs if c is not None})
        click.echo(f"energy table: {', '.join(names)}"
                   + ("; '-': no cost record" if None in costs else ""))
        if len(names) > 1:
            click.echo("note: the runs were priced with different energy tables; "
                       "--energy-table FILE prices them all with one")
    elif table is not None:
        click.echo("note: no run has a cost record; --energy-table not used")


def _sweep_alone(runs, command: str) -> None:
    """A sweep folder is reported on its own: one line naming it when RUNs mix it
    with other folders."""
    if len(runs) > 1:
        for r in runs:
            if sweepreport.is_sweep(r):
                fail(f"{r} is a sweep folder: {command} it alone (intsim {command} {r}), "
                     f"or name the run folders inside it")


# ------------------------------------------------------------------- plot

def _figures(out: Path, make):
    """Run ``make()`` (-> (paths written, extra)), turning a missing matplotlib or an
    unwritable folder into one error line; print the paths; return ``extra``."""
    try:
        written, extra = make()
    except plotting.PlotUnavailable as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write plots to {out}: {e}")
    for p in written:
        click.echo(str(p))
    return extra


def _labelled_runs(runs, labels):
    """(results.json dicts, unique names, legend labels) of the RUN folders; --label
    given must name each run."""
    if labels and len(labels) != len(runs):
        fail(f"--label given {len(labels)} time(s) for {len(runs)} run(s)")
    loaded = [load_results(r) for r in runs]
    names = unique_names(runs)
    return loaded, names, (list(labels) if labels else
                           [run_label(r, res, n) for r, n, res in zip(runs, names, loaded)])


def _plot_pareto(runs, out: Path, labels, table) -> None:
    """pareto.png of a sweep (its grid points) or of several runs (one point each)."""
    if len(runs) == 1 and sweepreport.is_sweep(runs[0]):
        points = sweepreport.energy_points(runs[0], table=table)
        title = f"{runs[0]}: CNN avg inc % against energy"
    else:
        loaded, names, labels = _labelled_runs(runs, labels)
        points, without = [], []
        for label, res in zip(labels, loaded):
            rec = costreport.run_cost(res, table=table)
            acc = run_summary(res).get("cnn_avg")
            if rec is None or acc is None:
                without.append(label)
            else:
                points.append({"label": label, "energy_uj": costreport.energy_uj(rec),
                               "energy_std": 0.0, "acc": acc, "acc_std": 0.0, "seeds": 1})
        title = "CNN avg inc % against energy"
        if without and points:
            click.echo(f"note: not plotted (no cost record or accuracy): {', '.join(without)}",
                       err=True)
    if not points:
        fail("no run with a cost record and an accuracy to plot (results.json 'cost')")
    front = sweepreport.pareto_front([(p["energy_uj"], p["acc"]) for p in points])

    def make():
        out.mkdir(parents=True, exist_ok=True)
        return [plotting.plot_pareto(points, front, out / "pareto.png", "CNN avg inc %",
                                     title)], None
    _figures(out, make)
    click.echo("Pareto front (lowest energy first): "
               + "; ".join(f"{points[i]['label']} ({costreport.fmt_energy(points[i]['energy_uj'])} "
                           f"uJ, {points[i]['acc']:.2f} %)" for i in front))


def _plot_sweep(folder, out: Path) -> None:
    def make():
        written = []
        out.mkdir(parents=True, exist_ok=True)
        for field, title in (("cnn_avg", "CNN avg inc %"), ("sat_pct", "saturated %")):
            x, series = sweepreport.sweep_series(folder, field)
            if x is None:
                fail(f"{folder}: no numeric grid axis with several values to plot against "
                     f"(use intsim compare {folder} for the table)")
            if any(m is not None for xs, ms, _ in series.values() for m in ms):
                written.append(plotting.plot_sweep(x, series, out / f"sweep-{field}.png", title))
        return written, None
    _figures(out, make)



def _write_plots(out: Path, names, labels, loaded) -> tuple[list[Path], list[str]]:
    """Write accuracy.png and a saturation-<name>.png per run with quantized
    layers into ``out``, the heatmaps on one colour scale; returns (paths
    written, names of the runs without a heatmap)."""
    out.mkdir(parents=True, exist_ok=True)
    written = [plotting.plot_accuracy(list(zip(labels, loaded)), out / "accuracy.png")]
    skipped = [name for name, res in zip(names, loaded) if not plotting.has_saturation_data(res)]
    vmax = max((plotting.saturation_max(res) for name, res in zip(names, loaded)
                if name not in skipped), default=None)
    for name, label, res in zip(names, labels, loaded):
        if name not in skipped:
            stem = name.replace("/", "_")
            written.append(plotting.plot_saturation(res, out / f"saturation-{stem}.png",
                                                    title=f"saturated tiles (%): {label}",
                                                    vmax=vmax))
    return written, skipped


@click.command("plot")
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".",
              help="Folder for the PNGs, made if missing (default: the current folder).")
@click.option("--label", "labels", multiple=True, help="Legend label per RUN (repeat).")
@click.option("--energy", is_flag=True, help="Accuracy (CNN average incremental) against "
              "energy with the Pareto front (pareto.png): one point per grid point of a "
              "sweep, or per RUN.")
@click.option("--energy-table", "energy_table", type=click.Path(dir_okay=False), default=None,
              help="Price the stored operation counts with this energy table (TOML).")
def plot_cmd(runs, out_dir, labels, energy, energy_table):
    """Accuracy-per-task curves of all RUNs on one figure (accuracy.png), and a
    saturation % heatmap (layer x task) per RUN with quantized layers
    (saturation-<RUN>.png), written to --out; prints the paths written.
    A sweep folder: accuracy against its swept numeric axis (sweep-<field>.png).
    --energy: accuracy against energy and the Pareto front (pareto.png)."""
    _sweep_alone(runs, "plot")
    if energy or energy_table is not None:
        _plot_pareto(runs, Path(out_dir), labels, _energy_table(energy_table))
        return
    if len(runs) == 1 and sweepreport.is_sweep(runs[0]):
        _plot_sweep(runs[0], Path(out_dir))
        return
    loaded, names, labels = _labelled_runs(runs, labels)
    out = Path(out_dir)
    skipped = _figures(out, lambda: _write_plots(out, names, labels, loaded))
    if skipped:
        click.echo(f"note: no saturation figure for {', '.join(skipped)}: "
                   "no quantized layers in the audit (FP arithmetic)", err=True)
