"""Accuracy, saturation and energy of a grid of datapaths, with the Pareto front.

Writes the table of the runs of a SPEC; `intsim sweep` runs them:

    intsim sweep benchmarks/specs/pareto.toml
    python benchmarks/cost_tables.py --spec benchmarks/specs/pareto.toml

`make pareto` does this for pareto.toml (HDQT and LUQ at the input/accumulator
pairs 3_6 .. 8_16 of the authors' accuracy-energy figure); `make tile-sweep` for tile_sweep.toml (HDQT's
accumulator tile against its width). A row per grid point (seeds pooled): the
settings that vary, CNN average and last accuracy, saturated accumulator
results, the run's energy (results.json ``cost``: operation counts priced with
the packaged 45 nm table, docs/method.md) and energy per MAC, the energy
relative to the first row, and whether the point is on the accuracy-energy
Pareto front; the figure of accuracy against energy with the front is written
beside the table (<name>.png, needs matplotlib). For pareto.toml the notes give the ratios the authors' figure
shows: 8_16 / 4_8 and LUQ / HDQT at 4_8.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchutil import load_grid  # noqa: E402

from intsim.app.jobs import mean_std  # noqa: E402
from intsim.app.sweepreport import pareto_front  # noqa: E402
from intsim.cli import plotting  # noqa: E402

#: RunConfig settings a grid point may vary (the rest are the SPEC's base)
VARIED = ("arith", "bits", "acc_bits", "tile", "acc_mode", "method", "dataset")


def main(argv=None):
    grid = load_grid("cost_tables", __doc__, "pareto", argv)
    vals = {k: {getattr(r.resolved, k) for r in grid.runs} for k in VARIED}
    varied = [k for k in VARIED if len(vals[k]) > 1]
    groups = grid.groups(lambda cfg: tuple(getattr(cfg, k) for k in varied))
    means = {}
    for key, g in groups.items():
        e = mean_std(list(grid.values(g, "energy_uj").values()))[0]
        a = mean_std(list(grid.values(g, "cnn_avg").values()))[0]
        means[key] = (e, a)
    pts = [k for k in groups if None not in means[k]]
    front = {pts[i] for i in pareto_front([means[k] for k in pts])}
    first = next((means[k][0] for k in groups if means[k][0] is not None), None)
    header = varied + ["CNN avg %", "CNN last %", "sat %", "energy uJ", "pJ/MAC",
                      "energy / first row", "Pareto", "seeds"]
    rows = []
    for key, g in groups.items():
        e = means[key][0]
        pj = [None if (x is None or m is None or not m) else x * 1e6 / m
              for x, m in zip(grid.values(g, "energy_uj").values(),
                              grid.values(g, "macs").values())]
        pjm = mean_std(pj)[0]
        rows.append([str(v) for v in key] + [
            grid.fmt(g, "cnn_avg"), grid.fmt(g, "cnn_last"), grid.fmt(g, "sat_pct", 3),
            grid.fmt(g, "energy_uj", 1), "-" if pjm is None else f"{pjm:.4f}",
            "-" if e is None or not first else f"{e / first:.3f}",
            "yes" if key in front else "", grid.done(g)])
    notes = [grid.mode_note(), *grid.split_notes()]
    if varied[:1] == ["arith"] and {"bits", "acc_bits"} <= set(varied):
        notes += _authors_ratios(grid, groups, varied, sorted(vals["arith"]))
    notes += ["Energy: the run's operation counts (every layer and pass, forward passes of "
              "evaluation and of the frozen old model included) priced with the packaged 45 nm "
              "table (docs/cost.md, docs/method.md).",
              "Pareto: no other row has lower or equal energy with a higher or equal CNN "
              "average (means over seeds).",
              grid.compute_note()]
    path = grid.write(grid.spec.description or "Accuracy and energy", header, rows, notes)
    points = [{"label": " ".join(map(str, k)), "energy_uj": means[k][0], "acc": means[k][1],
               "energy_std": 0.0, "acc_std": 0.0} for k in pts]
    if points:
        try:
            fig = plotting.plot_pareto(points, [pts.index(k) for k in sorted(
                front, key=lambda k: means[k][0])], os.path.splitext(path)[0] + ".png",
                "CNN avg inc %", grid.spec.description)
            print(f"wrote {fig}")
        except plotting.PlotUnavailable as e:
            print(f"no figure: {e}", file=sys.stderr)


def _authors_ratios(grid, groups, varied, ariths):
    """Notes: the ratios the authors' accuracy-energy figure shows (8_16 / 4_8 and LUQ /
    HDQT at 4_8), of the whole run's energy and of its MAC array's alone (multiplies
    and accumulator additions)."""
    def energy(field, arith, b, a):
        key = tuple({"arith": arith, "bits": b, "acc_bits": a}[k] for k in varied)
        return mean_std(list(grid.values(groups[key], field).values()))[0] if key in groups \
            else None
    notes = []
    for field, what in (("energy_uj", "run energy"), ("mac_energy_uj", "MAC-array energy")):
        for arith in ariths:
            lo, hi = energy(field, arith, 4, 8), energy(field, arith, 8, 16)
            if lo and hi:
                notes.append(f"{arith}: {what} 8_16 / 4_8 = {hi / lo:.2f} (the authors' figure: "
                             "2.98 with their 'simba' model, 2.32 with 'tpu').")
        h, l_ = energy(field, "hdqt", 4, 8), energy(field, "luq", 4, 8)
        if h and l_:
            notes.append(f"LUQ / HDQT {what} at 4_8 = {l_ / h:.2f} (the authors' figure: 0.99 "
                         "'simba', 4.5 'tpu').")
    return notes


if __name__ == "__main__":
    main()
