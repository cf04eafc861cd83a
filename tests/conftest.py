"""Every test sees an idle machine: a load average of 0 and no other intsim run
active (a private active-runs folder), so the thread count a run picks by
itself (intsim.kernels.threads.default_threads) does not depend on what else
the machine runs. Tests of those functions set their own load and folder."""
import os

import pytest

from intsim.kernels import threads


@pytest.fixture(autouse=True)
def _idle_machine(monkeypatch, tmp_path_factory):
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0), raising=False)
    folder = tmp_path_factory.mktemp("active")
    monkeypatch.setattr(threads, "active_runs_dir", lambda: folder)
