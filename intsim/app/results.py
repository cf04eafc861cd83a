"""results.json: the one results format of every run (see docs/run-folder.md).

``task_record`` makes a task's entry, ``build_results`` the whole file;
``summarize`` gives the CNN/NME summaries (accuracies in percent).
"""
from __future__ import annotations

import os
import platform
from importlib.metadata import version

import numba
import numpy as np
import scipy

import intsim
from intsim.app.auditreport import audit_rows, merge_audits
from intsim.app.config import RunConfig
from intsim.cil import metrics
from intsim.cost.record import merge_cost_records

#: Bump when the meaning of a field of results.json changes.
RESULTS_FORMAT = 1


def task_record(ev: dict, audit: dict, acc_bits, threshold: float, seconds: dict,
                classes, class_ids) -> dict:
    """One task's entry of results.json (accuracies in percent; classes are the
    task's new classes as remapped ids, class_ids the same as original labels)."""
    rows = audit_rows(audit, acc_bits, threshold)
    tiles = sum(r["tiles"] for r in rows)
    sat = sum(r["saturated"] for r in rows)
    nme = ev.get("nme")
    return {"task": int(ev["task"]), "classes": [int(c) for c in classes],
            "class_ids": [int(c) for c in class_ids],
            "classes_seen": int(ev["seen"]), "n_old": int(ev["n_old"]),
            "cnn": ev["cnn"]["acc"], "nme": None if nme is None else nme["acc"],
            "per_class_cnn": ev["cnn"]["per_class"],
            "per_class_nme": None if nme is None else nme["per_class"],
            "task_acc_cnn": ev["cnn"]["task_acc"],
            "task_acc_nme": None if nme is None else nme["task_acc"],
            "confusion_cnn": ev["cnn"]["confusion"],
            "confusion_nme": None if nme is None else nme["confusion"],
            "audit": audit, "saturated_pct": 100.0 * sat / tiles if tiles else 0.0,
            "flagged": sorted({r["layer"] for r in rows if r["flagged"]}),
            "seconds": seconds}


def summarize(records: list[dict]) -> dict:
    """{"cnn": ..., "nme": ...} (where every task has it): acc, avg, last, forgetting,
    forgetting_per_task, and by_task (the accuracy matrix and its metrics,
    metrics.task_metrics) when every task record has its matrix row."""
    out = {}
    for m in ("cnn", "nme"):
        accs = [r[m] for r in records]
        if not records or any(a is None for a in accs):
            continue
        rows = [r.get(f"task_acc_{m}") for r in records]
        s = metrics.summarize(accs, [r[f"per_class_{m}"] for r in records],
                              rows if all(x is not None for x in rows) else None)
        out[m] = {"acc": s["acc"], "avg": s["avg"], "last": s["last"],
                  "forgetting": s["forgetting"][-1], "forgetting_per_task": s["forgetting"]}
        if "by_task" in s:
            out[m]["by_task"] = s["by_task"]
    return out


def build_results(cfg: RunConfig, run_info: dict, records: list[dict], timings: dict,
                  complete: bool) -> dict:
    return {"format": RESULTS_FORMAT, "complete": complete, "seed": cfg.seed,
            "config": cfg.to_dict(), "run": run_info, "tasks": records,
            "summary": summarize(records),
            "audit_total": merge_audits(r["audit"] for r in records),
            "cost": merge_cost_records([r["cost"] for r in records if r.get("cost")]) if any(
                r.get("cost") for r in records) else None,
            "timings": timings, "versions": versions()}


def versions() -> dict:
    """The software a run ran on. ``openblas_coretype``: the OPENBLAS_CORETYPE in force
    (None: OpenBLAS's own choice); float32 products round differently under other
    OpenBLAS kernels, so a float datapath's record re-runs equal only under the same."""
    return {"intsim": intsim.__version__, "numpy": np.__version__, "numba": numba.__version__,
            "scipy": scipy.__version__, "click": version("click"),
            "python": platform.python_version(), "platform": platform.platform(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE")}
