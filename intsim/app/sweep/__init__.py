"""``intsim sweep``: a grid of runs from a SPEC file, cached, resumable, on a process
pool or a Dask cluster (docs/sweeps.md). It is intsim's one runner of many runs:
the benchmark grids are SPECs in benchmarks/specs/, and the benchmark scripts
only read their runs (:func:`load_spec`, :func:`load_done`, :func:`load_diverged`) to
write tables.

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

An :class:`Overlay` (``--overlay FILE``, ``--set KEY=VALUE``, ``--seeds N``)
changes every run of a SPEC: its settings win over the SPEC's, and ``seeds``
keeps the runs of the SPEC's first N seeds (benchmarks/specs/quick.toml: 10
epochs, the first seed).

Every run is resolved like ``intsim train`` resolves its settings (threads
default to 1 here, not to the machine's cores, so a run's identity does not
depend on the machine; arithmetic settings the run's arithmetic does not take
are dropped), completed with its schedule's values, and named
:func:`intsim.app.jobs.run_key` of those settings, so the same settings always
give the same folder and every sweep into a folder shares its finished runs.
Each run folder is an ordinary ``intsim train`` run folder (docs/run-folder.md;
the checkpoint is deleted once the run is complete).

:func:`run_sweep` skips complete runs, resumes interrupted ones from their last
checkpoint, and records each run's status (pending/running/done/failed/diverged,
with the error text of a failure or the cause of a divergence) in
``DIR/sweep.json``; a failed run never stops the others. A run that diverged
(NaN/inf, :class:`intsim.errors.TrainingDiverged`) is an outcome like a
complete one: its folder keeps its finished tasks and the cause, and later
sweeps do not run it again (:func:`load_diverged`). Executors: ``local`` (a
spawn process pool, one thread per worker, at most one worker per core) and
``dask`` (``dask.distributed``: a running scheduler or a LocalCluster). Each run
is run under its folder's lock, so sweeps sharing DIR never run the same run
twice.

The package, one job per module (this module re-exports their public names):

* :mod:`~intsim.app.sweep.spec`: SPEC and overlay files -> :class:`SweepRun` s
  (parsing, validation, naming);
* :mod:`~intsim.app.sweep.worker`: one run in a worker (:func:`run_one`, the run folder's lock);
* :mod:`~intsim.app.sweep.executors`: the local process pool and Dask;
* :mod:`~intsim.app.sweep.state`: DIR/sweep.json and :func:`status`;
* :mod:`~intsim.app.sweep.progress`: the client's progress lines;
* :mod:`~intsim.app.sweep.runner`: :func:`run_sweep`, the client's loop, and :func:`plan`
  (what a sweep would run).
"""
from intsim.app.sweep.executors import (DASK_HINT, THREAD_ENV, DaskExecutor, LocalExecutor,
                                        make_executor)
from intsim.app.sweep.runner import BUSY_POLL_SECONDS, MAX_ATTEMPTS, plan, run_sweep
from intsim.app.sweep.spec import (OVERLAY_KEYS, SPEC_KEYS, Overlay, Spec, SpecError, SweepRun,
                                   load_overlay, load_spec, make_overlay, make_run,
                                   parse_overlay, parse_set, parse_spec)
from intsim.app.sweep.state import (STATUSES, SWEEP_FILE, SWEEP_LOCK, SweepState, count,
                                    lock_held, status)
from intsim.app.sweep.worker import BUSY, load_diverged, load_done, run_one

__all__ = ["BUSY", "BUSY_POLL_SECONDS", "DASK_HINT", "MAX_ATTEMPTS", "OVERLAY_KEYS", "SPEC_KEYS",
           "STATUSES", "SWEEP_FILE", "SWEEP_LOCK", "THREAD_ENV", "DaskExecutor", "LocalExecutor",
           "Overlay", "Spec", "SpecError", "SweepRun", "SweepState", "count", "load_diverged",
           "load_done", "load_overlay", "load_spec", "lock_held", "make_executor",
           "make_overlay", "make_run", "parse_overlay", "parse_set", "parse_spec", "plan",
           "run_one", "run_sweep", "status"]
