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
from intsim.app.config import (ACC_MODES, ARITHS, DATASETS, METHODS, MODELS, ROUNDINGS,
                               SCHEDULES, ConfigError, check_applicable, parse_arith_option,
                               resolve)
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


def _opt(*a, **k):
    return click.option(*a, default=None, **k)


OPTIONS = [
    click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                 help="TOML file with settings (same keys as the options, '_' for '-'); "
                      "options given on the command line override it."),
    _opt("--dataset", type=click.Choice(DATASETS, case_sensitive=False),
         help="Dataset [default: hapt, the embedded HAPT-561 features]."),
    _opt("--data", type=click.Path(), help="Path of the official download (folder or archive), "
         "or of the authors' feature file (dsads.csv/.mat, pamap.mat/.csv, hapt_combined.csv) "
         "or a folder holding it."),
    # the choices are intsim.data.common.SPLITS / SCALES (tests/test_data_authors.py checks)
    _opt("--split", type=click.Choice(("paper", "sorted", "seeded")),
         help="HAR subject split: paper (the released code's random.sample, seeded with "
              "--seed), sorted (the smallest ids train) or seeded [default: paper with "
              "--schedule paper, else sorted]."),
    _opt("--scale", type=click.Choice(("none", "train-minmax")),
         help="HAR features: train-minmax (each feature to [-1, 1] with the training "
              "subjects' min/max) or none [default: none for the authors' files with "
              "--schedule paper, else train-minmax]."),
    _opt("--model", type=click.Choice(MODELS), help="Network [default: auto: fcnet for "
         "HAR/MNIST, resnet32 for CIFAR]."),
    _opt("--hidden", help="FCNet hidden widths, e.g. '561,561' [default: two layers as wide as the input, the paper's net]."),
    _opt("--conv-bias/--no-conv-bias", help="ResNet: bias on the 3x3 convs [default: the "
         "released code's: on for HDQT/LUQ, off for FP]."),
    _opt("--conv-init", type=click.Choice(("kaiming_uniform", "he_normal")),
         help="ResNet: init of the 3x3 convs [default: kaiming_uniform for HDQT/LUQ, "
              "he_normal for FP]."),
    _opt("--method", type=click.Choice(METHODS), help="CIL method [default: icarl]."),
    _opt("--arith", type=click.Choice(ARITHS), help="Arithmetic [default: hdqt]."),
    _opt("--bits", type=int, help="Matmul operand bits (2..8) [default: 4]."),
    _opt("--acc-bits", help="Accumulator bits, or 'none' for no limit [default: 8]."),
    _opt("--tile", help="Accumulator tile along the reduction, or 'none' for one tile "
         "[default: 32]."),
    _opt("--acc-mode", type=click.Choice(ACC_MODES), help="Accumulator overflow mode "
         "[default: clamp]."),
    _opt("--hadamard/--no-hadamard", help="HDQT: Hadamard transforms in the backward pass "
         "[default: on]."),
    _opt("--requantize/--no-requantize", help="HDQT: re-quantize the Hadamard-transformed "
         "operands [default: on]."),
    _opt("--grad-rounding", type=click.Choice(ROUNDINGS), help="HDQT: rounding of the error "
         "tensors [default: stochastic]."),
    _opt("--act-rounding", type=click.Choice(ROUNDINGS), help="HDQT: rounding of H_b x "
         "[default: stochastic]."),
    _opt("--weight-rounding", type=click.Choice(ROUNDINGS), help="HDQT: rounding of H_o W "
         "[default: nearest]."),
    _opt("--fwd-clip", type=float, help="HDQT: max-clip factor of the forward quantizers "
         "[default: 0.975]."),
    click.option("--arith-opt", "arith_opts", multiple=True, metavar="KEY=VALUE",
                 help="Any other field of the arithmetic dataclass (repeatable), e.g. "
                      "bwd_tile=32, ste_raw_clip=false, eval_per_sample=true."),
    _opt("--schedule", type=click.Choice(SCHEDULES), help="short (quick, the default) or "
         "paper (the paper's epochs/LR/milestones); explicit options override it."),
    _opt("--epochs", type=int, help="Epochs per task."),
    _opt("--min-steps", type=int, help="Train each stage for at least this many SGD steps "
         "(more epochs on small tasks) [default: 100 in the short schedule without --epochs, "
         "else 0]."),
    _opt("--lr", type=float, help="SGD learning rate."),
    _opt("--milestones", help="LR x0.1 at these epochs, e.g. '60,100,140' ('none': constant)."),
    _opt("--batch-size", type=int, help="Training batch size."),
    _opt("--memory", type=int, help="Total exemplar budget (iCaRL/BiC)."),
    _opt("--init-classes", type=int, help="Classes in the first task."),
    _opt("--inc-classes", type=int, help="Classes per later task."),
    _opt("--seed", type=int, help="Seed of class order, init and every random draw "
         "[default: 42467]."),
    _opt("--audit-threshold", type=float, help="Flag layers with more than this % saturated "
         "tiles [default: 1]."),
    _opt("--per-class", type=int, help="Train on the first N training samples of each class "
         "only (the test set stays whole), for quick looks [default: all]."),
    _opt("--threads", type=int, help="Threads for Numba kernels and OpenBLAS [default: "
         "$INTSIM_THREADS, else all cores]."),
    click.option("--out", "out", type=click.Path(file_okay=False), default=None,
                 help="Run folder [default: runs/<time>-<dataset>-<method>-<arith>]."),
    click.option("--resume", is_flag=True, help="Continue the interrupted run in --out from "
                 "its last checkpoint (settings come from its config.toml)."),
    click.option("--quiet", "-q", is_flag=True, help="No progress; print only the run folder."),
    click.option("--jsonl", is_flag=True, help="Progress and results as JSON lines on stdout."),
]

_CONFIG_KEYS = ["dataset", "data", "split", "scale", "model", "hidden", "conv_bias", "conv_init", "method", "arith", "bits", "acc_bits",
                "tile", "acc_mode", "hadamard", "requantize", "grad_rounding", "act_rounding",
                "weight_rounding", "fwd_clip", "schedule", "epochs", "min_steps", "lr", "milestones",
                "batch_size", "memory", "init_classes", "inc_classes", "seed",
                "audit_threshold", "per_class", "threads"]


def _with_options(f):
    for o in reversed(OPTIONS):
        f = o(f)
    return f


# ------------------------------------------------------------------ command

@click.command("train")
@_with_options
@click.pass_context
def train_cmd(ctx, config_file, arith_opts, out, resume, quiet, jsonl, **opts):
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
