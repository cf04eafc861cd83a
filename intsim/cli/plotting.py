"""PNG figures from run results (matplotlib is an optional extra).

- :func:`plot_accuracy`: accuracy after each task of several runs on one
  figure (e.g. FP vs HDQT), CNN solid and NME dashed when present.
- :func:`plot_saturation`: heatmap of saturated-tile % by layer/pass (rows)
  and task (columns) for one run; only for runs with quantized layers
  (:func:`has_saturation_data`).

:func:`accuracy_figure` and :func:`saturation_figure` return the figures
unsaved (for tests and notebooks); the ``plot_*`` functions save them.

Both take the parsed ``results.json`` dicts. Without matplotlib they raise
:class:`PlotUnavailable` whose message says how to install it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from intsim.app.auditreport import PASS_SHORT, audit_rows, saturation_matrix


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot():
    try:                    # optional extra: matplotlib (all its imports are in functions)
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(
            "plotting needs matplotlib, which is not installed: "
            "pip install -e '.[plot]' (or pip install matplotlib)") from None
    return plt


def task_accuracies(results: dict, metric: str = "cnn") -> list[float | None]:
    """Accuracy (%) after each task for ``metric`` (cnn/nme); None where absent."""
    out = []
    for t in results.get("tasks", []):
        v = t.get(metric)
        out.append(None if v is None else float(v))
    return out


def saturation_grid(results: dict) -> tuple[list[str], list[list[float | None]]]:
    """(row labels "layer/pass", saturation % [row][task]) of a run, None where
    the pass produced no tiles in that task; rows that never produced a tile
    (e.g. LUQ's unquantized backward passes) are left out."""
    audits = [t.get("audit") or {} for t in results.get("tasks", [])]
    labels, mat = saturation_matrix(audits)
    tiles = {(f"{r['layer']}/{PASS_SHORT.get(r['pass'], r['pass'])}", t): r["tiles"]
             for t, aud in enumerate(audits) for r in audit_rows(aud, None)}
    grid = [[v if tiles.get((lab, t), 0) > 0 else None for t, v in enumerate(row)]
            for lab, row in zip(labels, mat)]
    keep = [i for i, row in enumerate(grid) if any(v is not None for v in row)]
    return [labels[i] for i in keep], [grid[i] for i in keep]


def has_saturation_data(results: dict) -> bool:
    """True when some task of the run audited a quantized matmul (an FP run has none)."""
    return bool(saturation_grid(results)[0])


def saturation_max(results: dict) -> float:
    """The largest saturation % of any layer/pass and task of the run (0 if none)."""
    _, grid = saturation_grid(results)
    return max((v for row in grid for v in row if v is not None), default=0.0)


def _save(fig, path) -> Path:
    """Save ``fig`` as PNG, grown to hold everything drawn outside the axes, and close it."""
    plt = _pyplot()
    path = Path(path)
    try:
        fig.savefig(path, bbox_inches="tight", pad_inches=0.1)
    finally:
        plt.close(fig)
    return path


def _by_task(runs) -> bool:
    """Plot against the task, not the classes seen: a run's tasks do not add classes
    (the domain scenario has every class in every task)."""
    for _, res in runs:
        seen = [t.get("classes_seen") for t in res.get("tasks", [])]
        if any(a is None or b is None or b <= a for a, b in zip(seen, seen[1:])):
            return True
    return False


def _curves(ax, runs, by_task: bool = False) -> bool:
    """Draw each run's CNN (solid) and NME (dashed) curve against the classes seen (or
    the task, 1-based); True if any NME was drawn."""
    any_nme = False
    for i, (label, res) in enumerate(runs):
        seen = [k + 1 if by_task else t.get("classes_seen", k + 1)
                for k, t in enumerate(res.get("tasks", []))]
        for metric, style in (("cnn", "-o"), ("nme", "--s")):
            pts = [(x, y) for x, y in zip(seen, task_accuracies(res, metric)) if y is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, style, color=f"C{i % 10}", markersize=4)
                any_nme |= metric == "nme"
    return any_nme


def _legend_handles(labels: Sequence[str], any_nme: bool):
    """One colour per run; with NME curves, two more entries for the line styles."""
    from matplotlib.lines import Line2D     # optional extra: matplotlib
    if not any_nme:
        return [Line2D([], [], color=f"C{i % 10}", marker="o", markersize=4, label=lab)
                for i, lab in enumerate(labels)]
    runs = [Line2D([], [], color=f"C{i % 10}", lw=2.5, label=lab) for i, lab in enumerate(labels)]
    return runs + [Line2D([], [], color="0.35", marker="o", markersize=4, label="CNN (solid)"),
                   Line2D([], [], color="0.35", ls="--", marker="s", markersize=4,
                          label="NME (dashed)")]


def accuracy_figure(runs: Sequence[tuple[str, dict]], title: str | None = None):
    """The accuracy-per-task figure (not saved): a colour per run, CNN solid and
    NME dashed, the legend to the right of the axes so it hides no curve; against
    the classes seen, or the task when a run's tasks add no classes (domain)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator   # optional extra: matplotlib
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    by_task = _by_task(runs)
    any_nme = _curves(ax, runs, by_task)
    ax.set_xlabel("task" if by_task else "classes seen")
    ax.set_ylabel("top-1 accuracy on the tasks seen (%)" if by_task else
                  "top-1 accuracy on seen classes (%)")
    ax.set_ylim(-2, 102)                     # markers at 0 and 100 stay whole
    ax.set_yticks(range(0, 101, 20))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "accuracy after each task")
    ax.legend(handles=_legend_handles([lab for lab, _ in runs], any_nme), fontsize=8,
              loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return fig


def plot_accuracy(runs: Sequence[tuple[str, dict]], path, title: str | None = None) -> Path:
    """Accuracy-per-task curves; ``runs`` = [(label, results), ...]. Returns path."""
    return _save(accuracy_figure(runs, title), path)


def _annotate(ax, grid, vmax: float) -> None:
    """Write each cell's % in it (dark text on light cells, light on dark; '-'
    where the pass produced no tiles)."""
    for r, row in enumerate(grid):
        for c, v in enumerate(row):
            ax.text(c, r, "-" if v is None else f"{v:.1f}", ha="center", va="center",
                    fontsize=6.5, color="white" if v is not None and v > 0.55 * vmax else "black")


def saturation_figure(results: dict, title: str | None = None, vmax: float | None = None):
    """The saturation heatmap (not saved) of :func:`saturation_grid`: rows
    layer/pass, columns task, the % written in each cell when the grid is
    small enough to read (blank, '-': no tiles). ``vmax``: the
    top of the colour scale (pass the same to several runs to compare them;
    default: this run's largest %, at least 1).
    Raises ValueError for a run without quantized matmuls (nothing to draw)."""
    plt = _pyplot()
    labels, grid = saturation_grid(results)
    if not labels:
        raise ValueError("no quantized matmuls recorded")
    ntask = len(grid[0])
    fig, ax = plt.subplots(figsize=(2.0 + 0.55 * ntask, 1.2 + 0.28 * len(labels)), dpi=110)
    vmax = max(1.0, vmax if vmax is not None else saturation_max(results))
    mat = [[float("nan") if v is None else v for v in row] for row in grid]
    im = ax.imshow(mat, aspect="auto", cmap="magma_r", vmin=0, vmax=vmax)
    fig.colorbar(im, ax=ax, label="saturated tiles (%)")
    if len(labels) * ntask <= 200:
        _annotate(ax, grid, vmax)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xticks(range(ntask))
    ax.set_xticklabels([str(i + 1) for i in range(ntask)])
    ax.set_xlabel("task")
    ax.set_title(title or "accumulator saturation by layer and task", fontsize=9)
    return fig


def plot_saturation(results: dict, path, title: str | None = None,
                    vmax: float | None = None) -> Path:
    """Heatmap of saturation % (rows: layer/pass, columns: task). Returns path.
    Raises ValueError for a run without quantized matmuls (see
    :func:`has_saturation_data`)."""
    return _save(saturation_figure(results, title, vmax), path)


def plot_sweep(x_axis: str, series: dict, path, ylabel: str, title: str | None = None) -> Path:
    """One line per group: mean (+- std over seeds as error bars) against ``x_axis``;
    ``series`` as :func:`intsim.app.sweepreport.sweep_series` gives it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, (xs, means, stds) in series.items():
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=label)
    ax.set_xlabel(x_axis)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.set_title(title or f"{ylabel} against {x_axis} (mean +- std over seeds)", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def plot_pareto(points: Sequence[dict], front: Sequence[int], path, ylabel: str,
                title: str | None = None) -> Path:
    """Accuracy against energy: one point per grid point or run (``points`` as
    intsim.app.sweepreport.energy_points gives them, with error bars over seeds), the
    Pareto front (``front``: indices, by energy) joined by a line; log energy axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, p in enumerate(points):
        on = i in front
        ax.errorbar(p["energy_uj"], p["acc"], xerr=p["energy_std"], yerr=p["acc_std"],
                    marker="o" if on else "x", capsize=3, color="C0" if on else "C7")
        ax.annotate(p["label"], (p["energy_uj"], p["acc"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    if front:
        ax.plot([points[i]["energy_uj"] for i in front], [points[i]["acc"] for i in front],
                color="C0", lw=1, label="Pareto front")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_xscale("log")
    ax.set_xlabel("energy per run (uJ, log scale)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title or f"{ylabel} against energy (mean +- std over seeds)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
