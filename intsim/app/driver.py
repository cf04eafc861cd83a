"""``run``: one continual-learning run (class-, task- or domain-incremental) from a
:class:`RunConfig` to a run folder.

The one driver of intsim: ``intsim train``, the workers of ``intsim sweep``
(:mod:`intsim.app.sweep`) and the tests call it. The run folder gets
config.toml, log.jsonl, a checksummed checkpoint after every task
(:mod:`intsim.app.runfolder`) and results.json (:mod:`intsim.app.results`);
docs/run-folder.md documents each file.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from intsim.app import runfolder as runio
from intsim.app.auditreport import acc_range, audit_to_dict, format_audit, merge_audits
from intsim.app.build import (build_arith, describe_arith, cil_config, complete_config, effective_acc_bits,
                              load_data, make_model, make_stream, model_spec_of,
                              prepare_inputs)
from intsim.app.config import ConfigError, RunConfig, datapath_label, to_toml, unused_settings
from intsim.app.progress import Progress
from intsim.app.results import build_results, summarize, task_record
from intsim.cil import runner as cil_runner
from intsim.cil import scenario_of
from intsim.cost.energy import load_table
from intsim.cost.record import cost_record
from intsim.data import dataset_spec, first_per_class
from intsim.errors import TrainingDiverged
from intsim.kernels.jitcache import MESSAGE, notify_compiles
from intsim.kernels.runtime import configure_runtime
from intsim.kernels.threads import set_threads


@dataclass
class RunHooks:
    """Injection points for tests and scripts (:func:`run`'s ``hooks``; the CLI
    takes them as click's context object: ``CliRunner.invoke(..., obj=RunHooks())``).

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


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM stopped a run; ``tasks_done`` tasks are checkpointed in ``run_dir``."""

    def __init__(self, run_dir: Path, tasks_done: int):
        self.run_dir, self.tasks_done = Path(run_dir), int(tasks_done)
        done = ("no task finished yet" if tasks_done == 0 else
                f"the checkpoint after task {tasks_done} is kept")
        super().__init__(f"interrupted; {done} in {run_dir}")


def default_out(cfg: RunConfig) -> Path:
    """A new folder runs/<time>-<dataset>-<method>-<arith> (suffixed -2, -3, ... if taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{cfg.dataset}-{cfg.method}-{datapath_label(cfg)}"
    p, i = base, 1
    while p.exists():
        i += 1
        p = base.with_name(f"{base.name}-{i}")
    return p


def run(cfg: RunConfig, out=None, *, resume: bool = False, hooks: RunHooks | None = None,
        progress: Progress | None = None, keep_checkpoint: bool = True,
        lock: runio.RunLock | None = None) -> dict:
    """Train ``cfg``'s class-incremental run into the run folder ``out``.

    cfg: a resolved :class:`RunConfig` (``intsim.app.config.resolve``).
    out: the run folder (default ``runs/<time>-<dataset>-<method>-<arith>``);
        it must be empty or absent unless ``resume``.
    resume: continue from the folder's last checkpoint; the results then
        equal an uninterrupted run's bit for bit.
    hooks: :class:`RunHooks` (an injected dataset, per-task/epoch callbacks).
    progress: an :class:`intsim.app.progress.Progress` (default: quiet).
    keep_checkpoint: False deletes the checkpoint once the run is complete
        (sweeps keep only config.toml, log.jsonl and results.json).
    lock: the :class:`~intsim.app.runfolder.RunLock` of ``out``, acquired by the
        caller (``intsim sweep`` takes it before it looks whether the run is
        complete); it stays held when run returns. Default: run takes it.

    Writes config.toml, log.jsonl, a checkpoint after every task and
    results.json (:mod:`intsim.app.results`); returns the results dict.
    Raises ConfigError (one line) on bad settings or data before anything is
    written, and :class:`RunInterrupted` on Ctrl-C/SIGTERM (the last
    checkpoint is kept).

    First it applies the process setup (:func:`intsim.kernels.runtime.configure_runtime`;
    its docstring says what still takes effect once NumPy is loaded).
    """
    configure_runtime()
    prog = progress if progress is not None else Progress("quiet")
    arith = build_arith(cfg)
    # ---- everything that can fail on user input happens before any write
    run_dir = Path(out) if out is not None else default_out(cfg)
    owned = lock is None
    if owned:
        lock = runio.RunLock(run_dir)
        if run_dir.is_dir() and (resume or not any(run_dir.iterdir())):
            _acquire(lock)                  # (a non-empty folder without resume is refused below)
    elif lock.path != run_dir / runio.LOCK:
        raise ValueError(f"run(lock=...) takes the lock of {run_dir}, not {lock.path}")
    try:
        return _run(cfg, arith, run_dir, lock, resume, hooks, prog, keep_checkpoint)
    finally:
        if owned:
            lock.release()


def _acquire(lock) -> None:
    try:
        lock.acquire()
    except runio.RunFolderBusy as e:
        raise ConfigError(str(e)) from None


def _run(cfg, arith, run_dir: Path, lock, resume, hooks, prog, keep_checkpoint) -> dict:
    """run()'s body, with run_dir locked once it exists."""
    state, start_task = None, 0
    if resume:
        _check_results_file(run_dir)
        if runio.has_checkpoint(run_dir):
            try:
                last_task, state = runio.load_checkpoint(run_dir)
            except runio.CheckpointError as e:
                raise ConfigError(f"cannot resume: {e}") from None
            start_task = last_task + 1
        else:
            done = _complete_results(run_dir)
            if done is not None:            # finished, checkpoint removed (keep_checkpoint=False)
                prog.message("run already complete")
                return done
    elif run_dir.exists() and any(p.name != runio.LOCK for p in run_dir.iterdir()):
        raise ConfigError(f"run folder {run_dir} is not empty; use --resume to continue it "
                          f"or choose another --out")
    ds = load_data(cfg, hooks)
    scenario = scenario_of(cfg.scenario)
    if cfg.per_class is not None:
        # domain tasks of activity data are groups of subjects: keep N of each subject's class
        by_subject = scenario.classes_repeat and dataset_spec(cfg.dataset).kind == "har"
        try:
            ds = first_per_class(ds, cfg.per_class, per_subject=by_subject)
        except ValueError as e:
            raise ConfigError(f"per_class: {e}") from None
    cc_probe = cil_config(cfg)
    ds = prepare_inputs(ds, cc_probe.model)
    if model_spec_of(cc_probe.model).needs_images and ds.X_train.ndim != 4:
        raise ConfigError(f"{cc_probe.model} needs images (C, H, W), the data has shape "
                          f"{tuple(ds.X_train.shape[1:])}")
    stream = make_stream(cfg, cc_probe, ds)
    cc = cc_probe
    need = scenario.min_memory(stream)
    if cc.uses_memory and cc.memory < need:
        what = (f"{stream.num_classes} classes" if need == stream.num_classes else
                f"{stream.num_classes} classes x {stream.num_tasks} tasks")
        raise ConfigError(f"memory={cc.memory} is fewer exemplars than the {what} the run will "
                          f"see; {cfg.method} keeps at least one per class"
                          f"{'' if need == stream.num_classes else ' and task'} (use --memory "
                          f"{need} or more)")
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
            raise ConfigError(f"cannot resume: the checkpoint in {run_dir} lacks or mangles "
                              f"{e}") from None
        if start_task != len(records) or not 0 < start_task <= stream.num_tasks:
            raise ConfigError(f"cannot resume: the checkpoint in {run_dir} is inconsistent "
                              f"(next_task={start_task}, {len(records)} task records, "
                              f"{stream.num_tasks} tasks)")

    # ---- from here on we write
    # float sums: BLAS on one thread, so that the bits do not depend on the count
    used_threads = set_threads(cfg.threads, blas=None if arith.blas_exact else 1)
    run_info = {"dataset": cfg.dataset, "dataset_name": getattr(ds, "name", cfg.dataset),
                "class_order": [int(c) for c in np.asarray(stream.class_order)],
                "num_tasks": int(stream.num_tasks), "num_classes": int(stream.num_classes),
                "in_shape": [int(s) for s in in_shape],
                "n_train": int(len(ds.X_train)), "n_test": int(len(ds.X_test)),
                "arith": describe_arith(cfg), "datapath": arith.to_spec(),
                "acc_limit": acc_bits,
                "acc_range": acc_range(acc_bits), "cil": cc.to_dict(),
                "injected_dataset": bool(hooks is not None and hooks.dataset is not None),
                "scenario": cfg.scenario,
                "unused_settings": unused_settings(cfg),
                "data_info": runio.to_jsonable(getattr(ds, "info", None) or {}),
                "threads": used_threads}
    if hasattr(stream, "describe"):
        run_info["domains"] = stream.describe()
    run_dir.mkdir(parents=True, exist_ok=True)
    if lock._fd is None:
        _acquire(lock)
    if not resume or not (run_dir / runio.CONFIG).exists():
        runio.atomic_write_text(run_dir / runio.CONFIG, _config_toml(cfg))
    log = run_dir / runio.LOG
    if resume and log.exists():
        # the interrupted task is trained again: its earlier epochs no longer count
        runio.discard_epochs(log, from_task=start_task)
    runio.append_jsonl(log, {"event": "resume" if resume else "start", "time": time.time(),
                             "start_task": start_task, "config": cfg.to_dict()})
    prog.release()                       # the notices and warnings held for a valid run
    prog.message(f"run folder: {run_dir}")
    if resume and start_task == 0:
        prog.message("starting over from task 1 (no task had finished)")
    elif resume:
        prog.message(f"resuming after task {start_task} of {stream.num_tasks}")
    prog.event({"event": "start", "run": str(run_dir), "resume": resume,
                "start_task": start_task, "num_tasks": stream.num_tasks})

    t_run = time.perf_counter()
    saved = {"tasks": start_task}      # tasks covered by the checkpoint on disk
    energy = load_table(cfg.energy_table)

    def on_task_end(t, results, checkpoint):
        ev = results["tasks"][-1]
        # the model's own audit objects also carry the quantizer levels used
        audit = audit_to_dict(holder["model"].audit())
        secs = {"total": float(ev.get("seconds", 0.0))}
        new = np.arange(int(ev["n_old"]), int(ev["seen"]))
        rec = runio.to_jsonable(task_record(ev, audit, acc_bits, cfg.audit_threshold, secs,
                                            new, np.asarray(stream.class_order)[new]))
        rec["cost"] = runio.to_jsonable(cost_record(ev["op_counts"], energy))
        for extra in ev.get("extras", ()):
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
        if prog.mode == "bar" and prog.detail:
            prog.message(format_audit(audit, acc_bits, cfg.audit_threshold,
                                      title=f"audit after task {t + 1}"))
        if hooks is not None and hooks.on_task_end is not None:
            hooks.on_task_end(t, rec)

    def on_epoch(ev):
        runio.append_jsonl(log, {"event": "epoch", **ev})
        if hooks is not None and hooks.on_epoch is not None:
            hooks.on_epoch(ev)

    try:
        if start_task < stream.num_tasks:
            with _sigterm_as_interrupt(), \
                    notify_compiles(lambda: _compile_notice(prog)) as compiling:
                cil_runner.run_cil(stream, model_factory, cc, np.random.default_rng(cfg.seed),
                        on_task_end=on_task_end, on_epoch=on_epoch, state=cil_state,
                        progress=None if prog.mode == "quiet" else prog)
    except KeyboardInterrupt:
        runio.append_jsonl(log, {"event": "interrupted", "tasks_done": len(records),
                                 "time": time.time()})
        raise RunInterrupted(run_dir, saved["tasks"]) from None
    except TrainingDiverged as e:
        # the finished tasks stay in results.json (complete: false) and the checkpoint
        runio.append_jsonl(log, {"event": "diverged", "tasks_done": len(records),
                                 "task": e.task, "stage": e.stage, "epoch": e.epoch,
                                 "batch": e.batch, "cause": e.cause, "time": time.time()})
        raise

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
    if not keep_checkpoint:
        runio.remove_checkpoint(run_dir)
    return runio.read_json(run_dir / runio.RESULTS)


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


def _check_results_file(run_dir: Path) -> None:
    """ConfigError (one line, before anything is written) when the run folder's
    results.json exists but is not a JSON object, e.g. cut short by a copy."""
    path = run_dir / runio.RESULTS
    if not path.exists():
        return
    try:
        res = runio.read_json(path)
        if not isinstance(res, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        fix = ("it is rebuilt from the checkpoint" if runio.has_checkpoint(run_dir) else
               "with no checkpoint the run trains again from task 1")
        raise ConfigError(f"cannot resume: {path} is damaged ({e}); delete it and run "
                          f"--resume again ({fix})") from None


def _complete_results(run_dir: Path) -> dict | None:
    """The folder's results.json if it records a complete run, else None."""
    try:
        res = runio.read_json(run_dir / runio.RESULTS)
    except (OSError, ValueError):
        return None
    return res if isinstance(res, dict) and res.get("complete") else None


def _compile_notice(prog: Progress) -> None:
    """Numba started compiling (a cold cache): say so, so the run does not look hung."""
    if prog.mode == "bar":
        prog.note(MESSAGE)
    else:
        prog.event({"event": "compiling"})


def _same_settings(saved, cfg: RunConfig) -> bool:
    """The checkpoint's settings equal cfg's, but for the thread count (a resumed run
    may take another); settings newer than the checkpoint (absent from it) are not
    compared."""
    if not isinstance(saved, dict):
        return False
    skip = set(unused_settings(cfg)) | {"threads"}      # the count changes no result
    now = runio.to_jsonable(cfg.to_dict())
    return {k: v for k, v in saved.items() if k not in skip} == \
        {k: v for k, v in now.items() if k in saved and k not in skip}


def _task_summary(rec: dict, num_tasks: int) -> dict:
    return {"task": rec["task"], "num_tasks": num_tasks, "classes_seen": rec["classes_seen"],
            "cnn": rec["cnn"], "nme": rec["nme"], "saturated_pct": rec["saturated_pct"],
            "flagged": rec["flagged"], "seconds": rec["seconds"]["total"]}


def _print_end(prog: Progress, run_dir: Path, records, summary, acc_bits, threshold) -> None:
    if prog.mode == "jsonl":
        prog.event({"event": "end", "run": str(run_dir), "summary": summary})
        return
    if prog.mode == "quiet":
        return
    prog.message("")
    prog.message(format_audit(merge_audits(r["audit"] for r in records), acc_bits, threshold,
                              title="audit, all tasks"))
    prog.message("")
    for m, s in summary.items():
        by_task = s.get("by_task") or {}
        tail = (f"  by task: forgetting {by_task['forgetting']:.2f}  BWT {by_task['bwt']:.2f}"
                if by_task else "")
        prog.message(f"{m.upper()}: average incremental {s['avg']:.2f}%  last {s['last']:.2f}%  "
                     f"forgetting {s['forgetting']:.2f}{tail}")
    prog.message(f"results: {run_dir / runio.RESULTS}")


def config_text(cfg: RunConfig) -> str:
    """The config.toml a run of ``cfg`` writes (``intsim train --dry-run`` prints it):
    the settings with the schedule's values filled in."""
    return _config_toml(complete_config(cfg, cil_config(cfg)))


def _config_toml(cfg: RunConfig) -> str:
    why = ("the [datapath] table replaces it" if cfg.datapath is not None
           else f"--arith {cfg.arith} does not take it")
    d = cfg.to_dict()
    if cfg.datapath is not None:
        d["datapath"] = build_arith(cfg).to_spec()        # every field, the parts' included
    return to_toml(d, header="intsim run configuration (fully resolved).\n"
                                         "Re-run with: intsim train --config config.toml",
                   unused={k: why for k in unused_settings(cfg)})
