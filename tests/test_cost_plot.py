"""`intsim plot --energy`: accuracy against energy with the Pareto front, for a sweep
(one point per grid point, seeds pooled) and for several runs."""
import json

import pytest
from click.testing import CliRunner

from intsim.app.sweepreport import pareto_front
from intsim.cli.main import main

from test_sweep import tiny_spec


def test_pareto_front_keeps_the_points_nothing_beats():
    pts = [(10.0, 50.0), (5.0, 40.0), (20.0, 49.0), (5.0, 45.0), (30.0, 60.0), (30.0, 55.0)]
    assert pareto_front(pts) == [3, 0, 4]
    assert pareto_front([]) == []


def test_plot_energy_of_a_sweep_and_of_runs(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the plot extra (matplotlib)")
    spec = tiny_spec(tmp_path, grid='arith = ["fp", "hdqt", "fp8"]\nseed = [1, 2]\n')
    out = tmp_path / "o"
    cli = CliRunner()
    r = cli.invoke(main, ["sweep", spec, "--out", str(out)])
    assert r.exit_code == 0, r.output + r.stderr
    figs = tmp_path / "figs"
    r = cli.invoke(main, ["plot", str(out), "--energy", "--out", str(figs)])
    assert r.exit_code == 0, r.output + r.stderr
    assert (figs / "pareto.png").stat().st_size > 0
    assert "Pareto front (lowest energy first): " in r.output
    # several runs: one point each; a run without a cost record is named in a note
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    res = json.loads((runs[0] / "results.json").read_text())
    res.pop("cost")
    for t in res["tasks"]:
        t.pop("cost")
    (runs[0] / "results.json").write_text(json.dumps(res))
    r = cli.invoke(main, ["plot", *map(str, runs), "--energy", "--out", str(figs)])
    assert r.exit_code == 0, r.output + r.stderr
    assert "not plotted (no cost record or accuracy)" in r.stderr
    r = cli.invoke(main, ["plot", str(runs[0]), "--energy", "--out", str(figs)])
    assert r.exit_code == 2 and "no run with a cost record" in r.stderr
