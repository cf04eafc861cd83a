"""``intsim sweep``: many runs from a SPEC file (:mod:`intsim.app.sweep`, docs/sweeps.md).

``intsim sweep SPEC [--out DIR] [--executor local|dask] [--scheduler ADDR] [--workers N]``
(also spelled ``intsim sweep run SPEC ...``) runs every unfinished run of SPEC;
``intsim sweep status DIR`` shows each run's done/running/failed status.
Bad input: one line on stderr, exit code 2. Exit code 1 when runs failed
(each is recorded in DIR/sweep.json with its error), 130 on Ctrl-C.
"""
from __future__ import annotations

import os

import click

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
    intsim sweep SPEC.toml [--out DIR] [--executor local|dask] [--scheduler ADDR] [--workers N]
    intsim sweep status DIR
    """


@sweep_cmd.command("run")
@click.argument("spec", type=click.Path(dir_okay=False))
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
def run_cmd(spec, out, executor, scheduler, workers):
    """Run every unfinished run of SPEC (complete runs are skipped, interrupted
    ones resume from their last checkpoint)."""
    from intsim.app import sweep as sw
    try:
        s = sw.load_spec(spec)
        if not s.runs:
            fail(f"{spec}: the SPEC has no runs")
        if out is None:
            out = s.out or os.path.join(
                "sweeps", os.path.splitext(os.path.basename(spec))[0])
        if os.path.exists(out) and not os.path.isdir(out):
            fail(f"--out {out} is a file, not a folder")
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


@sweep_cmd.command("status")
@click.argument("out", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--all", "show_all", is_flag=True, help="List the done runs too.")
def status_cmd(out, show_all):
    """Show the done/running/failed runs of the sweep folder DIR."""
    from intsim.app import sweep as sw
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
    order = {k: i for i, k in enumerate(("failed", "running", "interrupted", "pending", "done"))}
    for key, e in sorted(entries.items(), key=lambda kv: (order.get(kv[1]["status"], 9), kv[0])):
        st = e["status"]
        if st == "done" and not show_all:
            continue
        extra = ""
        if st == "failed":
            extra = f": {e.get('error') or '?'}"
        elif st == "interrupted":
            extra = " (resumes from its checkpoint)" if e.get("checkpoint") else " (restarts)"
        elif st == "running" and e.get("started"):
            extra = f" (since {e['started']})"
        click.echo(f"  {st:<11} {key}{extra}")
