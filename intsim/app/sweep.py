"""``intsim sweep``: a grid of runs from a SPEC file, cached, resumable, on a process
pool or a Dask cluster (docs/sweeps.md).

A SPEC is a TOML file::

    description = "..."            # optional
    out = "results/runs"           # optional default for --out (relative to the SPEC)

    [base]                         # settings of every run: the keys of `intsim train --config`
    dataset = "hapt"
    schedule = "paper"

    [grid]                         # lists expand to their product (in file order)
    method = ["lwf", "icarl"]
    seed = [42467, 88801]
    arith = [{arith = "fp"}, {arith = "hdqt", bits = 4, acc_bits = 8}]   # tables: several settings

    [[runs]]                       # extra runs: base + these settings (not crossed with [grid])
    method = "icarl"
    arith = "luq"
    acc_bits = "none"
    [runs.grid]                    # optional: an extra entry's own grid
    seed = [42467, 88801]

Every run is resolved like ``intsim train`` resolves its settings (threads
default to 1 here, not to the machine's cores, so a run's identity does not
depend on the machine; arithmetic settings the run's arithmetic does not take
are dropped), completed with its schedule's values, and named
:func:`intsim.app.jobs.run_key` of those settings: the same settings give the
same folder as a benchmark :class:`~intsim.app.jobs.Job`, so sweeps and the
benchmark scripts share their cache. Each run folder is an ordinary
``intsim train`` run folder (docs/run-folder.md; the checkpoint is deleted once
the run is complete).

:func:`run_sweep` skips complete runs, resumes interrupted ones from their last
checkpoint, and records each run's status (pending/running/done/failed, with
the error text of a failure) in ``DIR/sweep.json``; a failed run never stops
the others. Executors: ``local`` (a spawn process pool, one thread per worker,
at most one worker per core) and ``dask`` (``dask.distributed``: a running
scheduler or a LocalCluster).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping

from intsim.app import jobs as _jobs
from intsim.app import runfolder as runio
from intsim.app.config import ARITH_SETTINGS, ConfigError, RunConfig, load_toml

SWEEP_FILE = "sweep.json"
SWEEP_LOCK = ".sweep.lock"
SPEC_KEYS = ("description", "out", "base", "grid", "runs")
STATUSES = ("pending", "running", "done", "failed", "interrupted")
#: times a run is started again after its worker process died (local executor;
#: Dask retries through the scheduler's ``distributed.scheduler.allowed-failures``)
MAX_ATTEMPTS = 3
#: environment of every worker process: one thread each
THREAD_ENV = {"INTSIM_THREADS": "1", **{v: "1" for v in _jobs.THREAD_VARS}}
DASK_HINT = 'the dask executor needs dask.distributed: pip install -e ".[dask]"'
_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


class SpecError(ConfigError):
    """A SPEC file is malformed or one of its runs has bad settings (one-line message)."""


# ---------------------------------------------------------------- spec

@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep.

    key: its folder name (:func:`intsim.app.jobs.run_key` of ``resolved``).
    config: the resolved :class:`RunConfig` it runs (as ``intsim train`` would).
    resolved: ``config`` with the schedule's values filled in (its config.toml).
    label: the grid point, e.g. ``method=icarl seed=1 arith=fp``.
    """
    key: str
    config: RunConfig
    resolved: RunConfig
    label: str

    def settings(self) -> dict:
        """The settings that differ from RunConfig's defaults (what the key hashes)."""
        return _jobs.settings(self.resolved.to_dict())


@dataclass(frozen=True)
class Spec:
    """A parsed SPEC: its runs (duplicates removed, in order) and default output folder."""
    source: str
    runs: tuple
    out: str | None = None
    description: str = ""
    duplicates: int = 0


def _norm(d: Mapping) -> dict:
    return {str(k).replace("-", "_"): v for k, v in d.items()}


def _fmt(v: Any) -> str:
    if isinstance(v, Mapping):
        return ",".join(f"{k}={_fmt(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ",".join(_fmt(x) for x in v)
    return str(v).lower() if isinstance(v, bool) else str(v)


def _check_settings(table: Mapping, where: str) -> dict:
    """Setting names known (values are checked when each run resolves)."""
    out = _norm(table)
    for k, v in out.items():
        if k not in _FIELDS:
            raise SpecError(f"{where}: unknown setting {k!r}")
        if isinstance(v, Mapping) and k != "arith_options":
            raise SpecError(f"{where}: {k} must be a value, not a table")
    return out


def _axes(grid: Mapping, where: str) -> list:
    """[(name, [(label, {settings}), ...]), ...] of a [grid] table."""
    if not isinstance(grid, Mapping):
        raise SpecError(f"{where} must be a table of key = [values]")
    axes = []
    for name, values in _norm(grid).items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}.{name} must be a non-empty list of values, got {values!r}")
        tables = [isinstance(v, Mapping) for v in values]
        if name == "arith_options":
            if not all(tables):
                raise SpecError(f"{where}.arith_options must be a list of tables")
            choices = [(f"arith_options={{{_fmt(v)}}}", {"arith_options": dict(v)})
                       for v in values]
        elif all(tables):               # each choice sets several settings
            choices = [(_fmt(v), _check_settings(v, f"{where}.{name}")) for v in values]
        elif any(tables):
            raise SpecError(f"{where}.{name} mixes tables and values")
        elif name not in _FIELDS:
            raise SpecError(f"{where}: unknown setting {name!r} (a grid axis that is not a "
                            f"setting needs tables of settings as its values)")
        else:
            choices = [(f"{name}={_fmt(v)}", {name: v}) for v in values]
        axes.append((name, choices))
    return axes


def _points(axes: list):
    """(label, settings) of every grid point, the last axis varying fastest."""
    if not axes:
        yield "", {}
        return
    for combo in itertools.product(*[c for _, c in axes]):
        label, values = [], {}
        for clabel, settings in combo:
            label.append(clabel)
            values.update(settings)
        yield " ".join(label), values


def _short_label(cfg: RunConfig) -> str:
    """The arith part of a folder name, as :func:`intsim.app.jobs.arith_label` gives it."""
    from intsim.arith import ARITHS
    if "bits" not in ARITHS[cfg.arith].config_fields:
        return cfg.arith
    acc = cfg.acc_bits if "acc_bits" in ARITHS[cfg.arith].config_fields else None
    return f"{cfg.arith}{cfg.bits}-{acc if acc is not None else 'w'}"


def make_run(values: Mapping[str, Any], label: str = "", base_dir: str | None = None) -> SweepRun:
    """A :class:`SweepRun` from flat settings (ConfigError naming a bad one)."""
    from intsim.app.build import build_arith, cil_config, complete_config
    from intsim.app.config import resolve
    from intsim.arith import ARITHS
    values = _norm(values)
    values.setdefault("threads", 1)
    kind = str(values.get("arith", _FIELDS["arith"].default)).lower()
    if kind in ARITHS:              # settings its arithmetic does not take: the defaults
        for k in ARITH_SETTINGS:
            if k not in ARITHS[kind].config_fields:
                values.pop(k, None)
    data = values.get("data")
    if isinstance(data, str) and data.lower() != "none" and base_dir and not os.path.isabs(data):
        values["data"] = os.path.normpath(os.path.join(base_dir, os.path.expanduser(data)))
    cfg = resolve(None, values)
    build_arith(cfg)
    resolved = complete_config(cfg, cil_config(cfg))
    return SweepRun(_jobs.run_key(resolved, _short_label(resolved)), cfg, resolved, label)


def parse_spec(raw: Mapping, source: str = "spec", base_dir: str | None = None) -> Spec:
    """A :class:`Spec` from a SPEC's TOML tables; SpecError (one line) on any problem."""
    raw = _norm(raw)
    bad = [k for k in raw if k not in SPEC_KEYS]
    if bad:
        raise SpecError(f"{source}: unknown key {bad[0]!r} (a SPEC has {', '.join(SPEC_KEYS)}; "
                        f"run settings go in [base], [grid] or [[runs]])")
    base = raw.get("base", {})
    if not isinstance(base, Mapping):
        raise SpecError(f"{source}: base must be a table [base]")
    base = _check_settings(base, f"{source} [base]")
    axes = _axes(raw.get("grid", {}), f"{source} [grid]")
    extra = raw.get("runs", [])
    if not isinstance(extra, list) or not all(isinstance(e, Mapping) for e in extra):
        raise SpecError(f"{source}: runs must be an array of tables [[runs]]")
    for name in ("description", "out"):
        if name in raw and not isinstance(raw[name], str):
            raise SpecError(f"{source}: {name} must be a string")

    points = [(label, {**base, **values}) for label, values in _points(axes)]
    for i, entry in enumerate(extra, 1):
        entry = _norm(entry)
        sub = entry.pop("grid", {})
        entry = _check_settings(entry, f"{source} [[runs]] #{i}")
        name = " ".join(f"{k}={_fmt(v)}" for k, v in entry.items())
        for label, values in _points(_axes(sub, f"{source} [[runs]] #{i} grid")):
            points.append(((f"{name} {label}").strip(), {**base, **entry, **values}))
    runs, seen = [], set()
    for label, values in points:
        try:
            r = make_run(values, label, base_dir)
        except ConfigError as e:
            raise SpecError(f"{source}: run {label or '(base)'}: {e}") from None
        if r.key not in seen:
            seen.add(r.key)
            runs.append(r)
    out = raw.get("out")
    if out is not None and base_dir and not os.path.isabs(out):
        out = os.path.normpath(os.path.join(base_dir, os.path.expanduser(out)))
    return Spec(source, tuple(runs), out, raw.get("description", ""), len(points) - len(runs))


def load_spec(path) -> Spec:
    """Read and expand a SPEC file (SpecError, one line, naming the file and the bad key)."""
    path = os.fspath(path)
    raw = load_toml(path, "spec file", SpecError)
    return parse_spec(raw, path, os.path.dirname(os.path.abspath(path)))


# ---------------------------------------------------------------- one run (in a worker)

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

    Returns {"key", "status": "done"|"failed", "seconds", "summary" (done),
    "error" (failed), "host", "pid"}.
    """
    import socket
    import traceback
    t0 = time.perf_counter()
    rec = {"key": run.key, "host": socket.gethostname(), "pid": os.getpid()}
    try:
        res = load_done(run, out)
        if res is None:
            from intsim.app.driver import run as drive
            folder = os.path.join(os.fspath(out), run.key)
            resume = os.path.isdir(folder) and bool(os.listdir(folder))
            res = drive(run.config, folder, resume=resume, keep_checkpoint=False)
        rec.update(status="done", summary=_jobs.run_summary(res))
    except BaseException as e:          # recorded by the client; the sweep goes on
        if isinstance(e, (SystemExit, KeyboardInterrupt)) and not isinstance(e, Exception):
            msg = f"{type(e).__name__}: interrupted"
        else:
            msg = f"{type(e).__name__}: {e}".strip()
        rec.update(status="failed", error=msg.splitlines()[0] if msg else type(e).__name__,
                   traceback=traceback.format_exc(limit=8))
    rec["seconds"] = time.perf_counter() - t0
    return rec


# ---------------------------------------------------------------- sweep.json

def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


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

    def update(self, key: str, **fields) -> dict:
        if key not in self.runs:
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
        try:
            import fcntl
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except ImportError:         # pragma: no cover
            pass
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def _lock_held(folder) -> bool:
    """Whether a process holds the run folder's lock (intsim.app.runfolder.RunLock)."""
    path = os.path.join(os.fspath(folder), runio.LOCK)
    if not os.path.exists(path):
        return False
    try:
        import fcntl
        fd = os.open(path, os.O_RDONLY)
    except (ImportError, OSError):
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
    done when its results.json is complete, "interrupted" for a "running" run no
    process holds (its client or worker died; the next sweep resumes it)."""
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
        if complete:
            e["status"] = "done"
        elif e.get("status") in ("running", "done"):
            if not _lock_held(folder):
                e["status"] = "interrupted"
            else:
                e["status"] = "running"
        e["checkpoint"] = runio.has_checkpoint(folder)
        res[key] = e
    return res


def count(entries: Mapping[str, dict]) -> dict:
    c = {s: 0 for s in STATUSES}
    for e in entries.values():
        c[e.get("status", "pending")] = c.get(e.get("status", "pending"), 0) + 1
    return c


# ---------------------------------------------------------------- executors

class LocalExecutor:
    """A spawn process pool of ``workers`` processes (at most one per core), each
    with one thread (THREAD_ENV in its environment before it imports numpy)."""
    name = "local"

    def __init__(self, workers: int | None = None):
        from intsim.kernels.threads import available_cores
        cores = available_cores()
        self.workers = max(1, min(int(workers) if workers else cores, cores))
        self.requested = workers
        self._pool = None
        self._saved = None

    def describe(self) -> str:
        capped = (f" (--workers {self.requested} capped at the {self.workers} core(s))"
                  if self.requested and self.requested > self.workers else "")
        return f"local process pool, {self.workers} worker(s){capped}"

    def _start(self):
        import concurrent.futures as cf
        import multiprocessing as mp
        if self._saved is None:     # children copy os.environ when they start
            self._saved = {v: os.environ.get(v) for v in THREAD_ENV}
            os.environ.update(THREAD_ENV)
        self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))

    def capacity(self) -> int:
        return self.workers

    def submit(self, run: SweepRun, out):
        if self._pool is None:
            self._start()
        return self._pool.submit(run_one, run, os.fspath(out))

    def wait_first(self, futures):
        import concurrent.futures as cf
        done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return done

    def worker_died(self, exc: BaseException) -> bool:
        """Whether ``exc`` (from a future) means the worker process died; restarts the pool."""
        from concurrent.futures.process import BrokenProcessPool
        if not isinstance(exc, BrokenProcessPool):
            return False
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        return True

    def close(self, cancel: bool = False):
        if self._pool is not None:
            if cancel:
                for p in list(getattr(self._pool, "_processes", {}).values()):
                    try:
                        p.terminate()
                    except Exception:   # pragma: no cover
                        pass
            self._pool.shutdown(wait=not cancel, cancel_futures=True)
            self._pool = None
        if self._saved is not None:
            for v, old in self._saved.items():
                if old is None:
                    os.environ.pop(v, None)
                else:
                    os.environ[v] = old
            self._saved = None


class DaskExecutor:
    """``dask.distributed``: connect to ``scheduler`` (an address), else start a
    LocalCluster of ``workers`` processes (at most one per core) with one thread each.
    Each run is a task (``client.submit(run_one, ..., pure=False)``); at most as
    many are submitted as the cluster has worker threads, so "running" is exact."""
    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None):
        try:
            import distributed
        except ImportError:
            raise ConfigError(DASK_HINT) from None
        self._distributed = distributed
        self.cluster = None
        if scheduler:
            try:
                self.client = distributed.Client(scheduler, timeout="20s")
            except (OSError, TimeoutError, ValueError) as e:
                raise ConfigError(f"cannot connect to the dask scheduler at {scheduler}: "
                                  f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") \
                    from None
            self.where = f"dask scheduler {scheduler}"
        else:
            from intsim.kernels.threads import available_cores
            cores = available_cores()
            n = max(1, min(int(workers) if workers else cores, cores))
            saved = {v: os.environ.get(v) for v in THREAD_ENV}
            os.environ.update(THREAD_ENV)       # the nannies' worker processes copy it
            self._saved = saved
            self.cluster = distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
            self.client = distributed.Client(self.cluster)
            self.where = f"dask LocalCluster, {n} worker process(es)"

    def describe(self) -> str:
        return self.where

    def capacity(self) -> int:
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:       # pragma: no cover
            return 1

    def submit(self, run: SweepRun, out):
        return self.client.submit(run_one, run, os.fspath(out), pure=False)

    def wait_first(self, futures):
        done, _ = self._distributed.wait(list(futures), return_when="FIRST_COMPLETED")
        return done

    def worker_died(self, exc: BaseException) -> bool:
        return False            # the scheduler already retried it (allowed-failures)

    def close(self, cancel: bool = False):
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
                for v, old in self._saved.items():
                    if old is None:
                        os.environ.pop(v, None)
                    else:
                        os.environ[v] = old


def make_executor(name: str = "local", workers: int | None = None, scheduler: str | None = None):
    """The executor ``name`` ("local" or "dask"); ConfigError on bad options."""
    if workers is not None and int(workers) < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if name == "local":
        if scheduler:
            raise ConfigError("--scheduler needs --executor dask")
        return LocalExecutor(workers)
    if name == "dask":
        if scheduler and workers:
            raise ConfigError("--workers starts a dask LocalCluster; with --scheduler the "
                              "cluster's own workers run the sweep")
        return DaskExecutor(workers, scheduler)
    raise ConfigError(f"unknown executor {name!r} (choose from local, dask)")


# ---------------------------------------------------------------- the sweep

def _fmt_min(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def run_sweep(runs, out, executor=None, log=None) -> dict:
    """Run every unfinished run of ``runs`` (SweepRuns) into the folder ``out``.

    executor: a LocalExecutor/DaskExecutor (default: LocalExecutor()); it is closed
    at the end. Complete runs are skipped, interrupted ones resume from their last
    checkpoint. Each run's status goes to ``out``/sweep.json as it changes; a
    failure is recorded there with its error and the other runs go on.
    Returns {key: entry} (status "done"/"failed"/...) of ``runs``.
    Progress lines (done/running/failed, ETA) go to ``log`` (default stderr).
    """
    log = sys.stderr if log is None else log
    out = os.path.abspath(os.fspath(out))
    os.makedirs(out, exist_ok=True)
    ex = LocalExecutor() if executor is None else executor
    state = SweepState(out)
    runs = list({r.key: r for r in runs}.values())
    pending = deque()
    for r in runs:
        if load_done(r, out) is not None:
            state.update(r.key, status="done", label=r.label, settings=r.settings(), error=None)
        else:
            state.update(r.key, status="pending", label=r.label, settings=r.settings())
            pending.append(r)
    state.save()
    n_total, n_skip = len(runs), len(runs) - len(pending)
    n_done, n_failed = n_skip, 0
    print(f"sweep: {n_total} runs, {n_skip} already done, {len(pending)} to run on "
          f"{ex.describe()}; results in {out}", file=log, flush=True)
    inflight: dict = {}
    tries: dict = {}                        # starts of each run in this sweep
    t0 = time.perf_counter()
    finished = 0

    def line(msg):
        el = time.perf_counter() - t0
        left = len(pending) + len(inflight)
        eta = f"ETA {_fmt_min(el / finished * left)}" if finished and left else (
            "ETA -" if left else "")
        print(f"[done {n_done}/{n_total} running {len(inflight)} failed {n_failed}; "
              f"{_fmt_min(el)}{'; ' + eta if eta else ''}] {msg}", file=log, flush=True)

    try:
        while pending or inflight:
            while pending and len(inflight) < ex.capacity():
                r = pending.popleft()
                inflight[ex.submit(r, out)] = r
                e = state.update(r.key, status="running", started=_now())
                e["attempts"] = int(e.get("attempts", 0)) + 1
                tries[r.key] = tries.get(r.key, 0) + 1
            state.save()
            for fut in ex.wait_first(list(inflight)):
                r = inflight.pop(fut)
                try:
                    rec = fut.result()
                except Exception as exc:    # the worker died (or dask gave up: KilledWorker)
                    if ex.worker_died(exc):
                        # every run on the broken pool comes back here: run them again
                        # (from their checkpoints) up to MAX_ATTEMPTS times each
                        if tries.get(r.key, 1) < MAX_ATTEMPTS:
                            state.update(r.key, status="pending",
                                         error=f"worker process died ({exc}); retrying")
                            pending.appendleft(r)
                            line(f"{r.key}: worker died; will resume from its checkpoint")
                            continue
                    rec = {"key": r.key, "status": "failed", "seconds": None,
                           "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
                finished += 1
                if rec["status"] == "done":
                    n_done += 1
                    state.update(r.key, status="done", error=None, seconds=rec.get("seconds"),
                                 host=rec.get("host"))
                    s = rec["summary"]
                    nme = f" nme {s['nme_last']:.1f}/{s['nme_avg']:.1f}" \
                        if s.get("nme_last") is not None else ""
                    line(f"{r.key}: cnn last/avg {s['cnn_last']:.1f}/{s['cnn_avg']:.1f}{nme} "
                         f"({_fmt_min(rec.get('seconds') or 0)})")
                else:
                    n_failed += 1
                    state.update(r.key, status="failed", error=rec.get("error"),
                                 traceback=rec.get("traceback"), host=rec.get("host"),
                                 seconds=rec.get("seconds"))
                    line(f"FAILED {r.key}: {rec.get('error')}")
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
    print(f"sweep: {n_done} done, {n_failed} failed of {n_total} in "
          f"{_fmt_min(time.perf_counter() - t0)}" +
          (f"; see `intsim sweep status {out}`" if n_failed else ""), file=log, flush=True)
    return {r.key: state.runs[r.key] for r in runs}
