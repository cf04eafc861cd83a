"""Experiment jobs for the HAPT reproduction, the accumulator sweep and the ablations.

A job is (dataset, method, arith spec, seed, CIL overrides). ``run_job`` runs
one class-incremental run through ``intsim.cil.run_cil`` and stores a small
JSON of its results under ``<runs_dir>/<key>.json`` (written atomically).
``run_jobs`` runs many jobs in parallel worker processes (one per core,
each started with OPENBLAS/OMP/MKL/NUMBA threads = 1 in its environment, so
numpy is imported single-threaded), skips jobs whose JSON already exists and
resumes a job interrupted mid-run from its last finished task (a checkpoint in
``<runs_dir>/partial/``, deleted when the run finishes): an interrupted sweep
loses at most the task each worker was on. Progress lines go to stderr.

Arith specs are plain dicts: {"kind": "fp"}, {"kind": "hdqt", **HDQT fields},
{"kind": "luq", **LUQ fields}. Dataset "synthetic" is a tiny deterministic
blob dataset (6 classes, 24 features) for tests and smoke runs; every other
name goes to intsim.data.load_dataset.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache

RUNS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "runs")
# Bump when the meaning of a stored run changes (keys then change, old runs are ignored).
SCHEMA = 1
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS")
PAPER_SEEDS = (42467, 88801, 91280, 1056, 27534)
ARITH_KINDS = ("fp", "hdqt", "luq")


# ---------------------------------------------------------------- jobs

@dataclass(frozen=True)
class Job:
    """One CIL run.

    dataset: "synthetic" or an intsim.data.load_dataset name (e.g. "hapt").
    method: "lwf", "icarl", "bic" or "finetune".
    arith: {"kind": "fp"|"hdqt"|"luq", **fields of that dataclass}.
    seed: class-order seed and the seed of the run's Generator.
    overrides: CILConfig fields changed from CILConfig.for_dataset's defaults.
    """
    dataset: str
    method: str
    arith: dict
    seed: int
    overrides: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.arith.get("kind") not in ARITH_KINDS:
            raise ValueError(f"Job: arith kind must be one of {ARITH_KINDS}, got {self.arith!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"Job: seed must be a non-negative int, got {self.seed!r}")

    def spec(self) -> dict:
        """JSON-able description (also what the key hashes)."""
        return {"schema": SCHEMA, "dataset": self.dataset, "method": self.method,
                "arith": dict(sorted(self.arith.items())), "seed": int(self.seed),
                "overrides": dict(sorted(self.overrides.items()))}

    @property
    def key(self) -> str:
        """File-name key: readable prefix + 10 hex digits of the spec's SHA-1."""
        blob = json.dumps(_jsonable(self.spec()), sort_keys=True).encode()
        h = hashlib.sha1(blob).hexdigest()[:10]
        return f"{self.dataset}-{self.method}-{arith_label(self.arith, short=True)}-s{self.seed}-{h}"

    @classmethod
    def from_spec(cls, d: dict) -> "Job":
        return cls(d["dataset"], d["method"], dict(d["arith"]), int(d["seed"]),
                   dict(d.get("overrides", {})))


def arith_label(spec: dict, short: bool = False) -> str:
    """'FP', 'HDQT 4/8', 'LUQ 4/8' (+ ' a=b' for non-default fields); short: file-safe."""
    kind = spec["kind"]
    if kind == "fp":
        return "fp" if short else "FP"
    bits = spec.get("bits", 4)
    acc = spec.get("acc_bits", 8 if kind == "hdqt" else None)
    base = f"{kind}{bits}-{acc if acc is not None else 'w'}" if short else \
        f"{kind.upper()} {bits}/{acc if acc is not None else 'wide'}"
    if short:
        return base
    extra = [f"{k}={v}" for k, v in sorted(spec.items()) if k not in ("kind", "bits", "acc_bits")]
    return base + (" " + " ".join(extra) if extra else "")


def make_arith(spec: dict):
    """intsim.FP/HDQT/LUQ from an arith spec dict (ValueError on bad fields)."""
    import intsim
    cls = {"fp": intsim.FP, "hdqt": intsim.HDQT, "luq": intsim.LUQ}.get(spec.get("kind"))
    if cls is None:
        raise ValueError(f"unknown arith kind in {spec!r}")
    kw = {k: v for k, v in spec.items() if k != "kind"}
    known = {f.name for f in dataclasses.fields(cls)}
    bad = set(kw) - known
    if bad:
        raise ValueError(f"arith {spec['kind']}: unknown fields {sorted(bad)}")
    return cls(**kw)


# ---------------------------------------------------------------- data

def synthetic_dataset(num_classes: int = 6, dim: int = 24, per_class: int = 40, seed: int = 0):
    """Tiny Gaussian-blob Dataset (float32 features, int64 labels 1..C): tests only."""
    import numpy as np
    from intsim.data import Dataset
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, (num_classes, dim))

    def draw(n):
        y = np.repeat(np.arange(1, num_classes + 1), n)
        X = centres[y - 1] + 0.7 * rng.normal(0.0, 1.0, (y.size, dim))
        return X.astype(np.float32), y.astype(np.int64)

    Xtr, ytr = draw(per_class)
    Xte, yte = draw(per_class // 2)
    return Dataset(X_train=Xtr, y_train=ytr, X_test=Xte, y_test=yte, users_train=None,
                   users_test=None, feature_names=None, name="synthetic",
                   class_names={c: f"c{c}" for c in range(1, num_classes + 1)})


@lru_cache(maxsize=4)
def load_data(name: str):
    """Dataset for a job (memoised per process)."""
    if name == "synthetic":
        return synthetic_dataset()
    from intsim.data import load_dataset
    return load_dataset(name)


def make_config(job: Job):
    """The job's CILConfig: the paper's defaults for the dataset plus overrides."""
    from intsim.cil import CILConfig
    base = "hapt" if job.dataset == "synthetic" else job.dataset
    over = dict(job.overrides)
    for k in ("milestones", "hidden"):
        if isinstance(over.get(k), list):
            over[k] = tuple(over[k])
    return CILConfig.for_dataset(base, job.method, **over)


def make_model_factory(config, arith, in_dim: int):
    """callable(rng) -> FCNet with the paper's hidden widths (in_dim, in_dim)."""
    if config.model != "fcnet":
        raise ValueError(f"experiments: only FCNet (HAR) runs are supported, not {config.model!r}")
    hidden = config.hidden if config.hidden is not None else (in_dim, in_dim)

    def factory(rng):
        from intsim.models import FCNet
        return FCNet(in_dim, hidden, arith, rng, num_classes=0,
                     classifier_bias=config.classifier_bias)
    return factory


# ---------------------------------------------------------------- results

def _jsonable(obj):
    """Plain JSON types; nan/inf -> None; numpy scalars/arrays -> Python."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _jsonable(obj.tolist())
    if isinstance(obj, float):
        return float(f"{obj:.10g}") if math.isfinite(obj) else None
    if isinstance(obj, (bool, int, str)) or obj is None:
        return obj
    try:
        return float(obj)
    except (TypeError, ValueError):
        return str(obj)


def _audit_totals(audit: dict, passes=None) -> tuple[int, int, int]:
    """(tiles, saturated, max_abs) summed over layers (and the given passes)."""
    tiles = sat = mx = 0
    for per_pass in (audit or {}).values():
        for p, a in per_pass.items():
            if passes is not None and p not in passes:
                continue
            tiles += int(a.get("tiles", 0))
            sat += int(a.get("saturated", 0))
            mx = max(mx, int(a.get("max_abs", 0)))
    return tiles, sat, mx


def _pct(sat, tiles):
    return 100.0 * sat / tiles if tiles else 0.0


def _task_sat_pct(audit) -> float:
    tiles, sat, _ = _audit_totals(audit)
    return _pct(sat, tiles)


def compact_results(results: dict, job: Job, seconds: float) -> dict:
    """The small JSON stored per run: spec, summaries, per-task accuracies and audits."""
    tasks = []
    tot = {"all": [0, 0], "fwd": [0, 0], "bwd": [0, 0]}
    max_abs = 0
    for ev in results["tasks"]:
        audit = {layer: {p: {k: int(a[k]) for k in ("tiles", "saturated", "max_abs")}
                         for p, a in passes.items()}
                 for layer, passes in (ev.get("audit") or {}).items()}
        for name, passes in (("all", None), ("fwd", ("forward",)),
                             ("bwd", ("backward_input", "backward_weight"))):
            t, s, m = _audit_totals(audit, passes)
            tot[name][0] += t
            tot[name][1] += s
            max_abs = max(max_abs, m)
        rec = {"task": ev["task"], "seen": ev["seen"], "seconds": ev.get("seconds"),
               "cnn": {"acc": ev["cnn"]["acc"], "per_class": ev["cnn"]["per_class"],
                       "confusion": ev["cnn"].get("confusion")},
               "nme": None if ev.get("nme") is None else
               {"acc": ev["nme"]["acc"], "per_class": ev["nme"]["per_class"]},
               "sat_pct": _task_sat_pct(audit),
               "audit": audit}
        for extra in ("bias", "val_size"):
            if extra in ev:
                rec[extra] = ev[extra]
        tasks.append(rec)
    summary = {"cnn_last": results["cnn"]["last"], "cnn_avg": results["cnn"]["avg"],
               "cnn_forgetting_last": results["cnn"]["forgetting"][-1],
               "nme_last": None, "nme_avg": None,
               "sat_pct": _pct(tot["all"][1], tot["all"][0]),
               "sat_fwd_pct": _pct(tot["fwd"][1], tot["fwd"][0]),
               "sat_bwd_pct": _pct(tot["bwd"][1], tot["bwd"][0]),
               "max_abs": max_abs}
    if results.get("nme"):
        summary.update(nme_last=results["nme"]["last"], nme_avg=results["nme"]["avg"])
    return _jsonable({"key": job.key, "job": job.spec(), "summary": summary,
                      "cnn_acc": results["cnn"]["acc"],
                      "nme_acc": results["nme"]["acc"] if results.get("nme") else None,
                      "class_order": results["class_order"], "num_tasks": results["num_tasks"],
                      "config": results["config"], "tasks": tasks, "seconds": seconds,
                      "machine": _machine(), "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                                       time.gmtime())})


def _machine() -> str:
    try:
        from benchutil import machine_line
    except ImportError:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from benchutil import machine_line
    return machine_line()


def run_path(job: Job, runs_dir: str = RUNS_DIR) -> str:
    return os.path.join(runs_dir, job.key + ".json")


def partial_path(job: Job, runs_dir: str = RUNS_DIR) -> str:
    """Folder of the job's mid-run checkpoint (intsim.app.runfolder format, checksummed)."""
    return os.path.join(runs_dir, "partial", job.key)


def load_run(job: Job, runs_dir: str = RUNS_DIR):
    """The stored results of a finished job, or None (missing, corrupt or other spec)."""
    path = run_path(job, runs_dir)
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError):
        return None
    if d.get("job") != _jsonable(job.spec()):
        return None
    return d


# ---------------------------------------------------------------- running

def run_job(job: Job, runs_dir: str = RUNS_DIR, log=None, on_task=None) -> dict:
    """Run (or load) one job; returns its stored results dict.

    Finished jobs are loaded, not rerun. After every task a checkpoint goes
    to <runs_dir>/partial/<key>/; a later call continues from it and gives
    the same results as an uninterrupted run. on_task(t, results): test hook
    called after each task's checkpoint is written.
    log: file for progress lines (None: stderr).
    """
    import numpy as np
    from intsim.app import runfolder as runio
    from intsim.cil import run_cil
    from intsim.data import TaskStream

    log = sys.stderr if log is None else log
    done = load_run(job, runs_dir)
    if done is not None:
        return done
    ds = load_data(job.dataset)
    config = make_config(job)
    arith = make_arith(job.arith)
    stream = TaskStream(ds, config.init_classes, config.inc_classes, job.seed)
    factory = make_model_factory(config, arith, int(ds.X_train.shape[1]))
    ppath = partial_path(job, runs_dir)
    state, elapsed0 = None, 0.0
    if runio.has_checkpoint(ppath):
        try:
            _, saved = runio.load_checkpoint(ppath)
            if saved.get("job") == job.spec():
                state, elapsed0 = saved["checkpoint"], float(saved["elapsed"])
                print(f"  {job.key}: resuming after task {state['next_task']}", file=log, flush=True)
        except runio.CheckpointError as e:  # a corrupt checkpoint only costs a restart
            print(f"  {job.key}: ignoring unreadable checkpoint ({e})", file=log, flush=True)
    t0 = time.perf_counter()

    def on_task_end(t, results, checkpoint):
        elapsed = elapsed0 + time.perf_counter() - t0
        runio.save_checkpoint(ppath, t, {"job": job.spec(), "checkpoint": checkpoint,
                                         "elapsed": elapsed})
        ev = results["tasks"][-1]
        nme = f" nme {ev['nme']['acc']:.1f}" if ev.get("nme") else ""
        print(f"  {job.key}: task {t + 1}/{stream.num_tasks} cnn {ev['cnn']['acc']:.1f}{nme}"
              f" ({ev['seconds']:.0f} s)", file=log, flush=True)
        if on_task is not None:
            on_task(t, results)

    results = run_cil(stream, factory, config, np.random.default_rng(job.seed),
                      on_task_end=on_task_end, state=state)
    out = compact_results(results, job, elapsed0 + time.perf_counter() - t0)
    runio.atomic_write_bytes(run_path(job, runs_dir),
                             (json.dumps(out, separators=(",", ":")) + "\n").encode())
    shutil.rmtree(ppath, ignore_errors=True)
    return out


def _worker(args):
    job_spec, runs_dir = args
    job = Job.from_spec(job_spec)
    t0 = time.perf_counter()
    try:
        out = run_job(job, runs_dir)
        return job.key, out["summary"], time.perf_counter() - t0, None
    except Exception as e:  # reported by the parent; the sweep goes on
        import traceback
        return job.key, None, time.perf_counter() - t0, traceback.format_exc(limit=6) + repr(e)


def default_workers() -> int:
    """One worker per core available to this process (JOBS env var overrides)."""
    env = os.environ.get("JOBS")
    if env:
        return max(1, int(env))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def _job_cost(job: Job) -> float:
    """Rough relative cost, to start the longest jobs first."""
    # per-epoch costs measured on HAPT iCaRL: FP 1, HDQT ~3.5, LUQ ~8
    c = {"fp": 1.0, "hdqt": 3.5, "luq": 8.0}[job.arith["kind"]]
    c *= {"bic": 2.0, "icarl": 1.3}.get(job.method, 1.0)
    if job.arith.get("acc_mode") == "saturate" and (job.arith.get("acc_bits") or 99) < 16:
        c *= 4.0   # the saturating-accumulator kernel runs ~4x the clamp path
    return c * job.overrides.get("epochs", 100)


def run_jobs(jobs, runs_dir: str = RUNS_DIR, workers: int | None = None, log=None) -> dict:
    """Run every unfinished job (parallel); returns {key: stored results} for all jobs.

    workers: processes (default: one per core); 0 runs in this process (tests).
    Duplicate jobs run once. Raises RuntimeError listing the jobs that failed
    (after all others finished; their results are kept).
    """
    log = sys.stderr if log is None else log
    uniq = {}
    for j in jobs:
        uniq.setdefault(j.key, j)
    todo = [j for j in uniq.values() if load_run(j, runs_dir) is None]
    todo.sort(key=_job_cost, reverse=True)
    n_done = len(uniq) - len(todo)
    workers = default_workers() if workers is None else int(workers)
    print(f"experiments: {len(uniq)} runs, {n_done} already done, {len(todo)} to run "
          f"on {max(workers, 1)} worker(s); results in {runs_dir}", file=log, flush=True)
    failures = []
    t_start = time.perf_counter()

    def report(i, key, summary, secs, err):
        if err is not None:
            failures.append((key, err))
            print(f"[{i}/{len(todo)}] FAILED {key} after {secs:.0f} s:\n{err}", file=log, flush=True)
            return
        el = time.perf_counter() - t_start
        eta = el / i * (len(todo) - i)
        nme = f" nme {summary['nme_last']:.1f}/{summary['nme_avg']:.1f}" \
            if summary.get("nme_last") is not None else ""
        print(f"[{i}/{len(todo)}] {key}: cnn last/avg {summary['cnn_last']:.1f}/"
              f"{summary['cnn_avg']:.1f}{nme} sat {summary['sat_pct']:.2f}% "
              f"({secs:.0f} s; elapsed {el / 60:.1f} min, ~{eta / 60:.1f} min left)",
              file=log, flush=True)

    if todo and workers == 0:
        for i, j in enumerate(todo, 1):
            report(i, *_worker((j.spec(), runs_dir)))
    elif todo:
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        saved = {v: os.environ.get(v) for v in THREAD_VARS}
        # The children copy this environment when they start, before they import numpy.
        for v in THREAD_VARS:
            os.environ[v] = "1"
        try:
            pool = ctx.Pool(processes=min(workers, len(todo)))
        finally:
            for v, old in saved.items():
                if old is None:
                    os.environ.pop(v, None)
                else:
                    os.environ[v] = old
        try:
            args = [(j.spec(), runs_dir) for j in todo]
            for i, res in enumerate(pool.imap_unordered(_worker, args), 1):
                report(i, *res)
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
    print(f"experiments: finished in {(time.perf_counter() - t_start) / 60:.1f} min",
          file=log, flush=True)
    if failures:
        raise RuntimeError(f"{len(failures)} run(s) failed: " + ", ".join(k for k, _ in failures))
    return {k: load_run(j, runs_dir) for k, j in uniq.items()}


def collect(jobs, runs_dir: str = RUNS_DIR) -> dict:
    """{key: stored results} of the jobs already finished (nothing is run)."""
    out = {}
    for j in jobs:
        r = load_run(j, runs_dir)
        if r is not None:
            out[j.key] = r
    return out


def run_or_collect(jobs, argv=None, runs_dir: str = RUNS_DIR) -> dict:
    """run_jobs(jobs), or only collect() when '--table-only' is in argv (sys.argv)."""
    argv = sys.argv[1:] if argv is None else argv
    if "--table-only" in argv:
        runs = collect(jobs, runs_dir)
        n = len({j.key for j in jobs})
        print(f"experiments: --table-only: {len(runs)} of {n} runs finished; "
              f"missing ones show as '-'", file=sys.stderr)
        return runs
    return run_jobs(jobs, runs_dir)


# ---------------------------------------------------------------- tables

def mean_std(values):
    """(mean, sample std (ddof=1; 0 for one value), n) of the non-None values."""
    v = [float(x) for x in values if x is not None]
    if not v:
        return None, None, 0
    m = sum(v) / len(v)
    s = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, s, len(v)


def fmt_pm(values, digits: int = 2) -> str:
    """'m +- s' (or 'm' for one value, '-' for none)."""
    m, s, n = mean_std(values)
    if n == 0:
        return "-"
    return f"{m:.{digits}f}" if n == 1 else f"{m:.{digits}f} +- {s:.{digits}f}"


def summaries(runs, jobs, field_name: str):
    """The summary field of each job's stored run (None where missing)."""
    out = []
    for j in jobs:
        r = runs.get(j.key)
        out.append(None if r is None else r["summary"].get(field_name))
    return out


def quick_mode() -> bool:
    """True when the environment says QUICK=1 (the Makefile passes QUICK)."""
    return os.environ.get("QUICK", "0").strip() not in ("", "0", "false", "no")
