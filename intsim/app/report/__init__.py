"""``intsim report``: runs and sweeps as one self-contained HTML page.

model.py reads what the page shows (settings, accuracies, the accuracy
matrix, the audit, the cost, a sweep's grid points) from results.json dicts
and sweep folders; svg.py draws the charts as inline SVG by hand; page.py
writes the page (inline CSS and JavaScript, nothing fetched). docs/report.md
describes the page.
"""
from __future__ import annotations

import os

from intsim.app.report.model import ReportError, RunInput, SweepInput, load_sweep
from intsim.app.report.page import build_report

__all__ = ["ReportError", "RunInput", "SweepInput", "build_report", "load_sweep",
           "write_report"]


def write_report(path, runs, sweeps=(), *, title=None, table=None) -> str:
    """Write the report of ``runs`` and ``sweeps`` (see :func:`build_report`) to
    ``path``, atomically (a temporary file renamed over it); returns the path."""
    text = build_report(list(runs), list(sweeps), title=title, table=table)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
