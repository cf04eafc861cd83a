"""The readers of run folders on real (tiny) runs: ``compare`` names the
settings that differ, ``audit --explain`` and ``--threshold`` checks, and
``plot`` (where the PNGs go, which are made, the legend off the curves)."""
import json

import pytest
from click.testing import CliRunner

from intsim.cli import main
from intsim.cli.runs import AUDIT_LEGEND, unique_names
from test_cli_runs import _write_run
from test_cli_train import FAST, train


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("INTSIM_THREADS", "1")


def _run(path, *args):
    """A tiny finished run (3 tasks of the in-memory data) in ``path``."""
    r = train(["--out", str(path), *FAST, "--hidden", "8,8", *args])
    assert r.exit_code == 0, r.output + r.stderr
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An FP, an HDQT and an HDQT --acc-mode saturate run (2 epochs)."""
    root = tmp_path_factory.mktemp("runs")
    return {"fp": _run(root / "fp", "--arith", "fp"),
            "hdqt": _run(root / "hdqt"),
            "sat": _run(root / "sat", "--acc-mode", "saturate", "--epochs", "2")}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# ---------------------------------------------------------------- compare

def test_compare_prints_the_settings_that_differ(runs):
    r = invoke("compare", runs["hdqt"], runs["sat"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    diffs = [l for l in lines if l.startswith("differs: ")]
    assert "differs: acc_mode: hdqt=clamp sat=saturate" in diffs
    assert "differs: epochs: hdqt=1 sat=2" in diffs
    assert len(diffs) == 2                                  # nothing else differs
    assert lines.index(diffs[-1]) < next(i for i, l in enumerate(lines) if l.startswith("run "))
    rows = [l for l in lines if "CNN" in l]
    assert rows[0].startswith("hdqt (icarl, hdqt4/8) ")
    assert rows[1].startswith("sat (icarl, hdqt4/8 saturate) ")


def test_compare_shows_run_threads_and_missing_settings(tmp_path):
    a = _write_run(tmp_path / "a", [90.0, 80.0])
    b = _write_run(tmp_path / "b", [90.0, 80.0])
    for d, threads in ((a, 1), (b, 2)):
        res = json.loads((d / "results.json").read_text())
        res["run"]["threads"] = {"numba": threads, "openblas": 1}
        res["config"]["epochs"] = 15 if d is a else 100
        if d is b:
            del res["config"]["audit_threshold"]
        (d / "results.json").write_text(json.dumps(res))
    r = invoke("compare", a, b)
    assert r.exit_code == 0, r.output
    assert "differs: epochs: a=15 b=100" in r.stdout
    assert "differs: run.threads.numba: a=1 b=2" in r.stdout
    assert "differs: audit_threshold: a=1.0 b=-" in r.stdout
    assert "openblas" not in r.stdout


def test_compare_same_settings_and_same_folder_names(tmp_path):
    a = _write_run(tmp_path / "x", [90.0, 80.0])
    (tmp_path / "y").mkdir()
    b = _write_run(tmp_path / "y" / "x", [91.0, 81.0])
    r = invoke("compare", a, b, a)
    assert r.exit_code == 0, r.output
    assert "same settings in every run" in r.stdout and "differs:" not in r.stdout
    labels = [l.split(" (")[0] for l in r.stdout.splitlines() if "CNN" in l]
    assert labels == [f"{tmp_path.name}/x#1", "y/x", f"{tmp_path.name}/x#2"]
    assert unique_names([a, a / "results.json"]) == ["x#1", "x#2"]


def test_compare_benchmark_folders():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "runs"
    fp = sorted(root.glob("hapt-bic-fp-s42467-*"))
    if len(fp) < 2:
        pytest.skip("benchmark run folders not present")
    r = invoke("compare", *fp[:2])
    assert r.exit_code == 0, r.output
    assert "differs: " in r.stdout and fp[1].name in r.stdout


@pytest.mark.parametrize("command", ["compare", "plot"])
def test_a_sweep_folder_among_runs_is_one_line(runs, tmp_path, command):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text('{"format": 1, "runs": {}}')
    r = invoke(command, sweep, runs["fp"])
    assert r.exit_code == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert r.stderr == (f"intsim: error: {sweep} is a sweep folder: {command} it alone "
                        f"(intsim {command} {sweep}), or name the run folders inside it\n")


def test_compare_a_config_file_asks_for_the_run_folder(runs):
    r = invoke("compare", runs["fp"] / "config.toml")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "JSON" not in r.stderr
    assert r.stderr == (f"intsim: error: {runs['fp'] / 'config.toml'} is not a run: give a run "
                        f"folder (or its results.json)\n")
    assert invoke("compare", runs["fp"] / "results.json").exit_code == 0


# ------------------------------------------------------------------ audit

def _csv(text):
    import csv
    import io
    return list(csv.DictReader(io.StringIO(text)))


def test_audit_csv_has_the_table_rows(runs):
    from intsim.app.auditreport import audit_rows, merge_audits
    r = invoke("audit", runs["sat"], "--csv")
    assert r.exit_code == 0, r.output + r.stderr
    head = r.stdout.splitlines()[0]
    assert head == "task,layer,pass,tiles,saturated,sat_pct,max_abs,levels_used"
    rows = _csv(r.stdout)
    res = json.loads((runs["sat"] / "results.json").read_text())
    want = [(str(t["task"] + 1), row) for t in res["tasks"] for row in audit_rows(t["audit"], 8)]
    want += [("all", row) for row in audit_rows(res["audit_total"], 8)]
    assert [(x["task"], x["layer"], x["pass"], int(x["tiles"]), int(x["saturated"]),
             float(x["sat_pct"]), float(x["max_abs"])) for x in rows] == \
        [(t, w["layer"], w["pass"], w["tiles"], w["saturated"], w["sat_pct"], w["max_abs"])
         for t, w in want]
    assert all(x["levels_used"] for x in rows)
    one = _csv(invoke("audit", runs["sat"], "--csv", "--task", "2").stdout)
    assert {x["task"] for x in one} == {"2"} and len(one) == len(audit_rows(res["tasks"][1]["audit"], 8))
    assert invoke("audit", runs["fp"], "--csv").stdout == head + "\n"      # FP: no rows
    r = invoke("audit", runs["sat"], "--csv", "--cost")
    assert r.exit_code == 2 and "--csv and --cost exclude each other" in r.stderr


def test_audit_csv_adds_the_float_datapath_columns(tmp_path):
    run = _write_run(tmp_path / "f", [90.0, 80.0], arith="fp8")
    res = json.loads((run / "results.json").read_text())
    for t in res["tasks"]:
        for passes in t["audit"].values():
            for e in passes.values():
                e["flushed"] = 5
    (run / "results.json").write_text(json.dumps(res))
    r = invoke("audit", run, "--csv")
    assert r.exit_code == 0, r.output + r.stderr
    assert r.stdout.splitlines()[0].endswith(",levels_used,flushed,flushed_pct")
    rows = _csv(r.stdout)
    assert rows[0]["flushed"] == "5" and float(rows[0]["flushed_pct"]) == 0.5
    assert rows[-1]["task"] == "all" and rows[-1]["flushed"] == "10"

def test_audit_explain_names_every_column(runs):
    r = invoke("audit", "--explain")
    assert r.exit_code == 0, r.output
    for col in ("layer", "pass", "tiles", "saturated", "max_abs", "/range", "levels", "<<"):
        assert col in r.stdout
    # every header of a real table is explained on a line of its own
    table = invoke("audit", runs["hdqt"], "--task", "1").stdout.splitlines()
    header = next(l for l in table if l.startswith("layer"))
    explained = [l.split()[0] for l in r.stdout.splitlines() if l.startswith("  ") and l[2] != " "]
    for col in header.replace("sat %", "sat%").split():
        assert col.replace("sat%", "sat") in explained, col
    assert [c for c, _ in AUDIT_LEGEND][-1] == "<<"


def test_audit_explain_with_a_run_prints_tables_then_legend(runs):
    r = invoke("audit", runs["sat"], "--explain")
    assert r.exit_code == 0, r.output
    assert r.stdout.index("audit, all tasks") < r.stdout.index("columns of the audit table")


@pytest.mark.parametrize("value", ["-1", "-0.5", "nan", "inf"])
def test_audit_rejects_a_bad_threshold(runs, value):
    r = invoke("audit", runs["hdqt"], "--threshold", value)
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("intsim: error: ")
    assert "--threshold" in r.stderr


def test_audit_without_run_is_one_line(runs):
    r = invoke("audit")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "RUN" in r.stderr
    assert invoke("audit", runs["hdqt"], "--threshold", "0").exit_code == 0


# ------------------------------------------------------------------- plot

def _pngs(d):
    return sorted(p.name for p in d.glob("*.png"))


def test_plot_writes_into_out_and_prints_the_paths(runs, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "figs"
    r = invoke("plot", runs["fp"], runs["hdqt"], runs["sat"], "--out", out)
    assert r.exit_code == 0, r.output
    assert _pngs(out) == ["accuracy.png", "saturation-hdqt.png", "saturation-sat.png"]
    assert r.stdout.splitlines() == [str(out / n) for n in
                                     ("accuracy.png", "saturation-hdqt.png", "saturation-sat.png")]
    assert r.stderr.count("\n") == 1 and "no saturation figure for fp" in r.stderr
    for run in runs.values():
        assert _pngs(run) == []                             # nothing in the run folders
    for name in _pngs(out):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_defaults_to_the_current_folder(runs, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    cwd = tmp_path / "here"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    r = invoke("plot", runs["hdqt"])
    assert r.exit_code == 0, r.output
    assert _pngs(cwd) == ["accuracy.png", "saturation-hdqt.png"]
    assert _pngs(runs["hdqt"]) == []


def test_plot_fp_runs_make_no_saturation_figure(runs, tmp_path):
    pytest.importorskip("matplotlib")
    r = invoke("plot", runs["fp"], "--out", tmp_path)
    assert r.exit_code == 0, r.output
    assert _pngs(tmp_path) == ["accuracy.png"]
    assert r.stdout.splitlines() == [str(tmp_path / "accuracy.png")]


def test_plot_out_is_a_file_is_one_line(runs, tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    r = invoke("plot", runs["hdqt"], "--out", f)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("intsim: error: ")


def test_accuracy_legend_is_outside_the_axes(runs):
    pytest.importorskip("matplotlib")
    from intsim.cli import plotting
    from intsim.cli.runs import load_results
    import matplotlib.pyplot as plt
    loaded = [(name, load_results(p)) for name, p in runs.items()]
    fig = plotting.accuracy_figure(loaded)
    try:
        fig.canvas.draw()
        ax = fig.axes[0]
        legend = ax.get_legend()
        to_fig = fig.transFigure.inverted()
        lb = legend.get_window_extent().transformed(to_fig)
        axb = ax.get_window_extent().transformed(to_fig)
        assert not lb.overlaps(axb), (lb, axb)
        texts = [t.get_text() for t in legend.get_texts()]
        assert texts == ["fp", "hdqt", "sat", "CNN (solid)", "NME (dashed)"]
    finally:
        plt.close(fig)


def test_saturation_figure_refuses_an_fp_run(runs):
    pytest.importorskip("matplotlib")
    from intsim.cli import plotting
    from intsim.cli.runs import load_results
    fp, sat = load_results(runs["fp"]), load_results(runs["sat"])
    assert not plotting.has_saturation_data(fp) and plotting.has_saturation_data(sat)
    with pytest.raises(ValueError):
        plotting.saturation_figure(fp)


def test_saturation_grid_leaves_out_passes_without_tiles():
    from intsim.cli import plotting

    def aud(tiles_bwd):
        return {"fc": {"forward": {"tiles": 100, "saturated": 5, "max_abs": 300},
                       "backward_input": {"tiles": 0, "saturated": 0, "max_abs": 0},
                       "backward_weight": {"tiles": tiles_bwd, "saturated": tiles_bwd // 2,
                                           "max_abs": 9}}}
    res = {"tasks": [{"task": 0, "audit": aud(0)}, {"task": 1, "audit": aud(10)}]}
    labels, grid = plotting.saturation_grid(res)
    assert labels == ["fc/fwd", "fc/bwd-w"]                 # bwd-in never ran: no row
    assert grid == [[5.0, 5.0], [None, 50.0]]               # no tiles in task 1: no value
    assert plotting.saturation_max(res) == 50.0
