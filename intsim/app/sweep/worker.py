"""One run of a sweep, in a worker process: claim its folder, skip it when it is
complete, else run or resume it (docs/sweeps.md).

:func:`run_one` is the task every executor runs. It first takes the run
folder's lock (``RUN/.lock``, :class:`intsim.app.runfolder.RunLock`) without
waiting. When another process holds it (another ``intsim sweep`` on the same
DIR, a second attempt of a task Dask believed lost, an ``intsim train
--resume``), it returns status ``"busy"`` at once and the client tries the run
again once the lock is free. Under the lock it looks whether the run is
complete (then nothing runs: ``"skipped"``) or diverged (:func:`load_diverged`:
nothing runs either, status ``"diverged"``), else it runs the run, resuming
from the folder's checkpoint, and holds the lock until the run's files are
written. So no run is ever run by two processes at once, nor again once it is
complete or has diverged.
"""
from __future__ import annotations

import json
import os
import socket
import time
import traceback

from intsim.app import jobs as _jobs
from intsim.app import runfolder as runio
from intsim.app.driver import run as drive
from intsim.app.sweep.spec import SweepRun
from intsim.app.sweep.state import diverged_line, last_event
from intsim.errors import TrainingDiverged
from intsim.kernels.runtime import configure_runtime

#: run_one's status of a run whose folder another process holds
BUSY = "busy"


def load_done(run: SweepRun, out) -> dict | None:
    """The run's results.json when it is complete and has the run's settings, else None."""
    try:
        with open(os.path.join(os.fspath(out), run.key, runio.RESULTS)) as f:
            d = json.load(f)
    except (OSError, ValueError):
        return None
    if not d.get("complete") or not isinstance(d.get("config"), dict) or \
            _jobs.settings(d["config"]) != run.settings():
        return None
    return d


def load_diverged(run: SweepRun, out) -> dict | None:
    """The run's ``diverged`` event (its log.jsonl's last line, a dict: tasks_done,
    task, stage, epoch, batch, cause, time) when its folder records a run of the
    run's settings that diverged, else None.

    That is: the folder's log.jsonl ends with a ``diverged`` event, and its
    results.json has the run's settings and ``complete: false`` (the tasks finished
    before the divergence). A run that diverged in its first task has no
    results.json; then the settings of the log's last ``start``/``resume`` event
    are compared instead.
    """
    folder = os.path.join(os.fspath(out), run.key)
    ev = last_event(folder)
    if ev is None or ev.get("event") != "diverged":
        return None
    try:
        with open(os.path.join(folder, runio.RESULTS)) as f:
            d = json.load(f)
    except FileNotFoundError:
        d = {"complete": False, "config": _started_config(folder)}
    except (OSError, ValueError):
        return None
    if not isinstance(d, dict) or d.get("complete") is not False or \
            not isinstance(d.get("config"), dict) or \
            _jobs.settings(d["config"]) != run.settings():
        return None
    return ev


def _started_config(folder) -> dict | None:
    """The config of the last start/resume event of the folder's log.jsonl."""
    cfg = None
    try:
        with open(os.path.join(folder, runio.LOG)) as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if isinstance(ev, dict) and ev.get("event") in ("start", "resume"):
                    cfg = ev.get("config")
    except OSError:
        return None
    return cfg


def run_one(run: SweepRun, out) -> dict:
    """Run (or load, or resume) one run in this process; never raises on a run's failure.

    Returns {"key", "status": "done"|"diverged"|"failed"|"busy", "seconds", "summary"
    (done), "skipped" (done, diverged: it was complete, or had diverged, already;
    nothing ran), "error" (failed: the exception's line; diverged: the line saying
    where it diverged and why; busy: who holds the folder), "tasks_done" (diverged:
    the tasks finished before, kept in its results.json), "host", "pid"}.
    A run that diverges (:class:`intsim.errors.TrainingDiverged`) is "diverged", not
    "failed": it would diverge again from the same settings.
    """
    configure_runtime()         # e.g. Dask workers start with MALLOC_TRIM_THRESHOLD_=65536
    t0 = time.perf_counter()
    rec = {"key": run.key, "host": socket.gethostname(), "pid": os.getpid()}
    lock = None
    try:
        folder = os.path.join(os.fspath(out), run.key)
        os.makedirs(folder, exist_ok=True)
        try:
            lock = runio.RunLock(folder).acquire()
        except runio.RunFolderBusy as e:
            rec.update(status=BUSY, error=str(e))
        else:
            res = load_done(run, out)
            ev = None if res is not None else load_diverged(run, out)
            rec["skipped"] = res is not None or ev is not None
            if ev is not None:
                rec.update(status="diverged", error=diverged_line(ev),
                           tasks_done=ev.get("tasks_done"))
            else:
                if res is None:
                    resume = any(name != runio.LOCK for name in os.listdir(folder))
                    res = drive(run.config, folder, resume=resume, keep_checkpoint=False,
                                lock=lock)
                rec.update(status="done", summary=_jobs.run_summary(res))
    except TrainingDiverged as e:       # an outcome: the next sweep does not run it again
        ev = load_diverged(run, out) or {}
        rec.update(status="diverged", error=str(e).splitlines()[0],
                   tasks_done=ev.get("tasks_done"))
    except BaseException as e:          # recorded by the client; the sweep goes on
        if isinstance(e, (SystemExit, KeyboardInterrupt)) and not isinstance(e, Exception):
            msg = f"{type(e).__name__}: interrupted"
        else:
            msg = f"{type(e).__name__}: {e}".strip()
        rec.update(status="failed", error=msg.splitlines()[0] if msg else type(e).__name__,
                   traceback=traceback.format_exc(limit=8))
    finally:
        if lock is not None:
            lock.release()
    rec["seconds"] = time.perf_counter() - t0
    return rec
