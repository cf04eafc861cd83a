"""The sweep client: hands a sweep's unfinished runs to an executor, retries the
runs of dead workers, waits for runs another process holds, and records every
run's status in DIR/sweep.json as it changes (docs/sweeps.md, "Failures,
retries and resume"). :func:`plan` says what a sweep would do, running nothing.
"""
from __future__ import annotations

import os
import time
from collections import deque

from intsim.app import runfolder
from intsim.app.sweep.executors import LocalExecutor
from intsim.app.sweep.progress import SweepProgress
from intsim.app.sweep.state import SweepState, _now, diverged_line, lock_held
from intsim.app.sweep.worker import BUSY, load_diverged, load_done

#: times a run is started again after its worker process died (local executor;
#: Dask retries through the scheduler's ``distributed.scheduler.allowed-failures``)
MAX_ATTEMPTS = 3
#: seconds between two looks whether a run folder another process holds is free
BUSY_POLL_SECONDS = 2.0


def plan(runs, out) -> list:
    """[(run, state)] of ``runs`` in DIR ``out``, nothing run or written: state "done"
    (its results.json is complete with the run's settings), "diverged" (its folder
    records that it diverged: :func:`~intsim.app.sweep.worker.load_diverged`; not run
    again), "resumes" (its folder holds a checkpoint) or "to run"."""
    out = os.fspath(out)
    res = []
    for r in runs:
        if load_done(r, out) is not None:
            st = "done"
        elif load_diverged(r, out) is not None:
            st = "diverged"
        elif runfolder.has_checkpoint(os.path.join(out, r.key)):
            st = "resumes"
        else:
            st = "to run"
        res.append((r, st))
    return res


def run_sweep(runs, out, executor=None, log=None) -> dict:
    """Run every unfinished run of ``runs`` (SweepRuns) into the folder ``out``.

    executor: a LocalExecutor/DaskExecutor (default: LocalExecutor()); it is closed
    at the end. Complete runs are skipped, interrupted ones resume from their last
    checkpoint. Each run's status goes to ``out``/sweep.json as it changes; a
    failure is recorded there with its error and the other runs go on. A run that
    diverges (NaN/inf) is recorded as "diverged" with its cause: a final state like
    "done", so a run whose folder records that it diverged is not run again. A run whose
    folder another process holds (another sweep into ``out``) is not run here: the
    client waits until that process lets go of it and then takes it up (usually
    finding it complete).
    Returns {key: entry} (status "done"/"diverged"/"failed"/...) of ``runs``.
    Progress lines (done/running/failed/diverged, ETA) go to ``log`` (default stderr).
    """
    out = os.path.abspath(os.fspath(out))
    os.makedirs(out, exist_ok=True)
    ex = LocalExecutor() if executor is None else executor
    state = SweepState(out)
    runs = list({r.key: r for r in runs}.values())
    pending = deque()
    already = {"done": 0, "diverged": 0}
    for r in runs:
        if load_done(r, out) is not None:
            state.update(r.key, status="done", label=r.label, settings=r.settings(), error=None)
            already["done"] += 1
        elif (ev := load_diverged(r, out)) is not None:
            state.update(r.key, status="diverged", label=r.label, settings=r.settings(),
                         error=diverged_line(ev), tasks_done=ev.get("tasks_done"))
            already["diverged"] += 1
        else:
            state.update(r.key, status="pending", label=r.label, settings=r.settings())
            pending.append(r)
    state.save()
    prog = SweepProgress(len(runs), already["done"], log, already_diverged=already["diverged"])
    prog.start(len(pending), ex.describe(), out)
    inflight: dict = {}
    waiting: dict = {}                      # key -> run: another process holds its folder
    tries: dict = {}                        # starts of each run in this sweep

    def attempted(key, **fields):           # a worker ran the run (not busy, not skipped)
        e = state.update(key, **fields)
        e["attempts"] = int(e.get("attempts", 0)) + 1

    def line(msg):
        prog.line(msg, len(inflight), len(pending) + len(inflight) + len(waiting), len(waiting))

    try:
        while pending or inflight or waiting:
            if waiting and not pending:     # the other runs are handed out: look again
                for key in [k for k in waiting if not lock_held(os.path.join(out, k))]:
                    pending.append(waiting.pop(key))
                if not pending and not inflight:
                    time.sleep(BUSY_POLL_SECONDS)
                    continue
            submitted = False
            while pending and len(inflight) < ex.capacity():
                r = pending.popleft()
                inflight[ex.submit(r, out)] = r
                state.update(r.key, status="running", started=_now())
                tries[r.key] = tries.get(r.key, 0) + 1
                submitted = True
            if submitted:
                state.save()
            finished = ex.wait_first(list(inflight), BUSY_POLL_SECONDS if waiting else None)
            for fut in finished:
                r = inflight.pop(fut)
                try:
                    rec = fut.result()
                except Exception as exc:    # the worker died (or dask gave up: KilledWorker)
                    if ex.worker_died(exc):
                        # every run on the broken pool comes back here: run them again
                        # (from their checkpoints) up to MAX_ATTEMPTS times each
                        if tries.get(r.key, 1) < MAX_ATTEMPTS:
                            attempted(r.key, status="pending",
                                      error=f"worker process died ({exc}); retrying")
                            pending.appendleft(r)
                            line(f"{r.key}: worker died; will resume from its checkpoint")
                            continue
                    rec = {"key": r.key, "status": "failed", "seconds": None,
                           "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
                if rec["status"] == BUSY:   # not an attempt of ours: it runs elsewhere
                    tries[r.key] -= 1
                    state.update(r.key, status="running")
                    waiting[r.key] = r
                    line(f"{r.key}: another process holds its folder; "
                         f"taken up again when it is free")
                elif rec["status"] == "done":
                    if rec.get("skipped"):  # completed by another process meanwhile
                        state.update(r.key, fresh=True, status="done", error=None,
                                     label=r.label, settings=r.settings())
                    else:
                        attempted(r.key, status="done", error=None,
                                  seconds=rec.get("seconds"), host=rec.get("host"))
                    line(prog.run_done(r.key, rec))
                elif rec["status"] == "diverged":
                    fields = dict(status="diverged", error=rec.get("error"),
                                  tasks_done=rec.get("tasks_done"))
                    if rec.get("skipped"):  # diverged in another process meanwhile
                        state.update(r.key, fresh=True, label=r.label, settings=r.settings(),
                                     **fields)
                    else:
                        attempted(r.key, seconds=rec.get("seconds"), host=rec.get("host"),
                                  **fields)
                    line(prog.run_diverged(r.key, rec))
                else:
                    attempted(r.key, status="failed", error=rec.get("error"),
                              traceback=rec.get("traceback"), host=rec.get("host"),
                              seconds=rec.get("seconds"))
                    line(prog.run_failed(r.key, rec))
            if finished:
                state.save()
    except BaseException:
        for r in inflight.values():
            state.update(r.key, status="interrupted")
        for r in pending:
            state.update(r.key, status="pending")
        state.save()
        ex.close(cancel=True)
        raise
    ex.close()
    prog.end(out)
    return {r.key: state.runs[r.key] for r in runs}
