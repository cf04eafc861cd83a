"""Where DER and MEMO saturate under HDQT 4/8: the audit by layer group.

    intsim sweep benchmarks/specs/reproduce_hapt_paper.toml
    python benchmarks/growing_audit.py --spec benchmarks/specs/reproduce_hapt_paper.toml

(the sweep is `make reproduce-hapt-paper`). Reads the DER and MEMO HDQT 4/8
runs of the SPEC (HAPT, the authors' split, 100 epochs) and prints, per layer
group and pass, the share of accumulator results outside the 8-bit range over
the whole run (audit_total: sum of saturated / sum of results, then mean +-
std over seeds). Groups merge the same layer of every backbone (DER:
backbone.bN.0, backbone.bN.2) or specialized block (MEMO: specialized.sN.0,
specialized.sN.2). Writes benchmarks/results/growing_audit.md.
"""
import os
import re
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from intsim.app import jobs as ex  # noqa: E402
from benchutil import load_grid  # noqa: E402

PASSES = ("forward", "backward_input", "backward_weight")


def group(layer):
    return re.sub(r"\.(b|s)\d+\.", r".\1N.", layer)


def runs(grid, method):
    """The results of the grid's finished HDQT 4/8 (tile 32, clamp) runs of ``method``."""
    out = []
    for r in grid.runs:
        c = r.resolved
        if c.method == method and c.arith == "hdqt" and c.bits == 4 and c.acc_bits == 8 \
                and c.acc_mode == "clamp" and r.key in grid.results:
            out.append(grid.results[r.key])
    return out


def rows(grid):
    table = []
    for method in ("der", "memo"):
        rs = runs(grid, method)
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


def main(argv=None):
    grid = load_grid("growing_audit", __doc__, "reproduce_hapt_paper", argv, name="growing_audit")
    header = ["method", "layer group", "forward sat %", "backward_input sat %",
              "backward_weight sat %", "seeds"]
    table = rows(grid)
    notes = [grid.mode_note(), *grid.split_notes(),
             f"HAPT, HDQT 4/8 (tile 32, clamp), seeds {grid.seeds()}. sat %: accumulator results "
             "outside +-127 / all results of that group and pass over the whole run (forward "
             "includes evaluation); mean +- std over seeds. A first layer computes no input "
             "gradient (no backward_input). Groups merge the same layer of every DER backbone "
             "(bN) or MEMO specialized block (sN)."]
    grid.write("DER and MEMO under HDQT 4/8: saturation by layer group", header, table, notes)


if __name__ == "__main__":
    main()
