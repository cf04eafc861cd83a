"""Where a sweep's runs execute: a local process pool or a Dask cluster (docs/sweeps.md,
"Executors").

Both take runs (:class:`~intsim.app.sweep.spec.SweepRun`) as tasks of
:func:`~intsim.app.sweep.worker.run_one` and give one worker thread per core
(THREAD_ENV in every worker's environment before it imports NumPy).

Workers get intsim's process setup (:func:`intsim.kernels.runtime.configure_runtime`)
before NumPy loads: the local pool's processes run it first, a Dask
LocalCluster's worker processes inherit its environment defaults
(:func:`worker_env`); every run (``run_one``) applies it again.

The client (:func:`intsim.app.sweep.runner.run_sweep`) drives them through
``capacity``, ``submit``, ``wait_first``, ``worker_died`` and ``close``.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from concurrent.futures.process import BrokenProcessPool

from intsim.app import jobs as _jobs
from intsim.app.config import ConfigError
from intsim.app.sweep.spec import SweepRun
from intsim.app.sweep.worker import run_one
from intsim.kernels.runtime import ENV_DEFAULTS, configure_runtime
from intsim.kernels.threads import available_cores

#: environment of every worker process: one thread each
THREAD_ENV = {"INTSIM_THREADS": "1", **{v: "1" for v in _jobs.THREAD_VARS}}
DASK_HINT = 'the dask executor needs dask.distributed: pip install -e ".[dask]"'


def worker_env() -> dict:
    """The variables set in the client's environment while worker processes start
    (they copy it): THREAD_ENV, and the process setup's defaults the client's
    environment does not set (a user's own values win)."""
    return {**{k: v for k, v in ENV_DEFAULTS.items() if k not in os.environ}, **THREAD_ENV}


class LocalExecutor:
    """A spawn process pool of ``workers`` processes (at most one per core), each
    with one thread (THREAD_ENV in its environment before it imports numpy)."""
    name = "local"

    def __init__(self, workers: int | None = None):
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
        if self._saved is None:     # children copy os.environ when they start
            env = worker_env()
            self._saved = {v: os.environ.get(v) for v in env}
            os.environ.update(env)
        # each worker runs the process setup before it unpickles a task (which loads NumPy)
        self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                            initializer=configure_runtime)

    def capacity(self) -> int:
        return self.workers

    def submit(self, run: SweepRun, out):
        if self._pool is None:
            self._start()
        return self._pool.submit(run_one, run, os.fspath(out))

    def wait_first(self, futures, timeout: float | None = None):
        """The futures that are finished, once one is (or ``timeout`` seconds passed)."""
        done, _ = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return done

    def worker_died(self, exc: BaseException) -> bool:
        """Whether ``exc`` (from a future) means the worker process died; restarts the pool."""
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
            import distributed      # optional extra: dask[distributed]
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
            cores = available_cores()
            n = max(1, min(int(workers) if workers else cores, cores))
            env = worker_env()
            saved = {v: os.environ.get(v) for v in env}
            os.environ.update(env)              # the nannies' worker processes copy it
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

    def wait_first(self, futures, timeout: float | None = None):
        """The futures that are finished, once one is (or ``timeout`` seconds passed)."""
        try:
            done, _ = self._distributed.wait(list(futures), timeout=timeout,
                                             return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set()
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
