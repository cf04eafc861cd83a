"""What every grid of runs shares: run-folder keys, the paper's seeds and the
figures of a finished run.

A run's folder (``intsim sweep``, :mod:`intsim.app.sweep`) is named
:func:`run_key` of its fully resolved settings: a readable prefix plus a hash
of the settings that differ from RunConfig's defaults (:func:`settings`), so a
setting added to intsim later, at its default, neither renames nor
invalidates the runs already stored (benchmarks/results/runs). The folder is
the one ``intsim train`` writes (config.toml, log.jsonl, results.json), so
``intsim compare``/``plot``/``audit`` read every run.

:func:`run_summary` gives the figures the tables show from a results.json
dict; :func:`mean_std` and :func:`fmt_pm` aggregate them over seeds.
"""
from __future__ import annotations

import hashlib
import json
import math

from intsim.app import runfolder as runio
from intsim.app.config import RunConfig

#: The paper's 20 HAR seeds, in its order (docs/paper.md sec 9); CIFAR used the first 5.
HAR_SEEDS = (42467, 88801, 91280, 1056, 27534, 81619, 79004, 25824, 66362, 33280, 33150,
             27368, 53375, 70171, 59431, 14534, 34018, 85665, 77797, 17944)
#: The paper's first seeds (its released run scripts), in order.
PAPER_SEEDS = HAR_SEEDS[:5]
#: The numeric libraries' thread variables (1 in every sweep worker's environment).
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS")


# ---------------------------------------------------------------- keys

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
    """``<dataset>-<method>-<label>-s<seed>-<hash>``: the hash is 10 hex digits of the
    SHA-1 of every setting that differs from its default; ``label`` is the arithmetic's
    short name (``fp``, ``hdqt4-8``, ``luq4-w``; default: ``cfg.arith``)."""
    blob = json.dumps(settings(cfg.to_dict()), sort_keys=True).encode()
    h = hashlib.sha1(blob).hexdigest()[:10]
    label = label or cfg.arith
    return f"{cfg.dataset}-{cfg.method}-{label}-s{cfg.seed}-{h}"


# ---------------------------------------------------------------- results

def _pct(sat, tiles):
    return 100.0 * sat / tiles if tiles else 0.0


def run_summary(results: dict) -> dict:
    """The figures the benchmark tables show, from a results.json dict.

    cnn_last/cnn_avg/cnn_forgetting_last, nme_last/nme_avg (None without
    NME), cnn_task_forgetting / cnn_bwt / cnn_task_avg / cnn_task_last (forgetting,
    backward transfer, average incremental and last accuracy by task, from the
    accuracy matrix, summary.cnn.by_task; None in records without it), sat_pct (saturated tiles over all passes, %), sat_fwd_pct,
    sat_bwd_pct, max_abs (largest |tile sum| seen), energy_uj and macs (the
    run's cost record, results.json ``cost``; None without one), mac_energy_uj (the
    energy of its multiplies and additions alone: the MAC array's).
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
    by_task = cnn.get("by_task") or {}
    return {"cnn_last": cnn["last"], "cnn_avg": cnn["avg"],
            "cnn_forgetting_last": cnn["forgetting"],
            "cnn_task_forgetting": by_task.get("forgetting"), "cnn_bwt": by_task.get("bwt"),
            "cnn_task_avg": by_task.get("avg"), "cnn_task_last": by_task.get("last"),
            "nme_last": nme["last"] if nme else None, "nme_avg": nme["avg"] if nme else None,
            "sat_pct": _pct(tot["all"][1], tot["all"][0]),
            "sat_fwd_pct": _pct(tot["fwd"][1], tot["fwd"][0]),
            "sat_bwd_pct": _pct(tot["bwd"][1], tot["bwd"][0]), "max_abs": max_abs,
            "energy_uj": None if not results.get("cost") else
            results["cost"]["total"]["energy_pj"] * 1e-6,
            "mac_energy_uj": None if not results.get("cost") else
            1e-6 * sum(v["energy_pj"] for k, v in results["cost"]["total"]["by_class"].items()
                       if k.startswith(("mul:", "add:"))),
            "macs": None if not results.get("cost") else results["cost"]["total"]["macs"]}


def run_seconds(results: dict) -> float:
    """The run's total time in seconds (0 when results.json has no timings)."""
    return float((results.get("timings") or {}).get("total_seconds") or 0.0)


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
