"""``intsim audit RUN``, ``intsim compare RUN...``, ``intsim plot RUN...``.

All three read RUN/results.json (and RUN/config.toml for labels) written by
``intsim train``; a missing or unreadable run is one line on stderr, exit 2.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import click

from intsim.cli.errors import fail

from intsim.app import runfolder as runio
from intsim.app.auditreport import format_audit, merge_audits



def load_results(run) -> dict:
    """Parsed RUN/results.json (RUN may also be the results.json path itself)."""
    p = Path(run)
    path = p if p.is_file() else p / runio.RESULTS
    if not p.exists():
        fail(f"run folder not found: {run}")
    try:
        res = runio.read_json(path)
    except FileNotFoundError:
        fail(f"{run} has no {runio.RESULTS} (not a finished or started intsim run)")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        fail(f"{path} is not valid JSON: {e}")
    if not isinstance(res, dict) or "tasks" not in res:
        fail(f"{path} is not an intsim results file (no 'tasks')")
    return res


def run_label(run, res: dict) -> str:
    c = res.get("config", {})
    name = Path(run).name if Path(run).is_dir() else Path(run).parent.name
    arith = c.get("arith", "?")
    if arith != "fp" and c.get("bits") is not None:
        acc = c.get("acc_bits")
        arith += f"{c['bits']}/{acc if acc is not None else 'inf'}"
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

@click.command("audit")
@click.argument("run", type=click.Path())
@click.option("--task", "task", type=int, default=None,
              help="Only this task (1-based); default: every task and the total.")
@click.option("--threshold", type=float, default=None,
              help="Flag layers with more than this % saturated tiles (default: the run's).")
def audit_cmd(run, task, threshold):
    """Reprint the overflow audit tables of RUN."""
    res = load_results(run)
    acc_bits = _acc_bits(res)
    thr = threshold if threshold is not None else res.get("config", {}).get("audit_threshold", 1.0)
    tasks = res["tasks"]
    if task is not None:
        if not 1 <= task <= len(tasks):
            fail(f"--task {task} out of range (the run has {len(tasks)} finished task(s))")
        click.echo(format_audit(tasks[task - 1].get("audit") or {}, acc_bits, thr,
                                title=f"audit after task {task}"))
        return
    for t in tasks:
        click.echo(format_audit(t.get("audit") or {}, acc_bits, thr,
                                title=f"audit after task {t['task'] + 1}"))
        click.echo()
    total = res.get("audit_total") or merge_audits(t.get("audit") or {} for t in tasks)
    click.echo(format_audit(total, acc_bits, thr, title="audit, all tasks"))


# ---------------------------------------------------------------- compare

def _fmt(v, signed=False):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def compare_rows(runs: list[tuple[str, dict]]) -> list[list[str]]:
    """Table rows (header first): run, metric, avg, last, forgetting, and deltas to run 1."""
    head = ["run", "metric", "tasks", "avg inc", "last", "forgetting", "d avg", "d last", "d forg"]
    rows = [head]
    base = runs[0][1].get("summary", {}) if runs else {}
    for label, res in runs:
        summ = res.get("summary", {})
        for metric in ("cnn", "nme"):
            s = summ.get(metric)
            if not s:
                continue
            b = base.get(metric) or {}
            vals = [s.get("avg"), s.get("last"), s.get("forgetting")]
            bvals = [b.get("avg"), b.get("last"), b.get("forgetting")]
            deltas = [None if (v is None or bv is None) else v - bv for v, bv in zip(vals, bvals)]
            rows.append([label, metric.upper(), str(len(res.get("tasks", [])))]
                        + [_fmt(v) for v in vals] + [_fmt(d, True) for d in deltas])
    return rows


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path())
def compare_cmd(runs):
    """Print runs side by side: average incremental, last, forgetting (%),
    and the difference to the first run."""
    loaded = [(run_label(r, res), res) for r in runs for res in [load_results(r)]]
    rows = compare_rows(loaded)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        click.echo("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if k == 0:
            click.echo("  ".join("-" * w for w in widths))
    incomplete = [lab for lab, res in loaded if not res.get("complete", True)]
    if incomplete:
        click.echo(f"note: unfinished run(s): {', '.join(incomplete)}")


# ------------------------------------------------------------------- plot

@click.command("plot")
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the PNGs (default: the first RUN).")
@click.option("--label", "labels", multiple=True, help="Legend label per RUN (repeat).")
def plot_cmd(runs, out_dir, labels):
    """Accuracy-per-task curves of all RUNs on one figure, and a saturation %
    heatmap (layer x task) per RUN, as PNG files."""
    from intsim.cli import plotting
    if labels and len(labels) != len(runs):
        fail(f"--label given {len(labels)} time(s) for {len(runs)} run(s)")
    loaded = [load_results(r) for r in runs]
    names = list(labels) if labels else [run_label(r, res) for r, res in zip(runs, loaded)]
    out = Path(out_dir) if out_dir else Path(runs[0])
    if out.is_file():
        out = out.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = [plotting.plot_accuracy(list(zip(names, loaded)), out / "accuracy.png")]
        for r, name, res in zip(runs, names, loaded):
            stem = Path(r).name if Path(r).is_dir() else Path(r).parent.name
            written.append(plotting.plot_saturation(res, out / f"saturation-{stem}.png",
                                                    title=f"saturation: {name}"))
    except plotting.PlotUnavailable as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write plots to {out}: {e}")
    for p in written:
        click.echo(str(p))
