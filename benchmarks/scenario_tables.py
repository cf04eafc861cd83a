"""Task- and domain-incremental learning under FP, HDQT and LUQ: the scenario study's table.

Writes the table of the runs of a SPEC; `intsim sweep` runs them:

    intsim sweep benchmarks/specs/scenarios.toml
    python benchmarks/scenario_tables.py --spec benchmarks/specs/scenarios.toml

`make scenarios` does both. A row per scenario, method and arithmetic (seeds
pooled): from each run's accuracy matrix by task (results.json
``summary.cnn.by_task``, docs/scenarios.md): the average incremental accuracy
(the mean over tasks of each row's mean over the tasks seen), the last row's
mean, forgetting (Chaudhry et al. 2018) and backward transfer (Lopez-Paz &
Ranzato 2017), mean +- sample std over seeds; the quantized rows' gaps to FP,
paired by seed; and the saturated accumulator results.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchutil import load_grid  # noqa: E402
from reproduce_hapt import ARITH_NOTE, SAT_NOTE, arith_name  # noqa: E402

ARITH_ORDER = ("FP", "HDQT 4/8", "LUQ 4/8")


def build_rows(grid):
    """The table rows, and the groups {(scenario, method, arith name): {seed: run}}."""
    groups = grid.groups(lambda c: (c.scenario, c.method, arith_name(c)))
    keys = sorted(groups, key=lambda k: (k[0], k[1], ARITH_ORDER.index(k[2])
                                         if k[2] in ARITH_ORDER else len(ARITH_ORDER)))
    rows = []
    for scen, method, name in keys:
        g = groups[(scen, method, name)]
        fp = groups.get((scen, method, "FP"))
        quant = name != "FP" and fp is not None
        rows.append([scen, method, name, grid.fmt(g, "cnn_task_avg"), grid.fmt(g, "cnn_task_last"),
                     grid.fmt(g, "cnn_task_forgetting"), grid.fmt(g, "cnn_bwt"),
                     grid.diff(g, fp, "cnn_task_avg") if quant else "-",
                     grid.diff(g, fp, "cnn_task_last") if quant else "-",
                     "-" if name == "FP" else grid.fmt(g, "sat_pct", 3), grid.done(g)])
    return rows, groups


def main(argv=None):
    grid = load_grid("scenario_tables", __doc__, "scenarios", argv)
    header = ["scenario", "method", "arith", "avg inc %", "last %", "forgetting", "BWT",
              "avg - FP", "last - FP", "sat %", "seeds"]
    rows, _ = build_rows(grid)
    notes = [
        grid.mode_note(),
        *grid.split_notes(),
        "task: the class-incremental tasks (2 classes, then +2), tested with the task identity "
        "(logits masked to the task's classes, Mammoth's mask_classes). domain: every class in "
        "every task, the tasks streaming groups of subjects (seeded), each subject's windows "
        "split 80/20 in file order (docs/scenarios.md).",
        "Accuracy from the accuracy matrix a[i][j] (task j's test data after task i): avg inc = "
        "mean over i of the mean over j <= i; last = mean of the last row; forgetting = mean "
        "over j < T of max_{i<T} a[i][j] - a[T][j]; BWT = mean over j < T of a[T][j] - a[j][j]. "
        "Gaps paired by seed.",
        ARITH_NOTE, SAT_NOTE, grid.compute_note(" (one core per run)")]
    grid.write("Task- and domain-incremental HAPT: FP, HDQT 4/8, LUQ 4/8", header, rows, notes)


if __name__ == "__main__":
    main()
