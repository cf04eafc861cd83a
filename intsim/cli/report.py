"""``intsim report RUN|SWEEP... [-o FILE.html]``: one self-contained HTML page.

Runs are read as ``intsim compare`` reads them (RUN/results.json; a missing
or unreadable run is one line on stderr, exit 2), sweep folders (with
sweep.json) with their finished runs; :mod:`intsim.app.report` writes the
page. docs/report.md describes it.
"""
from __future__ import annotations

import os

import click

from intsim.app import costreport, sweepreport
from intsim.app.report import ReportError, RunInput, load_sweep, write_report
from intsim.cli.errors import fail
from intsim.cli.runs import load_results, run_label, unique_names


@click.command("report")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(), metavar="RUN|SWEEP...")
@click.option("-o", "--output", "output", type=click.Path(), default="report.html",
              show_default=True, help="The HTML file to write (replaced if it exists).")
@click.option("--title", default=None, help="The page's title (default: the runs' names).")
@click.option("--label", "labels", multiple=True,
              help="Label per RUN named alone (repeat, in order; default: folder (method, "
                   "arithmetic)). A sweep's runs are labelled by their grid point.")
@click.option("--energy-table", "energy_table", type=click.Path(dir_okay=False), default=None,
              help="Price the runs' stored operation counts with this energy table (TOML).")
def report_cmd(inputs, output, title, labels, energy_table):
    """Write one self-contained HTML report of RUNs and SWEEP folders (no network
    fetches, charts as inline SVG): each run's settings (those that differ marked),
    accuracy per task, accuracy matrix and forgetting, audit heatmap and sortable
    table per task, cost by pass and layer; per sweep, its grid points (mean +- std
    over seeds), accuracy and saturation against the swept axis, and accuracy against
    energy with the Pareto front. Prints the path written."""
    try:
        table = costreport.load_energy_table(energy_table)
    except ValueError as e:
        fail(str(e))
    run_paths = [p for p in inputs if not sweepreport.is_sweep(p)]
    if labels and len(labels) != len(run_paths):
        fail(f"--label given {len(labels)} time(s) for {len(run_paths)} run(s) "
             "(sweeps take none)")
    out = os.path.abspath(output)
    if os.path.isdir(out):
        fail(f"-o {output} is a folder: give the HTML file to write")
    if not os.path.isdir(os.path.dirname(out)):
        fail(f"cannot write {output}: folder {os.path.dirname(output) or '.'} not found")
    loaded = [load_results(p) for p in run_paths]       # one line, exit 2, on bad input
    names = unique_names(run_paths) if run_paths else []
    runs = [RunInput(name=n, label=labels[i] if labels else run_label(p, res, n),
                     results=res, path=str(p))
            for i, (p, n, res) in enumerate(zip(run_paths, names, loaded))]
    sweeps = []
    try:
        for p in inputs:
            if sweepreport.is_sweep(p):
                s = load_sweep(p)
                if not s.runs:
                    fail(f"{p}: no finished run in this sweep yet")
                sweeps.append(s)
        write_report(out, runs, sweeps, title=title, table=table)
    except ReportError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write {output}: {e.strerror or e}")
    click.echo(out)
