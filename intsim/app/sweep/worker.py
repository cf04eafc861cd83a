"""One run of a sweep, in a worker process: claim its folder, skip it when it is
complete, else run or resume it (docs/sweeps.md).

:func:`run_one` is the task every executor runs. It first takes the run
folder's lock (``RUN/.lock``, :class:`intsim.app.runfolder.RunLock`) without
waiting. When another process holds it (another ``intsim sweep`` on the same
DIR, a second attempt of a task Dask believed lost, an ``intsim train
--resume``), it returns status ``"busy"`` at once and the client tries the run
again once the lock is free. Under the lock it looks whether the run is
complete (then nothing runs: ``"skipped"``), else it runs the run, resuming
from the folder's checkpoint, and holds the lock until the run's files are
written. So no run is ever run by two processes at once, nor again once it is
complete.
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


def run_one(run: SweepRun, out) -> dict:
    """Run (or load, or resume) one run in this process; never raises on a run's failure.

    Returns {"key", "status": "done"|"failed"|"busy", "seconds", "summary" (done),
    "skipped" (done: it was complete already, nothing ran), "error" (failed;
    busy: who holds the folder), "host", "pid"}.
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
            rec["skipped"] = res is not None
            if res is None:
                resume = any(name != runio.LOCK for name in os.listdir(folder))
                res = drive(run.config, folder, resume=resume, keep_checkpoint=False, lock=lock)
            rec.update(status="done", summary=_jobs.run_summary(res))
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
