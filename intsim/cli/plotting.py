"""PNG figures from run results (matplotlib is an optional extra).

- :func:`plot_accuracy`: accuracy after each task of several runs on one
  figure (e.g. FP vs HDQT), CNN solid and NME dashed when present.
- :func:`plot_saturation`: heatmap of saturated-tile % by layer/pass (rows)
  and task (columns) for one run.

Both take the parsed ``results.json`` dicts. Without matplotlib they raise
:class:`PlotUnavailable` whose message says how to install it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from intsim.app.auditreport import saturation_matrix


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot():
    try:
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


def plot_accuracy(runs: Sequence[tuple[str, dict]], path, title: str | None = None) -> Path:
    """Accuracy-per-task curves; ``runs`` = [(label, results), ...]. Returns path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for i, (label, res) in enumerate(runs):
        color = f"C{i % 10}"
        seen = [t.get("classes_seen", k + 1) for k, t in enumerate(res.get("tasks", []))]
        for metric, style in (("cnn", "-o"), ("nme", "--s")):
            acc = task_accuracies(res, metric)
            pts = [(x, y) for x, y in zip(seen, acc) if y is not None]
            if not pts:
                continue
            xs, ys = zip(*pts)
            lab = label if metric == "cnn" else f"{label} (NME)"
            ax.plot(xs, ys, style, color=color, label=lab, markersize=4)
    ax.set_xlabel("classes seen")
    ax.set_ylabel("top-1 accuracy on seen classes (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "accuracy after each task")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_saturation(results: dict, path, title: str | None = None) -> Path:
    """Heatmap of saturation % (rows: layer/pass, columns: task). Returns path."""
    plt = _pyplot()
    audits = [t.get("audit") or {} for t in results.get("tasks", [])]
    labels, mat = saturation_matrix(audits)
    ntask = max(len(audits), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * ntask, 1.4 + 0.28 * max(len(labels), 1)), dpi=110)
    if labels:
        im = ax.imshow(mat, aspect="auto", cmap="magma_r", vmin=0,
                       vmax=max(1.0, max(max(r) for r in mat)))
        fig.colorbar(im, ax=ax, label="saturated tiles (%)")
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=7)
    else:
        ax.text(0.5, 0.5, "no quantized matmuls recorded", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xticks(range(len(audits)))
    ax.set_xticklabels([str(i + 1) for i in range(len(audits))])
    ax.set_xlabel("task")
    ax.set_title(title or "accumulator saturation by layer and task", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
