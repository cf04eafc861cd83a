"""``intsim train``: the options of one class-incremental run, then :func:`intsim.run`.

With no options it runs the embedded default: HAPT-561 features, FCNet
(hidden = 561, 561), iCaRL, HDQT with 4-bit inputs and 8-bit tiled
accumulators, and the short schedule (:data:`intsim.app.config.SHORT_SCHEDULE`).

Settings come from defaults <- ``--config FILE.toml`` <- options
(:mod:`intsim.app.config`). The run folder (``--out``, default
``runs/<time>-<dataset>-<method>-<arith>``) is written by
:func:`intsim.app.driver.run` (docs/run-folder.md). ``--resume`` continues
from the last checkpoint and ends with exactly the results of an
uninterrupted run. Ctrl-C leaves the last checkpoint intact (exit code 130).
Bad input: one line on stderr, exit code 2, nothing written.

Test hook: pass ``obj=RunHooks(...)`` to ``CliRunner.invoke`` (it becomes
``click``'s context object) to train on an in-memory dataset and/or to run a
callback after each task's checkpoint (raise from it to simulate a crash).
"""
from __future__ import annotations

from pathlib import Path

import click

from intsim.app import runfolder as runio
from intsim.app.build import build_arith
from intsim.app.config import (NULLABLE, ConfigError, check_applicable, cli_settings,
                               parse_arith_option, resolve)
from intsim.app.driver import RunHooks, RunInterrupted, default_out, run
from intsim.app.progress import Progress
from intsim.cli.errors import fail
from intsim.errors import TrainingDiverged
from intsim.kernels.threads import ActiveRun, available_cores


# ------------------------------------------------------------------ options

def _tasks_in(run_dir: Path) -> int:
    """Tasks recorded in run_dir's results.json (0 when it has none)."""
    try:
        return len(runio.read_json(run_dir / runio.RESULTS).get("tasks", []))
    except (OSError, ValueError):
        return 0


def _setting_option(name: str, kind: str, choices, help_text: str):
    """The option of one RunConfig setting (intsim.app.config.cli_settings): a flag pair
    for a bool, a choice for a registry or a fixed list, int/float for a setting that
    cannot be none; anything else as text, which config resolution parses and checks
    (``none``, lists such as ``561,561``)."""
    flag = "--" + name.replace("_", "-")
    nullable = name in NULLABLE
    if kind == "bool":
        return click.option(f"{flag}/--no-{name.replace('_', '-')}", name, default=None,
                            help=help_text)
    kw = {}
    if choices is not None:
        kw["type"] = click.Choice(choices, case_sensitive=False)
    elif kind == "int":
        kw["type"] = int if not nullable else str
        kw["metavar"] = "INTEGER"
    elif kind == "float":
        kw["type"] = float if not nullable else str
        kw["metavar"] = "NUMBER"
    return click.option(flag, name, default=None, help=help_text, **kw)


#: the run settings that are options, generated from RunConfig's fields
SETTING_OPTIONS = [_setting_option(*s) for s in cli_settings()]
_CONFIG_KEYS = [s[0] for s in cli_settings()]

OPTIONS = [
    click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                 help="TOML file with settings (same keys as the options, '_' for '-'); "
                      "options given on the command line override it."),
    *SETTING_OPTIONS,
    click.option("--arith-opt", "arith_opts", multiple=True, metavar="KEY=VALUE",
                 help="Any other setting of the --arith preset (repeatable), e.g. "
                      "bwd_tile=32, ste_raw_clip=false, eval_per_sample=true."),
    click.option("--datapath-opt", "datapath_opts", multiple=True, metavar="PART.FIELD=VALUE",
                 help="Change one setting of the datapath (repeatable), e.g. "
                      "accumulator.bits=10, accumulator.order=kahan, gradients=mxfp4_e2m1."),
    click.option("--out", "out", type=click.Path(file_okay=False), default=None,
                 help="Run folder [default: runs/<time>-<dataset>-<method>-<arith>]."),
    click.option("--resume", is_flag=True, help="Continue the interrupted run in --out from "
                 "its last checkpoint (settings come from its config.toml)."),
    click.option("--quiet", "-q", is_flag=True, help="No progress; print only the run folder."),
    click.option("--jsonl", is_flag=True, help="Progress and results as JSON lines on stdout."),
]


def _with_options(f):
    for o in reversed(OPTIONS):
        f = o(f)
    return f


# ------------------------------------------------------------------ command

@click.command("train")
@_with_options
@click.pass_context
def train_cmd(ctx, config_file, arith_opts, datapath_opts, out, resume, quiet, jsonl, **opts):
    """Train a class-incremental run and write it to a run folder.

    With no options: HAPT-561 (embedded), FCNet, iCaRL, HDQT 4-bit inputs /
    8-bit accumulators (tile 32), the short schedule (about a minute on 2 cores).
    """
    hooks = ctx.obj if isinstance(ctx.obj, RunHooks) else None
    if quiet and jsonl:
        fail("--quiet and --jsonl exclude each other")
    overrides = {k: opts[k] for k in _CONFIG_KEYS}
    others = 0
    with ActiveRun() as active:
        try:
            if arith_opts:
                overrides["arith_options"] = [parse_arith_option(a) for a in arith_opts]
            for d in datapath_opts:
                k, v = parse_arith_option(d, "--datapath-opt")
                overrides["datapath." + k] = v
            if resume:
                if out is None:
                    fail("--resume needs --out RUN (the run folder to continue)")
                given = [k for k, v in overrides.items() if v is not None] + (
                    ["config"] if config_file else [])
                if given:
                    fail(f"cannot change settings when resuming (given: "
                         f"{', '.join('--' + g.replace('_', '-') for g in given)}); "
                         f"the run's config.toml is used")
                cfg_path = Path(out) / runio.CONFIG
                if not cfg_path.exists():
                    fail(f"cannot resume: {cfg_path} not found (not an intsim run folder)")
                cfg = resolve(cfg_path)
            else:
                others = active.others()
                cfg = resolve(config_file, overrides, other_runs=others)
                check_applicable(cfg, [k for k, v in overrides.items() if v is not None])
            build_arith(cfg)                # option errors before anything else
        except ConfigError as e:
            fail(str(e))

        mode = "quiet" if quiet else ("jsonl" if jsonl else "bar")
        prog = Progress(mode)
        if others and cfg.threads == max(1, available_cores() // (others + 1)) \
                < available_cores():
            prog.message(f"{others} other intsim run(s) active: using {cfg.threads} of "
                         f"{available_cores()} cores (--threads N to choose)")
        try:
            run_dir = Path(out) if out is not None else default_out(cfg)
            run(cfg, run_dir, resume=resume, hooks=hooks, progress=prog)
        except ConfigError as e:
            fail(str(e))
        except OSError as e:                # read-only or full file system, ...
            where = e.filename or run_dir
            fail(f"cannot write {where}: {e.strerror or e} (the last checkpoint in {run_dir} "
                 f"is kept; free space or choose another --out, then --resume)")
        except TrainingDiverged as e:
            if prog.mode == "bar" and prog.tty:
                click.echo(err=True)
            done = _tasks_in(run_dir)
            tasks = "task 1 is" if done == 1 else f"tasks 1-{done} are"
            kept = (f"{tasks} in {run_dir / runio.RESULTS} (complete: false)" if done
                    else "no task had finished")
            click.echo(f"intsim: {e}; {kept}", err=True)
            raise click.exceptions.Exit(1)
        except RunInterrupted as e:
            if prog.mode == "bar" and prog.tty:
                click.echo(err=True)        # end the half-drawn progress bar line
            click.echo(f"intsim: {e}; continue with: intsim train --out {e.run_dir} --resume",
                       err=True)
            raise click.exceptions.Exit(130)
        if quiet:
            click.echo(str(run_dir))
