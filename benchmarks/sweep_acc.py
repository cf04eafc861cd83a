"""Accumulator-width sweep: HDQT with 4-bit inputs on HAPT iCaRL.

Writes the table and plot of the runs of a SPEC; `intsim sweep` runs them:

    intsim sweep benchmarks/specs/sweep_acc.toml
    python benchmarks/sweep_acc.py --spec benchmarks/specs/sweep_acc.toml

`make sweep-acc` does this for sweep_acc.toml (intsim's former fixed subject
split) and sweep_acc_paper.toml (the authors' split, `make sweep-acc-paper`):
accumulators of 4, 6, 8, 10 and 12 bits and none, each accumulator mode
(clamp: exact tile sum clipped, the paper's; saturate: a running sum clipped
after every addition; wrap: two's-complement overflow), tile 32, full HAPT
protocol (100 epochs, constant LR 0.01), the paper's first seed, plus FP as
the baseline. "none" is no accumulator limit (the released code's acc_bits =
16), the same in every mode: one run (plotted at x = 16). A saturate run
costs 2-15x a clamp run (the saturating accumulator replays additions where
it can clip; the narrower, the more).

Writes benchmarks/results/<SPEC name>.md and, when matplotlib is importable,
<SPEC name>.png (accuracy and saturation % vs bits), a row per accumulator
width and mode found in the SPEC. `--overlay benchmarks/specs/quick.toml`
(`make sweep-acc QUICK=1`): 10 epochs per task, files *_quick.*.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchutil import load_grid  # noqa: E402

NONE_X = 16                              # where "none" sits on the plots' x axis
MODES = ("clamp", "saturate", "wrap")


def row_key(cfg):
    """("fp", None), (acc bits or "none", mode) for HDQT 4-bit inputs, None otherwise."""
    if cfg.arith == "fp":
        return ("fp", None)
    if cfg.arith != "hdqt":
        return None
    if cfg.acc_bits is None:
        return ("none", None)
    return (cfg.acc_bits, cfg.acc_mode)


def _x(acc):
    return NONE_X if acc == "none" else acc


def _order(key):
    acc, mode = key
    if acc == "fp":
        return (-1, 0)
    return (_x(acc), MODES.index(mode) if mode in MODES else len(MODES))


def _mean(grid, g, field):
    from intsim.app.jobs import mean_std
    m, _, _ = mean_std(list(grid.values(g, field).values()))
    return m


def plot(grid, groups, path, title):
    """Write the PNG; returns None or the reason it could not."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"matplotlib is not importable ({e}); no plot written"
    bits = sorted({k[0] for k in groups if k[0] != "fp"}, key=_x)
    modes = [m for m in MODES if any(k[1] == m for k in groups)]
    xs = [_x(b) for b in bits]

    def series(mode, field):   # NaN where no run is finished (matplotlib leaves a gap)
        v = []
        for b in bits:
            g = groups.get((b, None if b == "none" else mode))
            m = None if g is None else _mean(grid, g, field)
            v.append(float("nan") if m is None else m)
        return v

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, mk in zip(modes, ("o", "s", "^")):
        a1.plot(xs, series(mode, "cnn_avg"), marker=mk, label=f"HDQT 4-bit, {mode}")
        a2.plot(xs, series(mode, "sat_pct"), marker=mk, label=mode)
    fp = groups.get(("fp", None))
    if fp is not None and _mean(grid, fp, "cnn_avg") is not None:
        a1.axhline(_mean(grid, fp, "cnn_avg"), color="k", ls="--", label="FP")
    a1.set_xlabel("accumulator bits")
    a1.set_ylabel("avg incremental acc. (iCaRL CNN) %")
    a1.set_xticks(xs, [str(b) for b in bits])
    a1.legend(fontsize=8)
    a2.set_xlabel("accumulator bits")
    a2.set_ylabel("saturated accumulator results %")
    a2.set_yscale("symlog", linthresh=0.01)
    a2.set_xticks(xs, [str(b) for b in bits])
    a2.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return None


def main(argv=None):
    grid = load_grid("sweep_acc", __doc__, "sweep_acc", argv)
    groups = grid.groups(row_key)
    groups = dict(sorted(groups.items(), key=lambda kv: _order(kv[0])))
    fp = groups.get(("fp", None))
    header = ["acc bits", "mode", "CNN last %", "CNN avg %", "NME last %", "NME avg %",
              "avg - FP", "sat % fwd", "sat % bwd", "max |tile sum|", "seeds"]
    rows = []
    for (acc, mode), g in groups.items():
        q = acc != "fp"                 # an HDQT row
        max_abs = [v for v in grid.values(g, "max_abs").values() if v is not None]
        rows.append(["FP" if not q else acc,
                     "-" if not q else (mode or "any (= no limit)"),
                     grid.fmt(g, "cnn_last"), grid.fmt(g, "cnn_avg"),
                     grid.fmt(g, "nme_last"), grid.fmt(g, "nme_avg"),
                     grid.diff(g, fp, "cnn_avg") if q and fp else "-",
                     grid.fmt(g, "sat_fwd_pct", 3) if q else "-",
                     grid.fmt(g, "sat_bwd_pct", 3) if q else "-",
                     max(max_abs, default="-") if q else "-",
                     grid.done(g)])
    png = os.path.join(grid.tables_dir, f"{grid.name}.png")
    os.makedirs(grid.tables_dir, exist_ok=True)
    why = plot(grid, groups, png, f"HAPT iCaRL, HDQT 4-bit inputs, tile 32 ({grid.name})")
    notes = [
        grid.mode_note(),
        *grid.split_notes(),
        f"HAPT-561, iCaRL, FCNet 561-561, 2+2x5 classes, memory 200, batch 128, "
        f"{'/'.join(map(str, grid.epochs()))} epochs, LR 0.01 constant, seeds {grid.seeds()}. "
        "HDQT: 4-bit operands, forward tile 32; the backward reductions are one accumulator "
        "each (released code). 'none' = no limit, the same in every mode (one run).",
        "Modes: clamp = exact tile sum clipped to +-(2^(a-1)-1) (the paper's); saturate = "
        "running sum clipped after every addition; wrap = tile sum modulo 2^a.",
        "sat %: accumulator results outside the range / all results (fwd: forward incl. "
        "evaluation; bwd: both backward matmuls), over all layers and tasks. "
        "avg - FP: average incremental CNN accuracy minus FP's, paired by seed.",
        (f"Plot: {os.path.basename(png)}." if why is None else f"Plot: {why}."),
        grid.compute_note(),
    ]
    grid.write("Accumulator-width sweep: HDQT 4-bit, HAPT iCaRL", header, rows, notes)
    print(f"wrote {png}" if why is None else why)


if __name__ == "__main__":
    main()
