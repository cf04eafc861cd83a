"""HAPT iCaRL FP vs HDQT 4/8 with the paper's subject split, beside the former split.

Writes the table of the runs of a SPEC; `intsim sweep` runs them:

    intsim sweep benchmarks/specs/split_compare.toml
    python benchmarks/split_compare.py --spec benchmarks/specs/split_compare.toml

(`make split-compare`). split_compare.toml: the paper's protocol (100 epochs
per task, LR 0.01 constant, memory 200) on the embedded HAPT-561 features,
iCaRL, FP and HDQT 4/8 (tile 32, clamp), over the paper's 20 HAR seeds with
the authors' subject split (`split = "paper"`: Python's random.sample of the
subjects in file order, seeded with the run seed; docs/data.md), beside the
runs with intsim's former fixed split (`split = "sorted"`: subjects 1-6, 8-24
train) of the reproduce_hapt grid (3 seeds). Question: does the iCaRL HDQT -
FP gap move toward the paper's -1.00 (avg), and is the spread across seeds
like the paper's?

Writes benchmarks/results/<SPEC name>.md: per split, CNN and NME rows of
each arithmetic, the gap to FP paired by seed, and the paper's numbers.
`--seeds N` (`make split-compare SEEDS=N`): the first N seeds.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchutil import load_grid  # noqa: E402

SPLIT_NAMES = {"paper": "paper", "sorted": "sorted (former)"}
# docs/paper.md sec 12: (last, avg), mean over the paper's 20 seeds
PAPER = {("cnn", "FP"): (82.98, 89.94), ("cnn", "HDQT 4/8"): (82.56, 88.94),
         ("nme", "FP"): (85.80, 91.71), ("nme", "HDQT 4/8"): (84.94, 90.63)}


def row_key(cfg):
    """(split, 'FP' | 'HDQT 4/8' | ...) of an iCaRL run; None for other methods."""
    if cfg.method != "icarl":
        return None
    if cfg.arith == "fp":
        return (cfg.split, "FP")
    acc = cfg.acc_bits if cfg.acc_bits is not None else "wide"
    return (cfg.split, f"{cfg.arith.upper()} {cfg.bits}/{acc}")


def rows(grid):
    groups = grid.groups(row_key)
    splits = list(dict.fromkeys(s for s, _ in groups))
    out = []
    for split in splits:
        fp = groups.get((split, "FP"))
        for kind in ("cnn", "nme"):
            for (s, name), g in groups.items():
                if s != split:
                    continue
                gap = "-" if name == "FP" or fp is None else grid.diff(g, fp, f"{kind}_avg")
                p, pfp = PAPER.get((kind, name)), PAPER.get((kind, "FP"))
                out.append([SPLIT_NAMES.get(split, split), kind.upper(), name,
                            grid.fmt(g, f"{kind}_last"), grid.fmt(g, f"{kind}_avg"), gap,
                            f"{p[0]:.2f} / {p[1]:.2f}" if p else "-",
                            "-" if name == "FP" or not (p and pfp) else f"{p[1] - pfp[1]:+.2f}",
                            grid.done(g)])
    return out


def main(argv=None):
    grid = load_grid("split_compare", __doc__, "split_compare", argv)
    header = ["split", "metric", "arith", "last %", "avg inc %", "avg - FP (paired)",
              "paper last / avg", "paper avg gap", "seeds"]
    table = rows(grid)
    seeds = grid.seeds()
    notes = [
        grid.mode_note(),
        f"Protocol: HAPT-561 embedded, FCNet 561-561, iCaRL, 2 classes then +2 (6 tasks), memory "
        f"200, batch 128, {'/'.join(map(str, grid.epochs()))} epochs a task, LR 0.01 constant "
        f"(quirk 4). HDQT 4/8: 4-bit operands, 8-bit accumulators, tile 32, clamp.",
        f"Seeds: {len(seeds)} of the paper's 20 HAR seeds, in its order (docs/paper.md sec 9); "
        "a row's 'seeds' column counts its finished runs (the former split's rows: the "
        "reproduce_hapt grid's seeds).",
        "mean +- sample std over seeds; gaps paired by seed. Paper: docs/paper.md sec 12 "
        "(authors' plotted data, mean over 20 seeds; no std published).",
        "The paper split draws the training subjects per seed: 23 of the 28 subjects after "
        "the removals, in file order (docs/data.md).",
        grid.compute_note(),
    ]
    grid.write("HAPT iCaRL: the paper's subject split vs the former", header, table, notes)


if __name__ == "__main__":
    main()
