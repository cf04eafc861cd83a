"""intsim.cli: the ``intsim`` command (layer 5, user interface).

``main`` is the click group (main.py); each sub-command has its module:
train.py (``intsim train``), runs.py (``audit``, ``compare``, ``plot``),
data.py (``intsim data``). progress.py draws progress lines, plotting.py the
figures. The commands parse options, call :func:`intsim.run` and print; they
hold no training logic.
"""
from intsim.cli.main import main

__all__ = ["main"]
