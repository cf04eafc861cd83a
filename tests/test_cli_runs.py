"""Audit table, progress output, and the audit/compare/plot commands on
hand-written results.json files."""
import io
import json
import sys

import pytest
from click.testing import CliRunner

from intsim.app import runfolder as runio
from intsim.app.auditreport import audit_rows, audit_to_dict, format_audit, merge_audits, saturation_matrix
from intsim.cli import main
from intsim.kernels.intmm import Audit
from intsim.app.progress import Progress


def _audit(sat0=0, sat1=50):
    return {"fc1": {"forward": {"tiles": 1000, "saturated": sat0, "max_abs": 90, "levels_used": 0.5},
                    "backward_input": {"tiles": 200, "saturated": sat1, "max_abs": 400}},
            "classifier": {"forward": {"tiles": 10, "saturated": 0, "max_abs": 3}}}


def test_audit_rows_flag_and_ratio():
    rows = audit_rows(_audit(), acc_bits=8, threshold=1.0)
    r = {(x["layer"], x["pass"]): x for x in rows}
    assert r[("fc1", "backward_input")]["sat_pct"] == 25.0 and r[("fc1", "backward_input")]["flagged"]
    assert not r[("fc1", "forward")]["flagged"]
    assert r[("fc1", "forward")]["max_over_range"] == pytest.approx(90 / 127)
    assert r[("fc1", "backward_input")]["levels_used"] is None
    text = format_audit(_audit(), 8, 1.0, title="T")
    assert "range +-127" in text and "1 layer(s) flagged: fc1" in text and "<<" in text
    assert "50%" in text                                    # levels used of fc1 forward
    assert "unlimited" in format_audit(_audit(), None)


def test_audit_from_engine_objects_and_merge():
    a = Audit(tiles=10, saturated=1, max_abs=300)
    d = audit_to_dict({"l": {"forward": a}})
    assert d == {"l": {"forward": {"tiles": 10, "saturated": 1, "max_abs": 300.0, "levels_used": None}}}
    m = merge_audits([_audit(0, 50), _audit(10, 0)])
    assert m["fc1"]["forward"]["tiles"] == 2000 and m["fc1"]["forward"]["saturated"] == 10
    assert m["fc1"]["backward_input"]["saturated"] == 50 and m["fc1"]["forward"]["levels_used"] == 0.5
    labels, mat = saturation_matrix([_audit(0, 50), _audit(10, 0)])
    assert labels[:2] == ["fc1/fwd", "fc1/bwd-in"] and mat[1] == [25.0, 0.0] and mat[0] == [0.0, 1.0]


def test_progress_modes():
    out, err = io.StringIO(), io.StringIO()
    p = Progress("bar", out=out, err=err, tty=False)
    p.start_epoch(task=0, num_tasks=3, epoch=0, epochs=2, num_batches=2)
    p.batch(1.0, 3, 4)
    p.batch(0.5, 4, 4)
    assert p.running() == (0.75, 7 / 8)
    p.end_epoch()
    p.task({"task": 0, "num_tasks": 3, "classes_seen": 2, "cnn": 91.5, "nme": None, "seconds": 1.0})
    assert "task 1/3 epoch 1/2 [" in err.getvalue() and "2/2 loss 0.7500 acc  87.5%" in err.getvalue()
    assert "CNN 91.50%" in out.getvalue() and "NME" not in out.getvalue()
    out, err = io.StringIO(), io.StringIO()
    p = Progress("jsonl", out=out, err=err)
    p.start_epoch(0, 1, 0, 1, 1)
    p.batch(2.0, 1, 2)
    p.end_epoch()
    p.task({"task": 0, "num_tasks": 1, "cnn": 50.0})
    p.message("ignored")
    ev = [json.loads(l) for l in out.getvalue().splitlines()]
    assert [e["event"] for e in ev] == ["epoch", "task"] and ev[0]["acc"] == 0.5 and err.getvalue() == ""
    out, err = io.StringIO(), io.StringIO()
    p = Progress("quiet", out=out, err=err)
    p.start_epoch(0, 1, 0, 1, 1)
    p.batch(2.0, 1, 2)
    p.end_epoch()
    p.task({"task": 0, "num_tasks": 1, "cnn": 50.0})
    assert out.getvalue() == "" and err.getvalue() == ""
    with pytest.raises(ValueError):
        Progress("loud")


def _write_run(d, accs, arith="hdqt", nme=True):
    recs = []
    for t, a in enumerate(accs):
        recs.append({"task": t, "classes_seen": 2 * (t + 1), "cnn": a, "nme": a + 1 if nme else None,
                     "audit": _audit(t, 50 * t)})
    summ = {"cnn": {"avg": sum(accs) / len(accs), "last": accs[-1], "forgetting": 10.0}}
    if nme:
        summ["nme"] = {"avg": sum(accs) / len(accs) + 1, "last": accs[-1] + 1, "forgetting": 9.0}
    res = {"config": {"method": "icarl", "arith": arith, "bits": 4, "acc_bits": 8,
                      "audit_threshold": 1.0},
           "run": {"acc_limit": 8 if arith != "fp" else None},
           "tasks": recs, "summary": summ, "complete": True}
    d.mkdir()
    runio.atomic_write_json(d / "results.json", res)
    return d


def test_audit_command(tmp_path):
    run = _write_run(tmp_path / "r1", [90.0, 80.0])
    r = CliRunner().invoke(main, ["audit", str(run)])
    assert r.exit_code == 0, r.output
    assert "audit after task 1" in r.stdout and "audit after task 2" in r.stdout
    assert "audit, all tasks" in r.stdout and "fc1" in r.stdout
    r = CliRunner().invoke(main, ["audit", str(run), "--task", "2", "--threshold", "30"])
    assert r.exit_code == 0 and "audit after task 1" not in r.stdout and "0 layer(s) flagged" in r.stdout
    r = CliRunner().invoke(main, ["audit", str(run), "--task", "5"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "out of range" in r.stderr


def test_compare_command(tmp_path):
    a = _write_run(tmp_path / "fp", [95.0, 85.0], arith="fp")
    b = _write_run(tmp_path / "hdqt", [93.0, 80.0])
    r = CliRunner().invoke(main, ["compare", str(a), str(b)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    hd = [l for l in lines if l.startswith("hdqt") and "CNN" in l][0]
    assert "86.50" in hd and "80.00" in hd and "-3.50" in hd and "-5.00" in hd
    fp = [l for l in lines if l.startswith("fp") and "CNN" in l][0]
    assert "+0.00" in fp


def test_missing_and_broken_runs(tmp_path):
    r = CliRunner().invoke(main, ["compare", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "not found" in r.stderr and r.stderr.count("\n") == 1
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["audit", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "no results.json" in r.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{oops")
    r = CliRunner().invoke(main, ["plot", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "not valid JSON" in r.stderr


def test_plot_without_matplotlib(tmp_path, monkeypatch):
    run = _write_run(tmp_path / "r", [90.0, 80.0])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.chdir(tmp_path)                 # plots go to the current folder
    r = CliRunner().invoke(main, ["plot", str(run)])
    assert r.exit_code == 2 and "matplotlib" in r.stderr and "pip install" in r.stderr
    assert not (tmp_path / "accuracy.png").exists() and not (run / "accuracy.png").exists()


def test_plot_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    a = _write_run(tmp_path / "fp", [95.0, 85.0], arith="fp")
    b = _write_run(tmp_path / "hdqt", [93.0, 80.0], nme=False)
    out = tmp_path / "figs"
    r = CliRunner().invoke(main, ["plot", str(a), str(b), "--out", str(out)])
    assert r.exit_code == 0, r.output
    for name in ("accuracy.png", "saturation-fp.png", "saturation-hdqt.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
