"""``intsim sweep``: many runs from a SPEC file (:mod:`intsim.app.sweep`, docs/sweeps.md).

``intsim sweep SPEC [--overlay FILE] [--set KEY=VALUE] [--seeds N] [--out DIR]
[--executor local|dask] [--scheduler ADDR] [--workers N] [--dry-run]`` (also
spelled ``intsim sweep run SPEC ...``) runs every unfinished run of SPEC, with
the overlay's changes; ``--dry-run`` lists the runs and what a sweep would do
with each, running nothing. ``intsim sweep status DIR`` shows each run's
done/running/failed/diverged status. Bad input: one line on stderr, exit code 2.
Exit code 1 when runs failed (each is recorded in DIR/sweep.json with its error),
130 on Ctrl-C. A run that diverged (NaN/inf) is an outcome, not a failure: it
is recorded as "diverged" with its cause, not run again by later sweeps, and
does not by itself make the exit code 1.
"""
from __future__ import annotations

import os

import click

from intsim.app import sweep as sw
from intsim.app.config import ConfigError
from intsim.cli.errors import fail


class _SweepGroup(click.Group):
    """``intsim sweep SPEC ...`` is ``intsim sweep run SPEC ...``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run"] + list(args)
        return super().parse_args(ctx, args)


@click.group("sweep", cls=_SweepGroup)
def sweep_cmd():
    """Run a grid of runs from a SPEC file, or show a sweep's status.

    \b
    intsim sweep SPEC.toml [--overlay FILE] [--set KEY=VALUE] [--seeds N] [--out DIR]
                           [--executor local|dask] [--scheduler ADDR] [--workers N] [--dry-run]
    intsim sweep status DIR
    """


@sweep_cmd.command("run")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--overlay", "overlays", multiple=True, type=click.Path(dir_okay=False),
              metavar="FILE",
              help="An overlay file (TOML: `seeds = N`, a [set] table of settings) applied "
                   "to every run, e.g. benchmarks/specs/quick.toml. Repeatable; later wins.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Set a setting in every run, over the SPEC's and the overlays' values "
                   "(e.g. --set epochs=10). Repeatable.")
@click.option("--seeds", type=int, default=None, metavar="N",
              help="Only the runs of the SPEC's first N seeds (in the order they appear).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder of the run folders and sweep.json [default: the SPEC's `out`, "
                   "else sweeps/<SPEC name>]. With dask, every worker must reach it.")
@click.option("--executor", type=click.Choice(("local", "dask")), default="local",
              show_default=True, help="local: a process pool on this machine; dask: "
                                      "dask.distributed (pip install -e \".[dask]\").")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="dask: address of a running scheduler, e.g. tcp://host:8786 "
                   "[default: start a LocalCluster].")
@click.option("--workers", type=int, default=None,
              help="Worker processes (local, or a dask LocalCluster), one thread each "
                   "[default and maximum: the cores].")
@click.option("--dry-run", is_flag=True,
              help="List the runs (done / diverged / resumes / to run) and run nothing.")
def run_cmd(spec, overlays, sets, seeds, out, executor, scheduler, workers, dry_run):
    """Run every unfinished run of SPEC (complete runs are skipped, interrupted
    ones resume from their last checkpoint, runs that diverged are kept as they
    are: delete a run's folder to run it again). Exit code 1 when a run failed;
    runs that diverged are outcomes (exit code 0)."""
    try:
        s = sw.load_spec(spec, sw.make_overlay(overlays, sets, seeds))
        if not s.runs:
            fail(f"{spec}: the SPEC has no runs")
        out = s.out_dir(out)
        if os.path.exists(out) and not os.path.isdir(out):
            fail(f"--out {out} is a file, not a folder")
        if dry_run:
            _list_runs(s, out)
            return
        ex = sw.make_executor(executor, workers, scheduler)
    except ConfigError as e:
        fail(str(e))
    try:
        res = sw.run_sweep(s.runs, out, ex)
    except KeyboardInterrupt:
        click.echo(f"intsim: sweep interrupted; run the same command again to resume "
                   f"(intsim sweep status {out})", err=True)
        raise click.exceptions.Exit(130)
    except OSError as e:
        fail(f"cannot write {e.filename or out}: {e.strerror or e}")
    if any(e.get("status") == "failed" for e in res.values()):
        raise click.exceptions.Exit(1)


def _list_runs(s, out):
    """--dry-run: one line per run (state, key, grid point) and the counts."""
    planned = sw.plan(s.runs, out)
    n = {st: sum(1 for _, x in planned if x == st)
         for st in ("done", "diverged", "resumes", "to run")}
    ov = " (" + ", ".join(
        [f"overlay {', '.join(s.overlay.names)}"] * bool(s.overlay.names) +
        [f"set {' '.join(f'{k}={v}' for k, v in s.overlay.settings.items())}"]
        * bool(s.overlay.settings) +
        [f"first {s.overlay.seeds} seed(s)"] * (s.overlay.seeds is not None)) + ")" \
        if s.overlay else ""
    div = f"{n['diverged']} diverged, " if n["diverged"] else ""
    click.echo(f"{s.source}{ov}: {len(planned)} runs, {n['done']} done, {div}"
               f"{n['resumes']} to resume, {n['to run']} to run; results in {out}")
    for r, st in planned:
        click.echo(f"  {st:<8} {r.key}  {r.label}")


@sweep_cmd.command("status")
@click.argument("out", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--all", "show_all", is_flag=True, help="List the done runs too.")
def status_cmd(out, show_all):
    """Show the done/running/failed/diverged runs of the sweep folder DIR (a failed
    run with its error, a diverged one with its cause)."""
    if not os.path.isdir(out):
        fail(f"{out} is not a folder")
    if not os.path.exists(os.path.join(out, sw.SWEEP_FILE)):
        fail(f"{out} holds no {sw.SWEEP_FILE} (not a sweep folder)")
    try:
        entries = sw.status(out)
    except ConfigError as e:
        fail(str(e))
    c = sw.count(entries)
    click.echo(f"{out}: {len(entries)} runs: " +
               ", ".join(f"{c[k]} {k}" for k in sw.STATUSES if c.get(k) or k in
                         ("done", "running", "failed")))
    order = {k: i for i, k in enumerate(("failed", "diverged", "running", "interrupted",
                                         "pending", "done"))}
    for key, e in sorted(entries.items(), key=lambda kv: (order.get(kv[1]["status"], 9), kv[0])):
        st = e["status"]
        if st == "done" and not show_all:
            continue
        extra = ""
        if st in ("failed", "diverged"):
            extra = f": {e.get('error') or '?'}"
        elif st == "interrupted":
            extra = " (resumes from its checkpoint)" if e.get("checkpoint") else " (restarts)"
        elif st == "running" and e.get("started"):
            extra = f" (since {e['started']})"
        click.echo(f"  {st:<11} {key}{extra}")
