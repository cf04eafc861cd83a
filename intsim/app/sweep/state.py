"""A sweep's bookkeeping: DIR/sweep.json (the status of every run) and the run
folders' locks as seen from outside (docs/sweeps.md, "Progress and status").

Only the client writes sweep.json, atomically, merging its entries under a
file lock (DIR/.sweep.lock) with what other clients wrote, since several
SPECs, or the same SPEC twice, may share DIR. Whether a run is being run is
read from its folder's lock (:class:`intsim.app.runfolder.RunLock`), which
the process running it holds.
"""
from __future__ import annotations

import json
import os
import time
from typing import Mapping

try:
    import fcntl
except ImportError:                 # not on Windows: no locks (as RunLock)
    fcntl = None

from intsim.app import runfolder as runio
from intsim.app.config import ConfigError
from intsim.errors import TrainingDiverged

SWEEP_FILE = "sweep.json"
SWEEP_LOCK = ".sweep.lock"
#: a run's status in sweep.json; "done" and "diverged" are final (a sweep does not run
#: them again), "failed" runs are retried by the next sweep
STATUSES = ("pending", "running", "done", "failed", "diverged", "interrupted")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def last_event(folder) -> dict | None:
    """The last event of the run folder's log.jsonl (a dict), or None (no log, or its
    last line is not a JSON object). Reads the file's tail only."""
    path = os.path.join(os.fspath(folder), runio.LOG)
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - 65536)
            f.seek(start)
            tail = f.read()
            lines = tail.splitlines()
            while lines and not lines[-1].strip():
                lines.pop()
            if not lines:
                return None
            if len(lines) == 1 and start > 0:        # a last line longer than the tail
                f.seek(0)
                lines = [ln for ln in f.read().splitlines() if ln.strip()]
        ev = json.loads(lines[-1])
    except (OSError, ValueError):
        return None
    return ev if isinstance(ev, dict) else None


def diverged_line(ev: dict) -> str:
    """The one line a run that diverged ended with (TrainingDiverged's message), from
    its log.jsonl ``diverged`` event."""
    task = ev.get("task")
    return str(TrainingDiverged(task if isinstance(task, int) else -1, ev.get("stage"),
                                ev.get("epoch"), ev.get("batch"), ev.get("cause")))


class SweepState:
    """DIR/sweep.json: status of every run a sweep into DIR has seen.

    Written by the client only, atomically, merged under a file lock with what
    other clients wrote (several SPECs may share DIR), after every change.
    """

    def __init__(self, out):
        self.out = os.fspath(out)
        self.path = os.path.join(self.out, SWEEP_FILE)
        self.runs: dict[str, dict] = {}     # the entries this client changed

    @staticmethod
    def read(out) -> dict:
        try:
            with open(os.path.join(os.fspath(out), SWEEP_FILE)) as f:
                d = json.load(f)
        except FileNotFoundError:
            return {"format": 1, "runs": {}}
        except ValueError as e:
            raise ConfigError(f"{os.path.join(os.fspath(out), SWEEP_FILE)} is not valid "
                              f"JSON: {e}") from None
        d.setdefault("runs", {})
        return d

    def update(self, key: str, fresh: bool = False, **fields) -> dict:
        """Set ``fields`` of run ``key``'s entry (saved by :meth:`save`). The entry is
        read from sweep.json the first time, and again when ``fresh`` (another
        client ran the run: its host, seconds, ... are kept)."""
        if key not in self.runs or fresh:
            self.runs[key] = dict(self.read(self.out)["runs"].get(key, {}))
        e = self.runs[key]
        e.update(fields, updated=_now())
        return e

    def save(self) -> None:
        os.makedirs(self.out, exist_ok=True)
        with _FileLock(os.path.join(self.out, SWEEP_LOCK)):
            d = self.read(self.out)
            d["format"] = 1
            d["runs"].update(self.runs)
            runio.atomic_write_json(self.path, d)


class _FileLock:
    def __init__(self, path):
        self.path, self.fd = path, None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o666)
        if fcntl is not None:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def lock_held(folder) -> bool:
    """Whether a process holds the run folder's lock (intsim.app.runfolder.RunLock)."""
    path = os.path.join(os.fspath(folder), runio.LOCK)
    if fcntl is None or not os.path.exists(path):
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def status(out) -> dict:
    """{key: entry} of DIR/sweep.json, each entry's "status" checked against its folder:
    done when its results.json is complete; "diverged" (with its cause as "error")
    when no process holds it and its log.jsonl ends with a ``diverged`` event;
    "interrupted" for a "running" (or "done"/"diverged") run no process holds whose
    folder says neither (its client or worker died, or its folder was deleted; the
    next sweep resumes or runs it)."""
    d = SweepState.read(out)
    res = {}
    for key, e in d["runs"].items():
        e = dict(e)
        folder = os.path.join(os.fspath(out), key)
        try:
            with open(os.path.join(folder, runio.RESULTS)) as f:
                complete = bool(json.load(f).get("complete"))
        except (OSError, ValueError):
            complete = False
        held = lock_held(folder)
        ev = None if complete or held else last_event(folder)
        if complete:
            e["status"] = "done"
        elif ev is not None and ev.get("event") == "diverged":
            e.update(status="diverged", error=diverged_line(ev))
        elif e.get("status") in ("running", "done", "diverged"):
            e["status"] = "running" if held else "interrupted"
        e["checkpoint"] = runio.has_checkpoint(folder)
        res[key] = e
    return res


def count(entries: Mapping[str, dict]) -> dict:
    c = {s: 0 for s in STATUSES}
    for e in entries.values():
        c[e.get("status", "pending")] = c.get(e.get("status", "pending"), 0) + 1
    return c
