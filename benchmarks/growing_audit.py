"""Where DER and MEMO saturate under HDQT 4/8: the audit by layer group.

`python benchmarks/growing_audit.py` (after `make reproduce-hapt-paper`):
reads the HAPT DER and MEMO HDQT 4/8 runs (paper split, 100 epochs) from
benchmarks/results/runs/ and prints, per layer group and pass, the share of
accumulator results outside the 8-bit range over the whole run (audit_total:
sum of saturated / sum of results, then mean +- std over seeds). Groups merge
the same layer of every backbone (DER: backbone.bN.0, backbone.bN.2) or
specialized block (MEMO: specialized.sN.0, specialized.sN.2). Writes
benchmarks/results/growing_audit.md.
"""
import glob
import json
import os
import re
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from intsim.app import jobs as ex  # noqa: E402
from benchutil import RUNS_DIR, print_table, write_table  # noqa: E402

PASSES = ("forward", "backward_input", "backward_weight")


def group(layer):
    return re.sub(r"\.(b|s)\d+\.", r".\1N.", layer)


def runs(method):
    out = []
    for f in sorted(glob.glob(os.path.join(RUNS_DIR, f"hapt-{method}-hdqt4-8-*", "results.json"))):
        r = json.load(open(f))
        c = r["config"]
        if r.get("complete") and c.get("split") == "paper" and c["epochs"] == 100 \
                and c["acc_bits"] == 8 and c["acc_mode"] == "clamp":
            out.append(r)
    return out


def rows():
    table = []
    for method in ("der", "memo"):
        rs = runs(method)
        per = defaultdict(list)                        # (group, pass) -> [% per seed]
        for r in rs:
            acc = defaultdict(lambda: [0, 0])
            for layer, passes in r["audit_total"].items():
                for p, a in passes.items():
                    t = acc[(group(layer), p)]
                    t[0] += a["saturated"]
                    t[1] += a["tiles"]
            for k, (s, n) in acc.items():
                per[k].append(100.0 * s / n if n else None)
        for g in sorted({k[0] for k in per}):
            table.append([method.upper(), g] + [ex.fmt_pm(per.get((g, p), []), 3) if per.get((g, p))
                                                 else "-" for p in PASSES] + [len(rs)])
    return table


def main():
    header = ["method", "layer group", "forward sat %", "backward_input sat %",
              "backward_weight sat %", "seeds"]
    table = rows()
    print_table(header, table)
    notes = ["HAPT, HDQT 4/8 (tile 32, clamp), paper split, 100 epochs a task; the paper's first "
             "seeds. sat %: accumulator results outside +-127 / all results of that group and pass "
             "over the whole run (forward includes evaluation); mean +- std over seeds. A first "
             "layer computes no input gradient (no backward_input). Groups merge the same layer of "
             "every DER backbone (bN) or MEMO specialized block (sN)."]
    path = write_table("growing_audit", "DER and MEMO under HDQT 4/8: saturation by layer group",
                       header, table, "python benchmarks/growing_audit.py", notes)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
