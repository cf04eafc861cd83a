"""intsim.app.sweep / `intsim sweep`: SPEC parsing, keys shared with benchmark jobs,
the local and Dask executors, failures, resume and status (tiny synthetic runs)."""
import builtins
import json
import os
import sys

import pytest
from click.testing import CliRunner

from intsim.app import jobs as ex
from intsim.app import runfolder
from intsim.app import sweep as sw
from intsim.cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = os.path.join(ROOT, "benchmarks", "results", "runs")
SPECS = os.path.join(ROOT, "benchmarks", "specs")
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

TINY_BASE = ('dataset = "synthetic"\nschedule = "paper"\nepochs = 1\nhidden = [16, 16]\n'
             'memory = 24\nbatch_size = 32\n')


def write_spec(tmp_path, text, name="spec.toml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def tiny_spec(tmp_path, grid='method = ["icarl", "lwf"]\nseed = [1, 2]\n', extra=""):
    return write_spec(tmp_path, f"[base]\n{TINY_BASE}\n[grid]\n{grid}\n{extra}")


def quiet():
    return open(os.devnull, "w")


def accuracies(out, keys):
    res = {}
    for k in keys:
        with open(os.path.join(out, k, "results.json")) as f:
            d = json.load(f)
        res[k] = [(t["cnn"], t.get("nme")) for t in d["tasks"]]
    return res


# ---------------------------------------------------------------- spec

def test_grid_expands_to_its_product_with_tables_and_extra_runs(tmp_path):
    spec = sw.load_spec(tiny_spec(
        tmp_path, grid='method = ["icarl", "lwf"]\n'
                       'arith = [{arith = "fp"}, {arith = "hdqt", bits = 3}]\nseed = [1, 2]\n',
        extra='[[runs]]\nmethod = "bic"\narith = "luq"\nacc_bits = "none"\n'
              '[runs.grid]\nseed = [5, 6]\n'
              '[[runs]]\nmethod = "icarl"\narith = "fp"\nseed = 1\n'))   # a duplicate
    assert len(spec.runs) == 2 * 2 * 2 + 2 and spec.duplicates == 1
    labels = [r.label for r in spec.runs]
    assert labels[0] == "method=icarl arith=fp seed=1"
    assert labels[3] == "method=icarl arith=hdqt,bits=3 seed=2"
    assert labels[-1] == "method=bic arith=luq acc_bits=none seed=6"
    r = spec.runs[3]
    assert (r.config.arith, r.config.bits, r.config.threads, r.config.epochs) == ("hdqt", 3, 1, 1)
    assert r.key.startswith("synthetic-icarl-hdqt3-8-s2-")
    luq = spec.runs[-1]
    assert luq.config.acc_bits is None and luq.key.startswith("synthetic-bic-luq4-w-s6-")
    assert len({x.key for x in spec.runs}) == len(spec.runs)


def test_a_spec_gives_the_folder_of_the_same_benchmark_job(tmp_path):
    job = ex.Job("synthetic", "icarl", {"kind": "hdqt", "bits": 4, "acc_bits": 8}, 3,
                 {"epochs": 1, "hidden": [16, 16], "memory": 24, "batch_size": 32})
    spec = sw.load_spec(tiny_spec(tmp_path, grid="seed = [3]\n"))
    # threads default to 1 in a sweep; settings an arithmetic does not take are dropped
    assert [r.key for r in spec.runs] == [job.key]
    fp = sw.make_run({"dataset": "synthetic", "method": "icarl", "schedule": "paper",
                      "arith": "fp", "bits": 3, "tile": 8, "seed": 3, "epochs": 1,
                      "hidden": [16, 16], "memory": 24, "batch_size": 32})
    assert fp.key == ex.Job("synthetic", "icarl", {"kind": "fp"}, 3, dict(job.overrides)).key
    assert fp.resolved == ex.Job("synthetic", "icarl", {"kind": "fp"}, 3,
                                 dict(job.overrides)).resolved()


@pytest.mark.parametrize("text, msg", [
    ("bogus = 1\n", "unknown key 'bogus'"),
    ("[base]\nfoo = 1\n", r"\[base\]: unknown setting 'foo'"),
    ("[grid]\nseed = 3\n", r"\[grid\]\.seed must be a non-empty list"),
    ("[grid]\nseed = []\n", r"\[grid\]\.seed must be a non-empty list"),
    ("[grid]\nwhat = [1, 2]\n", "unknown setting 'what'"),
    ("[grid]\nx = [{arith = \"fp\"}, 3]\n", r"\[grid\]\.x mixes tables and values"),
    ("[grid]\nx = [{bitz = 3}]\n", r"\[grid\]\.x: unknown setting 'bitz'"),
    ("[grid]\nmethod = [\"icarl\", \"nope\"]\n", "run method=nope: unknown method 'nope'"),
    ("[grid]\nbits = [4, 12]\n", r"run bits=12: bits=12 out of range"),
    ("[[runs]]\nseed = -1\n", "run seed=-1: seed=-1 out of range"),
    ("runs = 3\n", "runs must be an array of tables"),
    ("[base\n", "is not valid TOML"),
])
def test_bad_specs_are_one_line_errors_naming_the_key(tmp_path, text, msg):
    p = write_spec(tmp_path, text)
    with pytest.raises(sw.SpecError, match=msg) as e:
        sw.load_spec(p)
    assert "\n" not in str(e.value) and p in str(e.value)
    r = CliRunner().invoke(main, ["sweep", p, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and r.stderr.startswith("intsim: error: ") \
        and r.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_cli_errors(tmp_path):
    spec = tiny_spec(tmp_path)
    cli = CliRunner()
    for args, msg in [(["sweep", str(tmp_path / "none.toml")], "spec file not found"),
                      (["sweep", spec, "--scheduler", "tcp://x:1"], "--scheduler needs --executor dask"),
                      (["sweep", spec, "--workers", "0"], "--workers must be >= 1"),
                      (["sweep", spec, "--executor", "slurm"], "is not one of"),
                      (["sweep", "status", str(tmp_path)], "holds no sweep.json"),
                      (["sweep", "status", str(tmp_path / "nope")], "is not a folder")]:
        r = cli.invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        assert msg in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_dask_executor_without_dask_names_the_extra(tmp_path, monkeypatch):
    real = builtins.__import__

    def no_dask(name, *a, **k):
        if name.split(".")[0] in ("distributed", "dask"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_dask)
    r = CliRunner().invoke(main, ["sweep", tiny_spec(tmp_path), "--out", str(tmp_path / "o"),
                                  "--executor", "dask"])
    assert r.exit_code == 2 and 'pip install -e ".[dask]"' in r.stderr
    assert r.stderr.count("\n") == 1


# ---------------------------------------------------------------- running

def test_local_sweep_records_failures_skips_done_runs_and_reports_status(tmp_path):
    spec = sw.load_spec(tiny_spec(tmp_path, grid='memory = [24, 1]\nseed = [1, 2]\n'))
    out = str(tmp_path / "out")
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        res = sw.run_sweep(spec.runs, out, sw.LocalExecutor(2), log=f)
    text = log.read_text()
    assert "[done " in text and "ETA" in text and "failed 2" in text
    st = {r.label: res[r.key]["status"] for r in spec.runs}
    assert st == {"memory=24 seed=1": "done", "memory=24 seed=2": "done",
                  "memory=1 seed=1": "failed", "memory=1 seed=2": "failed"}
    stored = json.loads((tmp_path / "out" / "sweep.json").read_text())["runs"]
    bad = stored[spec.runs[2].key]
    assert bad["status"] == "failed" and "memory=1 is fewer exemplars" in bad["error"]
    good = spec.runs[0]
    assert sorted(os.listdir(os.path.join(out, good.key))) == \
        [".lock", "config.toml", "log.jsonl", "results.json"]
    assert stored[good.key]["settings"]["memory"] == 24

    # status (CLI): counts and the error of each failed run
    r = CliRunner().invoke(main, ["sweep", "status", out])
    assert r.exit_code == 0 and "2 done" in r.output and "2 failed" in r.output
    assert r.output.count("memory=1 is fewer exemplars") == 2

    # again: the done runs are skipped (nothing runs), failed ones are retried
    before = os.path.getmtime(os.path.join(out, good.key, "results.json"))
    r = CliRunner().invoke(main, ["sweep", spec.source, "--out", out, "--workers", "1"])
    assert r.exit_code == 1 and "2 already done, 2 to run" in r.stderr
    assert os.path.getmtime(os.path.join(out, good.key, "results.json")) == before
    stored = json.loads((tmp_path / "out" / "sweep.json").read_text())["runs"]
    assert stored[spec.runs[2].key]["attempts"] == 2


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    from intsim.app.driver import RunHooks, run
    spec = sw.load_spec(tiny_spec(tmp_path, grid="seed = [7]\n"))
    (r,) = spec.runs
    ref = str(tmp_path / "ref")
    sw.run_sweep(spec.runs, ref, sw.LocalExecutor(1), log=quiet())

    out = tmp_path / "out"

    def crash(t, rec):
        if t == 1:
            raise RuntimeError("killed")
    with pytest.raises(RuntimeError):
        run(r.config, out / r.key, hooks=RunHooks(on_task_end=crash))
    assert runfolder.has_checkpoint(out / r.key)
    # a sweep.json left by a client that died while the run was running
    state = sw.SweepState(str(out))
    state.update(r.key, status="running")
    state.save()
    assert sw.status(str(out))[r.key]["status"] == "interrupted"
    rr = CliRunner().invoke(main, ["sweep", "status", str(out)])
    assert "interrupted" in rr.output and "resumes from its checkpoint" in rr.output

    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        res = sw.run_sweep(spec.runs, str(out), sw.LocalExecutor(1), log=f)
    assert res[r.key]["status"] == "done"
    assert accuracies(str(out), [r.key]) == accuracies(ref, [r.key])
    events = [json.loads(x)["event"] for x in (out / r.key / "log.jsonl").read_text().splitlines()]
    assert "resume" in " ".join(events)
    assert sw.status(str(out))[r.key]["status"] == "done"


def test_dask_local_cluster_gives_the_local_executors_results(tmp_path):
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed (pip install -e \".[dask]\")")
    assert distributed
    spec = sw.load_spec(tiny_spec(tmp_path))
    keys = [r.key for r in spec.runs]
    local, dask = str(tmp_path / "local"), str(tmp_path / "dask")
    sw.run_sweep(spec.runs, local, sw.LocalExecutor(2), log=quiet())
    exe = sw.make_executor("dask", workers=2)
    assert exe.cluster is not None and len(exe.client.nthreads()) == 2
    assert sorted(exe.client.nthreads().values()) == [1, 1]
    res = sw.run_sweep(spec.runs, dask, exe, log=quiet())
    assert all(e["status"] == "done" for e in res.values())
    assert accuracies(dask, keys) == accuracies(local, keys)
    for k in keys:
        a = json.loads(open(os.path.join(local, k, "results.json")).read())
        b = json.loads(open(os.path.join(dask, k, "results.json")).read())
        assert a["summary"] == b["summary"] and a["config"] == b["config"]


# ---------------------------------------------------------------- benchmark specs

def _present(key):
    return os.path.exists(os.path.join(RUNS, key, "results.json"))


def test_reproduce_hapt_spec_finds_the_benchmark_runs():
    import reproduce_hapt
    spec = sw.load_spec(os.path.join(SPECS, "reproduce_hapt.toml"))
    assert spec.out == os.path.normpath(RUNS) and len(spec.runs) == 30
    jobs, _ = reproduce_hapt.make_jobs(False, 3)
    job_keys = {j.key for js in jobs.values() for j in js}
    wide = [r for r in spec.runs if r.config.arith == "luq" and r.config.acc_bits is None]
    assert len(wide) == 3                  # the LUQ 4/wide control: a real no-limit run
    assert {r.key for r in spec.runs} == job_keys
    found = [r for r in spec.runs if sw.load_done(r, RUNS) is not None]
    # every run of the grid is stored in this tree, found complete, with its settings
    assert {r.key for r in found} == job_keys


def test_reproduce_hapt_paper_spec_matches_its_table():
    """Every run the paper-split table reads is in reproduce_hapt_paper.toml, and back."""
    import reproduce_hapt
    spec = sw.load_spec(os.path.join(SPECS, "reproduce_hapt_paper.toml"))
    jobs, _ = reproduce_hapt.make_jobs(False, 5, "paper")
    assert {r.key for r in spec.runs} == {j.key for js in jobs.values() for j in js}


@pytest.mark.parametrize("name, script, n", [("ablate", "ablate", 27),
                                             ("sweep_acc", "sweep_acc", 17),
                                             ("ablate_paper", "ablate", 27),
                                             ("sweep_acc_paper", "sweep_acc", 17)])
def test_other_benchmark_specs_match_their_scripts(name, script, n):
    mod = __import__(script)
    spec = sw.load_spec(os.path.join(SPECS, f"{name}.toml"))
    split = "paper" if name.endswith("_paper") else "sorted"
    if script == "ablate":
        jobs, _ = mod.make_jobs(False, 3, split)
    else:
        jobs, _ = mod.make_jobs(False, 1, split=split)
    assert len(spec.runs) == n
    job_keys = {j.key for js in jobs.values() for j in js
                if j.arith.get("acc_bits", 8) is not None}   # see the reproduce_hapt test
    spec_keys = {r.key for r in spec.runs if r.config.acc_bits is not None or
                 r.config.arith == "fp"}
    assert spec_keys == job_keys
    for r in spec.runs:
        if r.key in job_keys and _present(r.key):
            assert sw.load_done(r, RUNS) is not None, r.key


def test_compare_and_plot_a_sweep_folder(tmp_path, monkeypatch):
    """intsim compare DIR: a row per grid point, mean +- std over seeds; intsim plot DIR:
    accuracy against the swept numeric axis."""
    from intsim.app import sweepreport
    spec = sw.load_spec(tiny_spec(tmp_path, grid='acc_bits = [4, 8]\nseed = [1, 2]\n'))
    out = str(tmp_path / "out")
    sw.run_sweep(spec.runs, out, sw.LocalExecutor(1), log=quiet())
    r = CliRunner().invoke(main, ["compare", out])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split()[:2] == ["acc_bits", "seeds"] and len(lines) == 4
    # the row's mean equals the mean of its two seeds' runs
    runs, missing = sweepreport.sweep_runs(out)
    assert missing == 0 and len(runs) == 4
    avgs = [ex.run_summary(res)["cnn_avg"] for axes, res in runs if axes["acc_bits"] == "4"]
    assert lines[2].split()[0] == "4" and lines[2].split()[1] == "2"
    assert lines[2].split()[2] == f"{sum(avgs) / 2:.2f}"
    x, series = sweepreport.sweep_series(out)
    assert x == "acc_bits" and list(series) == ["all"] and series["all"][0] == [4.0, 8.0]
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["plot", out])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "sweep-cnn_avg.png").exists()
