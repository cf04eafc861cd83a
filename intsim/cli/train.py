"""``intsim train``: one class-incremental run, with progress, audit, results, resume.

With no options it runs the embedded default: HAPT-561 features, FCNet
(hidden = 561, 561), iCaRL, HDQT with 4-bit inputs and 8-bit tiled
accumulators, and the short schedule (:data:`intsim.app.config.SHORT_SCHEDULE`).

Settings come from defaults <- ``--config FILE.toml`` <- options
(:mod:`intsim.app.config`). The run folder (``--out``, default
``runs/<time>-<dataset>-<method>-<arith>``) gets config.toml, results.json,
log.jsonl and a checksummed checkpoint after every task (:mod:`intsim.app.runfolder`).
``--resume`` continues from the last checkpoint and ends with exactly the
results of an uninterrupted run. Ctrl-C leaves the last checkpoint intact
(exit code 130). Bad input: one line on stderr, exit code 2, nothing written.

Test hook: pass ``obj=TrainHooks(...)`` to ``CliRunner.invoke`` (it becomes
``click``'s context object) to train on an in-memory dataset and/or to run a
callback after each task's checkpoint (raise from it to simulate a crash).
"""
from __future__ import annotations

import contextlib
import dataclasses
import platform
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click
import numpy as np

from intsim.app import runfolder as runio
from intsim.app.auditreport import acc_range, audit_rows, audit_to_dict, format_audit, merge_audits
from intsim.kernels.jitcache import MESSAGE, notify_compiles
from intsim.cli.progress import Progress
from intsim.app.config import (ACC_MODES, ARITHS, DATASETS, HAR_DATASETS, METHODS, MODELS,
                              ROUNDINGS, SCHEDULES, SHORT_SCHEDULE, ConfigError, RunConfig,
                              parse_arith_option, resolve)
from intsim.kernels.threads import ActiveRun, available_cores, set_threads

RESULTS_FORMAT = 1


@dataclass
class TrainHooks:
    """Injection points for tests and scripts (``CliRunner.invoke(..., obj=TrainHooks())``).

    dataset: an ``intsim.data.Dataset`` used instead of loading ``--dataset``
        (the config's dataset name is still used for the paper defaults).
    on_task_end: called as ``on_task_end(task_index, record)`` after task
        ``task_index`` (0-based) is checkpointed and results.json written.
    on_epoch: called with the learner's per-epoch dict (task, stage, epoch,
        epochs, loss, acc, lr) after it is logged; raising KeyboardInterrupt
        here simulates a Ctrl-C in the middle of a task.
    """
    dataset: Any = None
    on_task_end: Callable[[int, dict], None] | None = None
    on_epoch: Callable[[dict], None] | None = None


def fail(msg: str) -> None:
    """One clear line on stderr and exit code 2."""
    click.echo(f"intsim: error: {msg}", err=True)
    raise click.exceptions.Exit(2)


# --------------------------------------------------------------- building

def cil_config(cfg: RunConfig):
    """The CILConfig of a run: paper defaults for the dataset, the schedule, then
    the run's explicit settings."""
    from intsim.cil import CILConfig
    model = cfg.model
    if model == "auto":
        model = "resnet32" if cfg.dataset in ("cifar100", "cifar10") else "fcnet"
    over: dict[str, Any] = {"model": model}
    if cfg.schedule == "short":
        over.update(epochs=SHORT_SCHEDULE["epochs"], milestones=tuple(SHORT_SCHEDULE["milestones"]),
                    apply_milestones=True)    # the paper's LR, held constant
    for k in ("epochs", "lr", "batch_size", "memory", "init_classes", "inc_classes", "hidden"):
        v = getattr(cfg, k)
        if v is not None:
            over[k] = v
    if cfg.milestones is not None:
        over.update(milestones=tuple(cfg.milestones), apply_milestones=True)
    if cfg.dataset in ("cifar100", "hapt", "dsads", "pamap2"):
        base_name = cfg.dataset
    elif cfg.dataset == "cifar10":
        base_name = "cifar100"
        over.setdefault("init_classes", 2)
        over.setdefault("inc_classes", 2)
    else:  # mnist, fashion-mnist: FC nets on flattened images, HAR-like schedule
        base_name = "hapt"
    try:
        c = CILConfig.for_dataset(base_name, cfg.method, **over)
        return c.replace(dataset=cfg.dataset)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def complete_config(cfg: RunConfig, cc) -> RunConfig:
    """Write the schedule's concrete values back so config.toml is complete."""
    return cfg.replace(model=cc.model, epochs=cc.epochs, lr=cc.lr,
                       milestones=tuple(cc.effective_milestones), batch_size=cc.batch_size,
                       memory=cc.memory, init_classes=cc.init_classes,
                       inc_classes=cc.inc_classes)


def build_arith(cfg: RunConfig):
    """FP() / HDQT(...) / LUQ(...) from the run config (ConfigError on bad options)."""
    import intsim
    cls = {"fp": intsim.FP, "hdqt": intsim.HDQT, "luq": intsim.LUQ}[cfg.arith]
    if cfg.arith == "fp":
        kw: dict[str, Any] = {}
    elif cfg.arith == "hdqt":
        kw = dict(bits=cfg.bits, acc_bits=cfg.acc_bits, tile=cfg.tile, acc_mode=cfg.acc_mode,
                  fwd_clip=cfg.fwd_clip, grad_rounding=cfg.grad_rounding,
                  act_rounding=cfg.act_rounding, weight_rounding=cfg.weight_rounding,
                  hadamard=cfg.hadamard, requantize=cfg.requantize)
    else:
        kw = dict(bits=cfg.bits, acc_bits=cfg.acc_bits, acc_mode=cfg.acc_mode)
    known = {f.name for f in dataclasses.fields(cls)}
    for k, v in cfg.arith_options:
        if k not in known:
            raise ConfigError(f"unknown arith option {k!r} for {cfg.arith} "
                              f"(known: {', '.join(sorted(known)) or 'none'})")
        kw[k] = v
    try:
        return cls(**kw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{cfg.arith}: {e}") from None


def effective_acc_bits(arith) -> int | None:
    """Accumulator bits the audit range uses (None = unlimited)."""
    if not getattr(arith, "quantized", False):
        return None
    return getattr(arith, "acc_limit", getattr(arith, "acc_bits", None))


def load_data(cfg: RunConfig, hooks: TrainHooks | None):
    """The Dataset (injected or loaded); ConfigError on missing/corrupt files."""
    if hooks is not None and hooks.dataset is not None:
        ds = hooks.dataset
    else:
        from intsim.data import load_dataset
        try:
            ds = load_dataset(cfg.dataset, cfg.data)
        except FileNotFoundError as e:
            raise ConfigError(f"missing data for {cfg.dataset}: {e}") from None
        except ValueError as e:
            raise ConfigError(f"cannot load {cfg.dataset}: {e}") from None
    return ds


def prepare_inputs(ds, model: str):
    """Images for an FC net are flattened (uint8 scaled to [0, 1]); single-channel
    (N, H, W) images for a ResNet get a channel axis; else unchanged."""
    if model == "resnet32" and ds.X_train.ndim == 3:
        return dataclasses.replace(ds, X_train=ds.X_train[:, None], X_test=ds.X_test[:, None])
    if model != "fcnet" or ds.X_train.ndim == 2:
        return ds

    def flat(X):
        X = X.reshape(len(X), -1)
        return (X.astype(np.float32) / 255.0) if X.dtype == np.uint8 else X.astype(np.float32)
    return dataclasses.replace(ds, X_train=flat(ds.X_train), X_test=flat(ds.X_test))


def make_model(cc, arith, in_shape, rng):
    from intsim.models import FCNet, resnet32
    if cc.model == "fcnet":
        in_dim = int(np.prod(in_shape))
        hidden = cc.hidden if cc.hidden is not None else (in_dim, in_dim)
        return FCNet(in_dim, hidden, arith, rng, num_classes=0,
                     classifier_bias=cc.classifier_bias)
    if len(in_shape) != 3:
        raise ConfigError(f"resnet32 needs images (C, H, W), the data has shape {tuple(in_shape)}")
    if in_shape[0] == 3:
        return resnet32(0, arith, rng)
    from intsim.models import ResNet       # e.g. 1-channel MNIST: same net, other stem
    return ResNet(5, 0, arith, rng, in_ch=int(in_shape[0]))


def versions() -> dict:
    import numba
    import scipy

    import intsim
    from importlib.metadata import version
    return {"intsim": intsim.__version__, "numpy": np.__version__, "numba": numba.__version__,
            "scipy": scipy.__version__, "click": version("click"),
            "python": platform.python_version(), "platform": platform.platform()}


# ---------------------------------------------------------------- results

def task_record(ev: dict, audit: dict, acc_bits, threshold: float, seconds: dict,
                classes, class_ids) -> dict:
    """One task's entry of results.json (accuracies in percent; classes are the
    task's new classes as remapped ids, class_ids the same as original labels)."""
    rows = audit_rows(audit, acc_bits, threshold)
    tiles = sum(r["tiles"] for r in rows)
    sat = sum(r["saturated"] for r in rows)
    nme = ev.get("nme")
    return {"task": int(ev["task"]), "classes": [int(c) for c in classes],
            "class_ids": [int(c) for c in class_ids],
            "classes_seen": int(ev["seen"]), "n_old": int(ev["n_old"]),
            "cnn": ev["cnn"]["acc"], "nme": None if nme is None else nme["acc"],
            "per_class_cnn": ev["cnn"]["per_class"],
            "per_class_nme": None if nme is None else nme["per_class"],
            "confusion_cnn": ev["cnn"]["confusion"],
            "confusion_nme": None if nme is None else nme["confusion"],
            "audit": audit, "saturated_pct": 100.0 * sat / tiles if tiles else 0.0,
            "flagged": sorted({r["layer"] for r in rows if r["flagged"]}),
            "seconds": seconds}


def summarize(records: list[dict]) -> dict:
    from intsim.cil import metrics
    out = {}
    for m in ("cnn", "nme"):
        accs = [r[m] for r in records]
        if not records or any(a is None for a in accs):
            continue
        s = metrics.summarize(accs, [r[f"per_class_{m}"] for r in records])
        out[m] = {"acc": s["acc"], "avg": s["avg"], "last": s["last"],
                  "forgetting": s["forgetting"][-1], "forgetting_per_task": s["forgetting"]}
    return out


def build_results(cfg: RunConfig, run_info: dict, records: list[dict], timings: dict,
                  complete: bool) -> dict:
    return {"format": RESULTS_FORMAT, "complete": complete, "seed": cfg.seed,
            "config": cfg.to_dict(), "run": run_info, "tasks": records,
            "summary": summarize(records),
            "audit_total": merge_audits(r["audit"] for r in records),
            "timings": timings, "versions": versions()}


# ------------------------------------------------------------------ options

def _opt(*a, **k):
    return click.option(*a, default=None, **k)


OPTIONS = [
    click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                 help="TOML file with settings (same keys as the options, '_' for '-'); "
                      "options given on the command line override it."),
    _opt("--dataset", type=click.Choice(DATASETS, case_sensitive=False),
         help="Dataset [default: hapt, the embedded HAPT-561 features]."),
    _opt("--data", type=click.Path(), help="Path of the official download (folder or archive)."),
    _opt("--model", type=click.Choice(MODELS), help="Network [default: auto: fcnet for "
         "HAR/MNIST, resnet32 for CIFAR]."),
    _opt("--hidden", help="FCNet hidden widths, e.g. '561,561' [default: two layers as wide as the input, the paper's net]."),
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

_CONFIG_KEYS = ["dataset", "data", "model", "hidden", "method", "arith", "bits", "acc_bits",
                "tile", "acc_mode", "hadamard", "requantize", "grad_rounding", "act_rounding",
                "weight_rounding", "fwd_clip", "schedule", "epochs", "lr", "milestones",
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
    hooks = ctx.obj if isinstance(ctx.obj, TrainHooks) else None
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
            arith = build_arith(cfg)
        except ConfigError as e:
            fail(str(e))

        mode = "quiet" if quiet else ("jsonl" if jsonl else "bar")
        prog = Progress(mode)
        if others and cfg.threads == max(1, available_cores() // (others + 1)) \
                < available_cores():
            prog.message(f"{others} other intsim run(s) active: using {cfg.threads} of "
                         f"{available_cores()} cores (--threads N to choose)")
        try:
            _train(cfg, arith, out, resume, hooks, prog)
        except ConfigError as e:
            fail(str(e))


def _default_out(cfg: RunConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{cfg.dataset}-{cfg.method}-{cfg.arith}"
    p, i = base, 1
    while p.exists():
        i += 1
        p = base.with_name(f"{base.name}-{i}")
    return p


def _train(cfg: RunConfig, arith, out, resume: bool, hooks, prog: Progress) -> None:
    from intsim.data import TaskStream, first_per_class

    # ---- everything that can fail on user input happens before any write
    run_dir = Path(out) if out is not None else _default_out(cfg)
    state, start_task = None, 0
    if resume:
        if runio.has_checkpoint(run_dir):
            try:
                last_task, state = runio.load_checkpoint(run_dir)
            except runio.CheckpointError as e:
                raise ConfigError(f"cannot resume: {e}") from None
            start_task = last_task + 1
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"run folder {run_dir} is not empty; use --resume to continue it "
                          f"or choose another --out")
    ds = load_data(cfg, hooks)
    if cfg.per_class is not None:
        ds = first_per_class(ds, cfg.per_class)
    cc_probe = cil_config(cfg)
    ds = prepare_inputs(ds, cc_probe.model)
    if cc_probe.model == "resnet32" and ds.X_train.ndim != 4:
        raise ConfigError(f"resnet32 needs images (C, H, W), the data has shape "
                          f"{tuple(ds.X_train.shape[1:])}")
    try:
        stream = TaskStream(ds, cc_probe.init_classes, cc_probe.inc_classes, cfg.seed)
    except ValueError as e:
        raise ConfigError(f"cannot split {cfg.dataset} into tasks: {e}") from None
    cc = cc_probe
    cfg = complete_config(cfg, cc)
    acc_bits = effective_acc_bits(arith)
    if state is not None and not _same_settings(state.get("config"), cfg):
        raise ConfigError(f"cannot resume: the checkpoint in {run_dir} was written with "
                          f"different settings than its config.toml")

    in_shape = ds.X_train.shape[1:]
    holder: dict[str, Any] = {}

    def model_factory(rng):
        holder["model"] = make_model(cc, arith, in_shape, rng)
        return holder["model"]

    records: list[dict] = []
    elapsed_before = 0.0
    cil_state = None
    if state is not None:
        try:
            cil_state = state["cil"]
            records = list(state["records"])
            elapsed_before = float(state.get("elapsed", 0.0))
            start_task = int(cil_state["next_task"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"cannot resume: checkpoint lacks {e}") from None

    # ---- from here on we write
    used_threads = set_threads(cfg.threads)
    run_info = {"dataset": cfg.dataset, "dataset_name": getattr(ds, "name", cfg.dataset),
                "class_order": [int(c) for c in np.asarray(stream.class_order)],
                "num_tasks": int(stream.num_tasks), "num_classes": int(stream.num_classes),
                "in_shape": [int(s) for s in in_shape],
                "n_train": int(len(ds.X_train)), "n_test": int(len(ds.X_test)),
                "arith": repr(arith), "acc_limit": acc_bits,
                "acc_range": acc_range(acc_bits), "cil": cc.to_dict(),
                "injected_dataset": bool(hooks is not None and hooks.dataset is not None),
                "threads": used_threads}
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume or not (run_dir / runio.CONFIG).exists():
        runio.atomic_write_text(run_dir / runio.CONFIG, _config_toml(cfg))
    log = run_dir / runio.LOG
    runio.append_jsonl(log, {"event": "resume" if resume else "start", "time": time.time(),
                             "start_task": start_task, "config": cfg.to_dict()})
    prog.message(f"run folder: {run_dir}")
    if resume:
        prog.message(f"resuming after task {start_task} of {stream.num_tasks}")
    prog.event({"event": "start", "run": str(run_dir), "resume": resume,
                "start_task": start_task, "num_tasks": stream.num_tasks})

    t_run = time.perf_counter()
    saved = {"tasks": start_task}      # tasks covered by the checkpoint on disk

    def on_task_end(t, results, checkpoint):
        ev = results["tasks"][-1]
        # the model's own audit objects also carry the quantizer levels used
        audit = audit_to_dict(holder["model"].audit())
        secs = {"total": float(ev.get("seconds", 0.0))}
        new = np.arange(int(ev["n_old"]), int(ev["seen"]))
        rec = runio.to_jsonable(task_record(ev, audit, acc_bits, cfg.audit_threshold, secs,
                                            new, np.asarray(stream.class_order)[new]))
        for extra in ("bias", "val_size"):
            if extra in ev:
                rec[extra] = runio.to_jsonable(ev[extra])
        records.append(rec)
        elapsed = elapsed_before + time.perf_counter() - t_run
        runio.save_checkpoint(run_dir, t, {
            "config": runio.to_jsonable(cfg.to_dict()), "cil": checkpoint,
            "records": records, "elapsed": elapsed})
        saved["tasks"] = t + 1
        timings = {"total_seconds": elapsed,
                   "task_seconds": [r["seconds"]["total"] for r in records],
                   "compile_seconds": compiling.seconds}
        runio.atomic_write_json(run_dir / runio.RESULTS, build_results(
            cfg, run_info, records, timings, complete=t == stream.num_tasks - 1))
        summ = _task_summary(rec, stream.num_tasks)
        runio.append_jsonl(log, {"event": "task", **summ})
        prog.task(summ)
        if prog.mode == "bar":
            prog.message(format_audit(audit, acc_bits, cfg.audit_threshold,
                                      title=f"audit after task {t + 1}"))
        if hooks is not None and hooks.on_task_end is not None:
            hooks.on_task_end(t, rec)

    def on_epoch(ev):
        runio.append_jsonl(log, {"event": "epoch", **ev})
        if hooks is not None and hooks.on_epoch is not None:
            hooks.on_epoch(ev)

    from intsim.cil import run_cil
    try:
        if start_task < stream.num_tasks:
            with _sigterm_as_interrupt(), \
                    notify_compiles(lambda: _compile_notice(prog)) as compiling:
                run_cil(stream, model_factory, cc, np.random.default_rng(cfg.seed),
                        on_task_end=on_task_end, on_epoch=on_epoch, state=cil_state,
                        progress=None if prog.mode == "quiet" else prog)
    except KeyboardInterrupt:
        runio.append_jsonl(log, {"event": "interrupted", "tasks_done": len(records),
                                 "time": time.time()})
        if prog.mode == "bar" and prog.tty:
            click.echo(err=True)        # end the half-drawn progress bar line
        n = saved["tasks"]
        done = "no task finished yet" if n == 0 else f"the checkpoint after task {n} is kept"
        click.echo(f"intsim: interrupted; {done} in {run_dir}; "
                   f"continue with: intsim train --out {run_dir} --resume", err=True)
        raise click.exceptions.Exit(130)

    if start_task >= stream.num_tasks:   # resumed an already finished run
        res = runio.read_json(run_dir / runio.RESULTS) if (run_dir / runio.RESULTS).exists() else None
        if res is None or not res.get("complete"):
            timings = {"total_seconds": elapsed_before,
                       "task_seconds": [r["seconds"]["total"] for r in records]}
            runio.atomic_write_json(run_dir / runio.RESULTS,
                                    build_results(cfg, run_info, records, timings, True))
        prog.message("run already complete")
    summary = summarize(records)
    runio.append_jsonl(log, {"event": "end", "summary": summary, "time": time.time()})
    _print_end(prog, run_dir, records, summary, acc_bits, cfg.audit_threshold)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Treat SIGTERM like Ctrl-C while training (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _compile_notice(prog: Progress) -> None:
    """Numba started compiling (a cold cache): say so, so the run does not look hung."""
    if prog.mode == "bar":
        click.echo(MESSAGE, err=True)
    else:
        prog.event({"event": "compiling"})


def _same_settings(saved, cfg: RunConfig) -> bool:
    """The checkpoint's settings equal cfg's; settings newer than the checkpoint
    (absent from it, e.g. threads) are not compared."""
    if not isinstance(saved, dict):
        return False
    now = runio.to_jsonable(cfg.to_dict())
    return saved == {k: v for k, v in now.items() if k in saved}


def _task_summary(rec: dict, num_tasks: int) -> dict:
    return {"task": rec["task"], "num_tasks": num_tasks, "classes_seen": rec["classes_seen"],
            "cnn": rec["cnn"], "nme": rec["nme"], "saturated_pct": rec["saturated_pct"],
            "flagged": rec["flagged"], "seconds": rec["seconds"]["total"]}


def _print_end(prog: Progress, run_dir: Path, records, summary, acc_bits, threshold) -> None:
    if prog.mode == "jsonl":
        prog.event({"event": "end", "run": str(run_dir), "summary": summary})
        return
    if prog.mode == "quiet":
        click.echo(str(run_dir))
        return
    prog.message("")
    prog.message(format_audit(merge_audits(r["audit"] for r in records), acc_bits, threshold,
                              title="audit, all tasks"))
    prog.message("")
    for m, s in summary.items():
        prog.message(f"{m.upper()}: average incremental {s['avg']:.2f}%  last {s['last']:.2f}%  "
                     f"forgetting {s['forgetting']:.2f}")
    prog.message(f"results: {run_dir / runio.RESULTS}")


def _config_toml(cfg: RunConfig) -> str:
    from intsim.app.config import to_toml
    d = cfg.to_dict()
    return to_toml(d, header="intsim run configuration (fully resolved).\n"
                              "Re-run with: intsim train --config config.toml")
