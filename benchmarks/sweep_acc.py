"""Accumulator-width sweep: HDQT with 4-bit inputs on HAPT iCaRL.

`make sweep-acc`: accumulators of 4, 6, 8, 10 and 12 bits and none, each
accumulator mode (clamp: exact tile sum clipped, the paper's; saturate: a
running sum clipped after every addition; wrap: two's-complement overflow),
tile 32, full HAPT protocol (100 epochs, constant LR 0.01), the paper's
first seed(s) (SEEDS=n, default 1), plus FP as the baseline of the same run,
intsim's former fixed subject split; `--split paper` (`make sweep-acc-paper`):
the authors' split, files sweep_acc_paper.*.
"none" is no accumulator limit (the released code's acc_bits = 16), so the
three modes are one run there (plotted at x = 16). Writes benchmarks/results/sweep_acc.md and, when
matplotlib is importable, sweep_acc.png (accuracy and saturation % vs bits).
QUICK=1: 10 epochs per task, one seed (files *_quick.*).
MODES=clamp,wrap (comma list) restricts the modes, ACC=10,12 the accumulator
widths: a saturate run costs 2-15x a clamp run (the saturating accumulator
replays additions where it can clip; the narrower, the more). With
`--table-only` nothing runs: the table shows every setting, '-' where no run
is cached.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from intsim.app import jobs as ex  # noqa: E402
from benchutil import (RESULTS_DIR, SPLIT_NOTES, print_table, quick_mode,  # noqa: E402
                       run_or_collect, split_arg, split_overrides, write_table)

ACC_BITS = (4, 6, 8, 10, 12, "none")    # "none": no accumulator limit
NONE_X = 16                              # where "none" sits on the plots' x axis
MODES = ("clamp", "saturate", "wrap")
QUICK_EPOCHS = 10


def hdqt_spec(acc, mode):
    # no limit is the same in every mode: one canonical spec, run once.
    if acc == "none":
        return {"kind": "hdqt", "bits": 4, "acc_bits": None, "tile": 32}
    return {"kind": "hdqt", "bits": 4, "acc_bits": acc, "tile": 32, "acc_mode": mode}


def _x(acc):
    return NONE_X if acc == "none" else acc


def make_jobs(quick, n_seeds, modes=MODES, accs=ACC_BITS, split="sorted"):
    """{(acc bits, mode): [Job per seed]}, seeds. split: 'sorted' (former) or 'paper'."""
    seeds = ex.PAPER_SEEDS[:1] if quick else ex.PAPER_SEEDS[:n_seeds]
    over = {**split_overrides(split), **({"epochs": QUICK_EPOCHS} if quick else {})}
    jobs = {("fp", None): [ex.Job("hapt", "icarl", {"kind": "fp"}, s, dict(over)) for s in seeds]}
    for acc in accs:
        for mode in modes:
            jobs[(acc, mode)] = [ex.Job("hapt", "icarl", hdqt_spec(acc, mode), s, dict(over))
                                 for s in seeds]
    return jobs, seeds


def _mean(runs, js, field):
    m, _, _ = ex.mean_std(ex.summaries(runs, js, field))
    return m


def plot(runs, jobs, modes, path, title):
    """Write the PNG; returns None or the reason it could not."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"matplotlib is not importable ({e}); no plot written"
    bits = sorted({k[0] for k in jobs if k[0] != "fp"}, key=_x)
    xs = [_x(b) for b in bits]

    def series(mode, field):   # NaN where no run is cached yet (matplotlib leaves a gap)
        v = [_mean(runs, jobs[(b, mode)], field) for b in bits]
        return [float("nan") if x is None else x for x in v]

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, mk in zip(modes, ("o", "s", "^")):
        a1.plot(xs, series(mode, "cnn_avg"), marker=mk, label=f"HDQT 4-bit, {mode}")
        a2.plot(xs, series(mode, "sat_pct"), marker=mk, label=mode)
    a1.axhline(_mean(runs, jobs[("fp", None)], "cnn_avg"), color="k", ls="--", label="FP")
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


def main():
    quick = quick_mode()
    n_seeds = int(os.environ.get("SEEDS", "1"))
    modes = tuple(m.strip() for m in os.environ.get("MODES", ",".join(MODES)).split(",") if m.strip())
    if not modes or set(modes) - set(MODES):
        raise SystemExit(f"MODES must be a comma list of {MODES}, got {os.environ.get('MODES')!r}")
    accs = tuple(a.strip() if a.strip() == "none" else int(a)
                 for a in os.environ.get("ACC", ",".join(map(str, ACC_BITS))).split(",")
                 if a.strip())
    if not accs or set(accs) - set(ACC_BITS):
        raise SystemExit(f"ACC must be a comma list of {ACC_BITS}, got {os.environ.get('ACC')!r}")
    split = split_arg()
    table_only = "--table-only" in sys.argv[1:]
    if table_only:
        modes, accs = MODES, ACC_BITS   # the table shows every setting
    jobs, seeds = make_jobs(quick, n_seeds, modes, accs, split)
    runs = run_or_collect([j for js in jobs.values() for j in js])
    fp_avg = ex.summaries(runs, jobs[("fp", None)], "cnn_avg")
    header = ["acc bits", "mode", "CNN last %", "CNN avg %", "NME last %", "NME avg %",
              "avg - FP", "sat % fwd", "sat % bwd", "max |tile sum|", "seeds"]
    rows = []
    for key, js in jobs.items():
        acc, mode = key
        avg = ex.summaries(runs, js, "cnn_avg")
        gap = [None if a is None or b is None else a - b for a, b in zip(avg, fp_avg)]
        rows.append(["FP" if acc == "fp" else acc,
                     "-" if acc == "fp" else (mode + (" (= no limit)" if acc == "none" else "")),
                     ex.fmt_pm(ex.summaries(runs, js, "cnn_last")), ex.fmt_pm(avg),
                     ex.fmt_pm(ex.summaries(runs, js, "nme_last")),
                     ex.fmt_pm(ex.summaries(runs, js, "nme_avg")),
                     "-" if acc == "fp" else ex.fmt_pm(gap),
                     "-" if acc == "fp" else ex.fmt_pm(ex.summaries(runs, js, "sat_fwd_pct"), 3),
                     "-" if acc == "fp" else ex.fmt_pm(ex.summaries(runs, js, "sat_bwd_pct"), 3),
                     "-" if acc == "fp" else max([v for v in ex.summaries(runs, js, "max_abs") if v is not None],
                                                 default="-"),
                     sum(j.key in runs for j in js)])
    print_table(header, rows)
    suffix = ("_paper" if split == "paper" else "") + ("_quick" if quick else "")
    epochs = QUICK_EPOCHS if quick else 100
    cmd = "make sweep-acc" + ("-paper" if split == "paper" else "") + (" QUICK=1" if quick else "")
    if not quick and n_seeds != 1:
        cmd = f"SEEDS={n_seeds} " + cmd
    if modes != MODES:
        cmd = f"MODES={','.join(modes)} " + cmd
    if accs != ACC_BITS:
        cmd = f"ACC={','.join(map(str, accs))} " + cmd
    png = os.path.join(RESULTS_DIR, f"sweep_acc{suffix}.png")
    why = plot(runs, jobs, modes, png, f"HAPT iCaRL, HDQT 4-bit inputs, tile 32 ({cmd})")
    total = sum(ex.run_seconds(r) for r in runs.values())
    missing = sum(1 for js in jobs.values() for j in js if j.key not in runs)
    notes = [
        f"Mode: {'QUICK (' + str(epochs) + ' epochs per task, one seed): NOT the paper protocol' if quick else 'full protocol (100 epochs per task)'}.",
        SPLIT_NOTES[split],
        f"HAPT-561, iCaRL, FCNet 561-561, 2+2x5 classes, memory 200, batch 128, {epochs} epochs, "
        f"LR 0.01 constant, seeds {list(seeds)}. HDQT: 4-bit operands, forward tile 32; the "
        "backward reductions are one accumulator each (released code). 'none' = no limit.",
        "Modes: clamp = exact tile sum clipped to +-(2^(a-1)-1) (the paper's); saturate = "
        "running sum clipped after every addition; wrap = tile sum modulo 2^a.",
        "sat %: accumulator results outside the range / all results (fwd: forward incl. "
        "evaluation; bwd: both backward matmuls), over all layers and tasks. "
        "avg - FP: average incremental CNN accuracy minus FP's, paired by seed.",
        (f"Plot: {os.path.basename(png)}." if why is None else f"Plot: {why}."),
        f"Compute: {len(runs)} runs, {total / 60:.1f} CPU-min in total"
        + (f"; {missing} run(s) not finished yet (shown as '-')" if missing else "") + ".",
    ]
    path = write_table(f"sweep_acc{suffix}", "Accumulator-width sweep: HDQT 4-bit, HAPT iCaRL",
                       header, rows, cmd, notes)
    print(f"wrote {path}" + ("" if why else f" and {png}"))
    if why:
        print(why)


if __name__ == "__main__":
    main()
