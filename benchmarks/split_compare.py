"""HAPT iCaRL FP vs HDQT 4/8 with the paper's subject split, beside today's split.

`make split-compare`: the paper's protocol (100 epochs per task, LR 0.01
constant, memory 200) on the embedded HAPT-561 features, iCaRL, FP and
HDQT 4/8 (tile 32, clamp), over the paper's 20 HAR seeds with the authors'
subject split (`split = "paper"`: Python's random.sample of the subjects in
file order, seeded with the run seed; docs/data.md), beside the runs with
intsim's former fixed split (`split = "sorted"`: subjects 1-6, 8-24 train)
that benchmarks/results/runs/ already holds. Question (issue 14 item 5): does
the iCaRL HDQT - FP gap move toward the paper's -1.00 (avg) and is the
spread across seeds like the paper's?

Environment: SEEDS (default 20), JOBS (worker processes). --table-only prints
the table from the runs already finished. Writes benchmarks/results/split_compare.md.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from intsim.app import jobs as ex  # noqa: E402
from benchutil import OLD_SPLIT, print_table, run_or_collect, write_table  # noqa: E402

HDQT = {"kind": "hdqt", "bits": 4, "acc_bits": 8, "tile": 32, "acc_mode": "clamp"}
ARITHS = (("FP", {"kind": "fp"}), ("HDQT 4/8", HDQT))
SPLITS = (("paper", {}), ("sorted (former)", OLD_SPLIT))
# docs/paper.md sec 12: (last, avg), mean over the paper's 20 seeds
PAPER = {("cnn", "FP"): (82.98, 89.94), ("cnn", "HDQT 4/8"): (82.56, 88.94),
         ("nme", "FP"): (85.80, 91.71), ("nme", "HDQT 4/8"): (84.94, 90.63)}


def make_jobs(n_seeds):
    seeds = ex.HAR_SEEDS[:n_seeds]
    jobs = {}
    for split, over in SPLITS:
        for name, spec in ARITHS:
            jobs[(split, name)] = [ex.Job("hapt", "icarl", spec, s, dict(over)) for s in seeds]
    return jobs


def rows(runs, jobs):
    out = []
    for split, _ in SPLITS:
        for kind in ("cnn", "nme"):
            fp = jobs[(split, "FP")]
            for name, _ in ARITHS:
                js = jobs[(split, name)]
                last = ex.summaries(runs, js, f"{kind}_last")
                avg = ex.summaries(runs, js, f"{kind}_avg")
                gap = "-"
                if name != "FP":
                    f = ex.summaries(runs, fp, f"{kind}_avg")
                    gap = ex.fmt_pm([None if a is None or b is None else a - b
                                     for a, b in zip(avg, f)])
                p = PAPER[(kind, name)]
                pg = p[1] - PAPER[(kind, "FP")][1]
                out.append([split, kind.upper(), name, ex.fmt_pm(last), ex.fmt_pm(avg), gap,
                            f"{p[0]:.2f} / {p[1]:.2f}", "-" if name == "FP" else f"{pg:+.2f}",
                            len([x for x in avg if x is not None])])
    return out


def main():
    n_seeds = int(os.environ.get("SEEDS", "20"))
    jobs = make_jobs(n_seeds)
    new = [j for (split, _), js in jobs.items() if split == "paper" for j in js]
    runs = run_or_collect(new)
    runs.update(ex.collect([j for js in jobs.values() for j in js], ex_dir()))
    header = ["split", "metric", "arith", "last %", "avg inc %", "avg - FP (paired)",
              "paper last / avg", "paper avg gap", "seeds"]
    table = rows(runs, jobs)
    print_table(header, table)
    missing = sum(1 for (split, _), js in jobs.items() if split == "paper"
                  for j in js if j.key not in runs)
    notes = [
        "Protocol: HAPT-561 embedded, FCNet 561-561, iCaRL, 2 classes then +2 (6 tasks), memory "
        "200, batch 128, 100 epochs a task, LR 0.01 constant (quirk 4). HDQT 4/8: 4-bit "
        "operands, 8-bit accumulators, tile 32, clamp.",
        f"Seeds: the paper's 20 HAR seeds, first {n_seeds} (docs/paper.md sec 9). The former "
        "split's rows use the runs of those seeds already stored (fewer seeds).",
        "mean +- sample std over seeds; gaps paired by seed. Paper: docs/paper.md sec 12 "
        "(authors' plotted data, mean over 20 seeds; no std published).",
        "The paper split draws the training subjects per seed: 23 of the 28 subjects after "
        "the removals, in file order (docs/data.md).",
    ] + ([f"{missing} run(s) of the paper split not finished yet."] if missing else [])
    path = write_table("split_compare", "HAPT iCaRL: the paper's subject split vs the former",
                       header, table, "make split-compare", notes=notes)
    print(f"wrote {path}")


def ex_dir():
    from benchutil import RUNS_DIR
    return RUNS_DIR


if __name__ == "__main__":
    main()
