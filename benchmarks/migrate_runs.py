"""One-off: turn the benchmark cache's old compact records into run folders.

Until session 4 the benchmark jobs stored one compact JSON per run
(``benchmarks/results/runs/<key>.json``, written by the former
benchmarks/experiments.py). intsim now has one results format, the run
folder's results.json (docs/run-folder.md), for every run. This script
rewrites each old record as ``<runs>/<new key>/results.json`` plus its
config.toml, keeping every figure the record had; what the old record never
stored stays null (confusion_nme, the audit's quantizer levels, the
package versions: ``run.migrated_from`` names the source). Records whose
accumulator was ``acc_bits = 16`` ran without a limit (the old meaning of
16); they become ``acc_bits = none``, their real settings.

Usage: python benchmarks/migrate_runs.py [RUNS_DIR]   (idempotent)
"""
import json
import os
import sys

from intsim.app import runfolder
from intsim.app.auditreport import acc_range, audit_rows, merge_audits
from intsim.app.build import build_arith
from intsim.app.config import to_toml
from intsim.app.jobs import Job
from intsim.app.results import RESULTS_FORMAT, summarize

HERE = os.path.dirname(os.path.abspath(__file__))


def new_job(old_spec: dict) -> Job:
    spec = dict(old_spec)
    arith = dict(spec["arith"])
    if arith.get("acc_bits") is not None and arith["acc_bits"] >= 16:
        arith["acc_bits"] = None            # what the old code simulated for 16
        arith.pop("acc_mode", None)
    spec["arith"] = arith
    # every old record split the subjects "sorted" and scaled "train-minmax"
    spec["overrides"] = {**spec.get("overrides", {}), "split": "sorted", "scale": "train-minmax"}
    return Job.from_spec(spec)


def task_records(old: dict, threshold: float, acc_bits) -> list:
    order = old["class_order"]
    out, n_old = [], 0
    for t in old["tasks"]:
        audit = {layer: {p: dict(a) for p, a in passes.items()}
                 for layer, passes in (t.get("audit") or {}).items()}
        rows = audit_rows(audit, acc_bits, threshold)
        tiles = sum(r["tiles"] for r in rows)
        sat = sum(r["saturated"] for r in rows)
        nme = t.get("nme")
        rec = {"task": t["task"], "classes": list(range(n_old, t["seen"])),
               "class_ids": order[n_old:t["seen"]], "classes_seen": t["seen"], "n_old": n_old,
               "cnn": t["cnn"]["acc"], "nme": None if nme is None else nme["acc"],
               "per_class_cnn": t["cnn"]["per_class"],
               "per_class_nme": None if nme is None else nme["per_class"],
               "confusion_cnn": t["cnn"].get("confusion"), "confusion_nme": None,
               "audit": audit, "saturated_pct": 100.0 * sat / tiles if tiles else 0.0,
               "flagged": sorted({r["layer"] for r in rows if r["flagged"]}),
               "seconds": {"total": t.get("seconds")}}
        for extra in ("bias", "val_size"):
            if extra in t:
                rec[extra] = t[extra]
        out.append(rec)
        n_old = t["seen"]
    return out


def migrate(path: str, runs_dir: str) -> str:
    with open(path) as f:
        old = json.load(f)
    job = new_job(old["job"])
    cfg = job.resolved()
    arith = build_arith(cfg)
    records = task_records(old, cfg.audit_threshold, arith.acc_limit)
    run = {"dataset": cfg.dataset, "dataset_name": cfg.dataset, "class_order": old["class_order"],
           "num_tasks": old["num_tasks"], "num_classes": len(old["class_order"]),
           "arith": repr(arith), "acc_limit": arith.acc_limit,
           "acc_range": acc_range(arith.acc_limit), "cil": old["config"],
           "injected_dataset": False, "threads": {"numba": 1, "openblas": 1},
           "migrated_from": f"benchmarks/results/runs/{os.path.basename(path)} "
                            f"(compact record, {old['machine']})"}
    res = {"format": RESULTS_FORMAT, "complete": True, "seed": cfg.seed,
           "config": runfolder.to_jsonable(cfg.to_dict()), "run": run, "tasks": records,
           "summary": summarize(records), "audit_total": merge_audits(r["audit"] for r in records),
           "timings": {"total_seconds": old["seconds"],
                       "task_seconds": [r["seconds"]["total"] for r in records],
                       "compile_seconds": None},
           "versions": None}
    folder = os.path.join(runs_dir, job.key)
    os.makedirs(folder, exist_ok=True)
    runfolder.atomic_write_text(os.path.join(folder, runfolder.CONFIG),
                                to_toml(cfg.to_dict(), header="intsim run configuration "
                                        "(fully resolved; migrated record)."))
    runfolder.atomic_write_json(os.path.join(folder, runfolder.RESULTS), res)
    return folder


def main(argv):
    runs_dir = argv[1] if len(argv) > 1 else os.path.join(HERE, "results", "runs")
    olds = sorted(p for p in os.listdir(runs_dir) if p.endswith(".json"))
    for name in olds:
        folder = migrate(os.path.join(runs_dir, name), runs_dir)
        print(f"{name} -> {os.path.basename(folder)}/")
    print(f"{len(olds)} records migrated; remove the old .json files once checked")


if __name__ == "__main__":
    main(sys.argv)
