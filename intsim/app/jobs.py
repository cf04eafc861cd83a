"""Many runs of :func:`intsim.app.driver.run`, cached by content, in worker processes.

A :class:`Job` is a compact grid entry (dataset, method, arithmetic spec,
seed, schedule overrides) that maps to one :class:`RunConfig` at the paper's
schedule with one thread (:meth:`Job.config`). Its run folder is
``<runs_dir>/<key>/``, the same folder ``intsim train`` writes (config.toml,
log.jsonl, results.json; the checkpoint is deleted once the run is complete),
so ``intsim compare``/``plot``/``audit`` read every job. The key is a
readable prefix plus a hash of the run's fully resolved settings.

:func:`run_jobs` runs every unfinished job in parallel worker processes (one
per core, each started with OPENBLAS/OMP/MKL/NUMBA threads = 1 in its
environment), skips complete ones and resumes a job interrupted mid-run from
its last finished task: an interrupted sweep loses at most the task each
worker was on. Progress lines go to stderr.

Arith specs are plain dicts: {"kind": "fp"}, {"kind": "hdqt", **HDQT fields},
{"kind": "luq", **LUQ fields}.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field

from intsim.app import runfolder as runio
from intsim.app.config import RunConfig

#: The paper's 20 HAR seeds, in its order (docs/paper.md sec 9); CIFAR used the first 5.
HAR_SEEDS = (42467, 88801, 91280, 1056, 27534, 81619, 79004, 25824, 66362, 33280, 33150,
             27368, 53375, 70171, 59431, 14534, 34018, 85665, 77797, 17944)
#: The paper's first seeds (its released run scripts), in order.
PAPER_SEEDS = HAR_SEEDS[:5]
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS")
#: Job overrides that are RunConfig fields (the schedule, the model shape and the
#: HAR subject split / scaling).
OVERRIDE_KEYS = ("epochs", "lr", "milestones", "batch_size", "memory", "init_classes",
                 "inc_classes", "hidden", "per_class", "split", "scale")


# ---------------------------------------------------------------- jobs

@dataclass(frozen=True)
class Job:
    """One CIL run at the paper's schedule.

    dataset: a registered dataset name ("hapt", "synthetic", ...).
    method: a registered CIL method ("lwf", "icarl", "bic", "finetune").
    arith: {"kind": "fp"|"hdqt"|"luq", **fields of that arithmetic}.
    seed: class-order seed and the seed of the run's Generator.
    overrides: schedule settings changed from the paper's (OVERRIDE_KEYS).
    """
    dataset: str
    method: str
    arith: dict
    seed: int
    overrides: dict = field(default_factory=dict)

    def __post_init__(self):
        from intsim.arith import ARITHS
        if self.arith.get("kind") not in ARITHS:
            raise ValueError(f"Job: arith kind must be one of {tuple(ARITHS)}, "
                             f"got {self.arith!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"Job: seed must be a non-negative int, got {self.seed!r}")
        bad = set(self.overrides) - set(OVERRIDE_KEYS)
        if bad:
            raise ValueError(f"Job: unknown overrides {sorted(bad)} (known: {OVERRIDE_KEYS})")

    def spec(self) -> dict:
        """JSON-able description of the grid entry."""
        return {"dataset": self.dataset, "method": self.method,
                "arith": dict(sorted(self.arith.items())), "seed": int(self.seed),
                "overrides": dict(sorted(self.overrides.items()))}

    @classmethod
    def from_spec(cls, d: dict) -> "Job":
        return cls(d["dataset"], d["method"], dict(d["arith"]), int(d["seed"]),
                   dict(d.get("overrides", {})))

    def config(self) -> RunConfig:
        """The RunConfig the job runs: the paper's schedule for its dataset with
        the job's overrides, one thread (ConfigError on bad fields)."""
        from intsim.arith import ARITHS
        from intsim.app.config import resolve
        values = {"dataset": self.dataset, "method": self.method, "seed": self.seed,
                  "schedule": "paper", "threads": 1}
        values.update(ARITHS[self.arith["kind"]].run_settings(self.arith))
        values.update(self.overrides)
        # resolve() skips None ("not given"); a job's None is an explicit "none"
        # (e.g. acc_bits None = no accumulator limit)
        return resolve(None, {k: "none" if v is None else v for k, v in values.items()})

    def resolved(self) -> RunConfig:
        """config() with the schedule's values filled in, as its run's config.toml records it."""
        from intsim.app.build import cil_config, complete_config
        cfg = self.config()
        return complete_config(cfg, cil_config(cfg))

    @property
    def key(self) -> str:
        """Folder name: readable prefix + 10 hex digits of the resolved settings' SHA-1."""
        return run_key(self.resolved(), arith_label(self.arith, short=True))


def _defaults() -> dict:
    return runio.to_jsonable(RunConfig().to_dict())


def settings(cfg_dict: dict) -> dict:
    """The settings of a config dict that differ from RunConfig's defaults.

    Keys and cache checks use these, so a setting added to intsim later (at its
    default) neither renames nor invalidates the runs already stored.
    """
    d = _defaults()
    return {k: v for k, v in runio.to_jsonable(cfg_dict).items() if v != d.get(k, object())}


def run_key(cfg: RunConfig, label: str | None = None) -> str:
    """``<dataset>-<method>-<label>-s<seed>-<hash>``; the hash covers every setting
    that differs from its default."""
    blob = json.dumps(settings(cfg.to_dict()), sort_keys=True).encode()
    h = hashlib.sha1(blob).hexdigest()[:10]
    label = label or cfg.arith
    return f"{cfg.dataset}-{cfg.method}-{label}-s{cfg.seed}-{h}"


def arith_label(spec: dict, short: bool = False) -> str:
    """'FP', 'HDQT 4/8', 'LUQ 4/8' (+ ' a=b' for non-default fields); short: file-safe."""
    from intsim.arith import ARITHS
    kind = spec["kind"]
    if "bits" not in ARITHS[kind].config_fields:     # FP, FP8, FP134: no integer widths
        base = kind if short else kind.upper()
        extra = [f"{k}={v}" for k, v in sorted(spec.items()) if k != "kind"]
        return base if short or not extra else base + " " + " ".join(extra)
    bits = spec.get("bits", 4)
    acc = spec.get("acc_bits", 8 if kind == "hdqt" else None)
    base = f"{kind}{bits}-{acc if acc is not None else 'w'}" if short else \
        f"{kind.upper()} {bits}/{acc if acc is not None else 'wide'}"
    if short:
        return base
    extra = [f"{k}={v}" for k, v in sorted(spec.items()) if k not in ("kind", "bits", "acc_bits")]
    return base + (" " + " ".join(extra) if extra else "")


# ---------------------------------------------------------------- results

def run_path(job: Job, runs_dir) -> str:
    """The job's run folder."""
    return os.path.join(os.fspath(runs_dir), job.key)


def load_run(job: Job, runs_dir):
    """The job's results.json if the run is complete and has the job's settings, else None."""
    path = os.path.join(run_path(job, runs_dir), runio.RESULTS)
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError):
        return None
    if not d.get("complete") or not isinstance(d.get("config"), dict) or \
            settings(d["config"]) != settings(job.resolved().to_dict()):
        return None
    return d


def _pct(sat, tiles):
    return 100.0 * sat / tiles if tiles else 0.0


def run_summary(results: dict) -> dict:
    """The figures the benchmark tables show, from a results.json dict.

    cnn_last/cnn_avg/cnn_forgetting_last, nme_last/nme_avg (None without
    NME), sat_pct (saturated tiles over all passes, %), sat_fwd_pct,
    sat_bwd_pct, max_abs (largest |tile sum| seen).
    """
    tot = {"all": [0, 0], "fwd": [0, 0], "bwd": [0, 0]}
    max_abs = 0
    for rec in results["tasks"]:
        for per_pass in (rec.get("audit") or {}).values():
            for p, a in per_pass.items():
                t, s = int(a.get("tiles", 0)), int(a.get("saturated", 0))
                for name in ("all", "fwd" if p == "forward" else "bwd"):
                    tot[name][0] += t
                    tot[name][1] += s
                max_abs = max(max_abs, int(a.get("max_abs", 0)))
    summ = results.get("summary") or {}
    cnn, nme = summ.get("cnn"), summ.get("nme")
    return {"cnn_last": cnn["last"], "cnn_avg": cnn["avg"],
            "cnn_forgetting_last": cnn["forgetting"],
            "nme_last": nme["last"] if nme else None, "nme_avg": nme["avg"] if nme else None,
            "sat_pct": _pct(tot["all"][1], tot["all"][0]),
            "sat_fwd_pct": _pct(tot["fwd"][1], tot["fwd"][0]),
            "sat_bwd_pct": _pct(tot["bwd"][1], tot["bwd"][0]), "max_abs": max_abs}


def run_seconds(results: dict) -> float:
    return float((results.get("timings") or {}).get("total_seconds") or 0.0)


# ---------------------------------------------------------------- running

def run_job(job: Job, runs_dir, log=None, on_task=None) -> dict:
    """Run (or load) one job; returns its results.json dict.

    Complete jobs are loaded, not rerun; an interrupted one continues from
    its last checkpoint and gives the results of an uninterrupted run.
    on_task(t, record): test hook called after each task's checkpoint.
    log: file for progress lines (None: stderr).
    """
    from intsim.app.driver import RunHooks, run
    log = sys.stderr if log is None else log
    done = load_run(job, runs_dir)
    if done is not None:
        return done
    cfg = job.config()
    folder = run_path(job, runs_dir)
    resume = os.path.isdir(folder) and bool(os.listdir(folder))
    if runio.has_checkpoint(folder):
        print(f"  {job.key}: resuming", file=log, flush=True)

    def on_task_end(t, rec):
        nme = f" nme {rec['nme']:.1f}" if rec.get("nme") is not None else ""
        print(f"  {job.key}: task {t + 1} cnn {rec['cnn']:.1f}{nme}"
              f" ({rec['seconds']['total']:.0f} s)", file=log, flush=True)
        if on_task is not None:
            on_task(t, rec)
    return run(cfg, folder, resume=resume, hooks=RunHooks(on_task_end=on_task_end),
               keep_checkpoint=False)


def _worker(args):
    job_spec, runs_dir = args
    job = Job.from_spec(job_spec)
    t0 = time.perf_counter()
    try:
        out = run_job(job, runs_dir)
        return job.key, run_summary(out), time.perf_counter() - t0, None
    except Exception as e:  # reported by the parent; the sweep goes on
        import traceback
        return job.key, None, time.perf_counter() - t0, traceback.format_exc(limit=6) + repr(e)


def default_workers() -> int:
    """One worker per core available to this process (JOBS env var overrides)."""
    env = os.environ.get("JOBS")
    if env:
        return max(1, int(env))
    from intsim.kernels.threads import available_cores
    return available_cores()


def _job_cost(job: Job) -> float:
    """Rough relative cost, to start the longest jobs first."""
    # per-epoch costs measured on HAPT iCaRL: FP 1, HDQT ~3.5, LUQ ~8
    c = {"fp": 1.0, "hdqt": 3.5, "luq": 8.0}.get(job.arith["kind"], 4.0)
    c *= {"bic": 2.0, "icarl": 1.3}.get(job.method, 1.0)
    if job.arith.get("acc_mode") == "saturate" and job.arith.get("acc_bits") is not None:
        c *= 4.0   # the saturating-accumulator kernel runs ~4x the clamp path
    return c * job.overrides.get("epochs", 100)


def run_jobs(jobs, runs_dir, workers: int | None = None, log=None) -> dict:
    """Run every unfinished job (parallel); returns {key: results.json dict} for all jobs.

    workers: processes (default: one per core); 0 runs in this process (tests).
    Duplicate jobs run once. Raises RuntimeError listing the jobs that failed
    (after all others finished; their results are kept).
    """
    log = sys.stderr if log is None else log
    uniq, failures = {}, []
    for j in jobs:
        try:
            uniq.setdefault(j.key, j)
        except ValueError as e:                 # settings that do not resolve
            failures.append((f"{j.dataset}-{j.method}-s{j.seed}", str(e)))
            print(f"FAILED {j.spec()}: {e}", file=log, flush=True)
    todo = [j for j in uniq.values() if load_run(j, runs_dir) is None]
    todo.sort(key=_job_cost, reverse=True)
    n_done = len(uniq) - len(todo)
    workers = default_workers() if workers is None else int(workers)
    print(f"jobs: {len(uniq)} runs, {n_done} already done, {len(todo)} to run "
          f"on {max(workers, 1)} worker(s); results in {runs_dir}", file=log, flush=True)
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
    print(f"jobs: finished in {(time.perf_counter() - t_start) / 60:.1f} min",
          file=log, flush=True)
    if failures:
        raise RuntimeError(f"{len(failures)} run(s) failed: " + ", ".join(k for k, _ in failures))
    return {k: load_run(j, runs_dir) for k, j in uniq.items()}


def collect(jobs, runs_dir) -> dict:
    """{key: results.json dict} of the jobs already finished (nothing is run)."""
    out = {}
    for j in jobs:
        r = load_run(j, runs_dir)
        if r is not None:
            out[j.key] = r
    return out


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
    """run_summary(...)[field_name] of each job's run (None where missing)."""
    out = []
    for j in jobs:
        r = runs.get(j.key)
        out.append(None if r is None else run_summary(r).get(field_name))
    return out
