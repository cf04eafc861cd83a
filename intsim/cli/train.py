"""``intsim train``: the options of one continual-learning run (``--scenario`` class, task
or domain), then :func:`intsim.run`.

With no options it runs the embedded default: HAPT-561 features, FCNet
(hidden = 561, 561), iCaRL, HDQT with 4-bit inputs and 8-bit tiled
accumulators, and the short schedule (:data:`intsim.app.config.SHORT_SCHEDULE`).

Settings come from defaults <- ``--config FILE.toml`` <- options
(:mod:`intsim.app.config`). The run folder (``--out``, default
``runs/<time>-<dataset>-<method>-<arith>``) is written by
:func:`intsim.app.driver.run` (docs/run-folder.md). ``--resume`` continues
from the last checkpoint and ends with exactly the results of an
uninterrupted run. Ctrl-C leaves the last checkpoint intact (exit code 130).
Bad input: one line on stderr, exit code 2, nothing written. ``--dry-run``
prints the config.toml the run would write and writes nothing.

Output: per task a line on stdout; on a terminal also a progress bar per
epoch (stderr) and the audit table after each task, which ``-v`` asks for
when stdout is not a terminal; ``-q`` prints only the run folder,
``--jsonl`` JSON lines. Settings that will have no effect (a milestone past
the last epoch, ``--memory`` for a method without exemplars) are warnings on
stderr, one line each; the run still runs.

Test hook: pass ``obj=RunHooks(...)`` to ``CliRunner.invoke`` (it becomes
``click``'s context object) to train on an in-memory dataset and/or to run a
callback after each task's checkpoint (raise from it to simulate a crash).
"""
from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import click

from intsim.app import runfolder as runio
from intsim.app.build import build_arith, ineffective_settings
from intsim.app.config import (NULLABLE, ConfigError, check_applicable, cli_settings,
                               load_toml, parse_arith_option, resolve)
from intsim.app.driver import RunHooks, RunInterrupted, config_text, default_out, run
from intsim.app.progress import Progress
from intsim.cli.errors import fail
from intsim.errors import TrainingDiverged
from intsim.kernels import threads as _threads


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
    click.option("--verbose", "-v", is_flag=True,
                 help="Every epoch and the audit table after each task also when stdout is "
                      "not a terminal (which otherwise gets one line per task)."),
    click.option("--jsonl", is_flag=True, help="Progress and results as JSON lines on stdout."),
    click.option("--dry-run", "dry_run", is_flag=True,
                 help="Print the config.toml the run would write and exit; nothing is "
                      "written or trained."),
]


def _with_options(f):
    for o in reversed(OPTIONS):
        f = o(f)
    return f


# ------------------------------------------------------------------ command

@click.command("train")
@_with_options
@click.pass_context
def train_cmd(ctx, config_file, arith_opts, datapath_opts, out, resume, quiet, verbose, jsonl,
              dry_run, **opts):
    """Train a continual-learning run and write it to a run folder (class-incremental
    unless --scenario says task or domain; docs/scenarios.md).

    With no options: HAPT-561 (embedded), FCNet, iCaRL, HDQT 4-bit inputs /
    8-bit accumulators (tile 32), the short schedule (about a minute on 2 cores).
    """
    hooks = ctx.obj if isinstance(ctx.obj, RunHooks) else None
    if quiet and jsonl:
        fail("--quiet and --jsonl exclude each other")
    if quiet and verbose:
        fail("--quiet and --verbose exclude each other")
    if dry_run and resume:
        fail("--dry-run and --resume exclude each other (a run's settings are its "
             "config.toml)")
    # only the options given: resolve() takes None as a value
    overrides = {k: opts[k] for k in _CONFIG_KEYS if opts[k] is not None}
    mode = "quiet" if quiet else ("jsonl" if jsonl else "bar")
    prog = Progress(mode, detail=verbose or sys.stdout.isatty())
    warnings: list[str] = []
    with _threads.ActiveRun() as active:
        try:
            if arith_opts:
                overrides["arith_options"] = [parse_arith_option(a) for a in arith_opts]
            for d in datapath_opts:
                k, v = parse_arith_option(d, "--datapath-opt")
                overrides["datapath." + k] = v
            if resume:
                if out is None:
                    fail("--resume needs --out RUN (the run folder to continue)")
                # the thread count may change: no result depends on it (docs/run-folder.md)
                given = [k for k in overrides if k != "threads"] + \
                    (["config"] if config_file else [])
                if given:
                    fail(f"cannot change settings when resuming (given: "
                         f"{', '.join('--' + g.replace('_', '-') for g in given)}); "
                         f"the run's config.toml is used (only --threads may change)")
                cfg_path = Path(out) / runio.CONFIG
                if not cfg_path.exists():
                    fail(f"cannot resume: {cfg_path} not found (not an intsim run folder)")
                now = {k: v for k, v in overrides.items() if k == "threads"}
                if not now and os.environ.get(_threads.ENV_VAR, "").strip():
                    try:
                        now["threads"] = _threads.default_threads()  # INTSIM_THREADS
                    except ValueError as e:
                        fail(str(e))
                cfg = resolve(cfg_path, now)
            else:
                others, load = active.others(), _threads.machine_load()
                cfg = resolve(config_file, overrides, other_runs=others, load=load)
                check_applicable(cfg, list(overrides))
                warnings = ineffective_settings(cfg, list(overrides))
                if not _threads_given(config_file, overrides):
                    _hold_threads_notice(prog, cfg, others, load)
            build_arith(cfg)                # option errors before anything else
            if dry_run:
                text = config_text(cfg)
        except ConfigError as e:
            fail(str(e))
        if dry_run:                         # nothing written: the settings the run would use
            for w in warnings:
                prog.warn(w)
            click.echo(text, nl=False)
            return
        if not resume:
            for w in warnings:
                prog.hold(w, warning=True)
        try:
            run_dir = Path(out) if out is not None else default_out(cfg)
            run(cfg, run_dir, resume=resume, hooks=hooks, progress=prog)
        except ConfigError as e:
            fail(str(e))
        except OSError as e:                # read-only or full file system, ...
            fail(_write_error(e, run_dir))
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


def _threads_given(config_file, overrides) -> bool:
    """The thread count is set: --threads, the config file or INTSIM_THREADS."""
    if "threads" in overrides or os.environ.get(_threads.ENV_VAR, "").strip():
        return True
    return config_file is not None and "threads" in load_toml(config_file)


def _hold_threads_notice(prog: Progress, cfg, others: int, load: float) -> None:
    """Say why a run that sets no thread count uses fewer than every core."""
    cores = _threads.available_cores()
    if cfg.threads >= cores or cfg.threads != _threads.auto_threads(others, load):
        return
    why = []
    if others and cfg.threads == max(1, cores // (others + 1)):
        why.append(f"{others} other intsim run(s) active")
    if cfg.threads == max(1, cores - round(load)):
        why.append(f"load average {load:.1f}")
    prog.hold(f"using {cfg.threads} of {cores} cores ({' and '.join(why)}; --threads N to "
              f"choose)")


def _write_error(e: OSError, run_dir: Path) -> str:
    """The one line for a run that could not write its folder: what happened, and
    the checkpoint only when there is one to resume from."""
    where = e.filename or run_dir
    whats = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
             errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device"}
    if hasattr(errno, "EDQUOT"):
        whats[errno.EDQUOT] = "disk quota exceeded"
    what = whats.get(e.errno, e.strerror or str(e))
    full = e.errno == errno.ENOSPC or e.errno == getattr(errno, "EDQUOT", None)
    try:
        done = runio.load_checkpoint(run_dir)[0] + 1 if runio.has_checkpoint(run_dir) else 0
    except (OSError, ValueError):
        done = 0
    if done:
        fix = "free space, then" if full else "make it writable, then"
        return (f"cannot write {where}: {what}; the checkpoint after task {done} in {run_dir} "
                f"is kept: {fix} continue with: intsim train --out {run_dir} --resume")
    return (f"cannot write {where}: {what} (no task had finished; "
            f"{'free space or ' if full else ''}choose another --out)")
