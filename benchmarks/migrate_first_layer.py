"""One-off: drop the first layer's input-gradient audit from stored run folders.

Since session 4 a network's first layer neither computes nor audits its input
gradient (docs/method.md). Nothing else changes: the layer's Generator is
moved on by the draws that pass would have taken, so weights, gradients,
accuracies and every other audit row are bit-identical (checked by re-running
a cached run, docs/results.md section 10). This rewrites each stored
results.json as the new code writes it: without the first layer's
``backward_input`` row, with saturated_pct, flagged and audit_total
recomputed from the remaining rows.

Usage: python benchmarks/migrate_first_layer.py [RUNS_DIR]   (idempotent)
"""
import json
import os
import sys

from intsim.app import runfolder
from intsim.app.auditreport import audit_rows, merge_audits

HERE = os.path.dirname(os.path.abspath(__file__))
FIRST = {"fcnet": "backbone.0", "resnet32": "backbone.0"}


def migrate(res: dict) -> bool:
    first = FIRST[res["run"]["cil"]["model"]]
    acc = res["run"].get("acc_limit")
    thr = float(res["config"].get("audit_threshold", 1.0))
    changed = False
    for rec in res["tasks"]:
        passes = (rec.get("audit") or {}).get(first)
        if passes is None or "backward_input" not in passes:
            continue
        del passes["backward_input"]
        rows = audit_rows(rec["audit"], acc, thr)
        tiles = sum(r["tiles"] for r in rows)
        sat = sum(r["saturated"] for r in rows)
        rec["saturated_pct"] = 100.0 * sat / tiles if tiles else 0.0
        rec["flagged"] = sorted({r["layer"] for r in rows if r["flagged"]})
        changed = True
    if changed:
        res["audit_total"] = merge_audits(r["audit"] for r in res["tasks"])
    return changed


def main(argv):
    runs_dir = argv[1] if len(argv) > 1 else os.path.join(HERE, "results", "runs")
    n = 0
    for name in sorted(os.listdir(runs_dir)):
        path = os.path.join(runs_dir, name, runfolder.RESULTS)
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            res = json.load(f)
        if migrate(res):
            runfolder.atomic_write_json(path, res)
            n += 1
    print(f"{n} run folders rewritten")


if __name__ == "__main__":
    main(sys.argv)
