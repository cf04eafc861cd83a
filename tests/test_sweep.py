"""intsim.app.sweep / `intsim sweep`: SPEC parsing, run keys, overlays (--overlay,
--set, --seeds), --dry-run, the local and Dask executors, failures, resume and
status (tiny synthetic runs)."""
import builtins
import json
import os

import pytest
from click.testing import CliRunner

from intsim.app import jobs as ex
from intsim.app import runfolder
from intsim.app import sweep as sw
from intsim.cli.main import main

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


def test_a_runs_folder_depends_on_its_resolved_settings_only(tmp_path):
    grid = sw.load_spec(tiny_spec(tmp_path, grid="seed = [3]\n"))
    extra = sw.load_spec(write_spec(tmp_path, f"[base]\n{TINY_BASE}\n[[runs]]\nseed = 3\n"
                                              f"arith = \"hdqt\"\nbits = 4\n", "b.toml"))
    over = sw.load_spec(tiny_spec(tmp_path, grid="seed = [1, 2]\n"),
                        sw.make_overlay(sets=["seed=3"]))
    assert [r.key for r in grid.runs] == [extra.runs[-1].key] == [r.key for r in over.runs]
    (r,) = grid.runs
    # threads default to 1 in a sweep; the key hashes the settings that differ from
    # RunConfig's defaults
    assert r.config.threads == 1
    assert r.key == ex.run_key(r.resolved, "hdqt4-8")
    # settings an arithmetic does not take are dropped
    base = {"dataset": "synthetic", "method": "icarl", "schedule": "paper", "arith": "fp",
            "seed": 3, "epochs": 1, "hidden": [16, 16], "memory": 24, "batch_size": 32}
    fp = sw.make_run({**base, "bits": 3, "tile": 8})
    assert fp.key == sw.make_run(base).key and fp.resolved == sw.make_run(base).resolved


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


# ---------------------------------------------------------------- overlays

def test_an_overlay_sets_settings_and_keeps_the_first_seeds(tmp_path):
    spec = tiny_spec(tmp_path, grid='arith = [{arith = "fp"}, {arith = "hdqt", bits = 3}]\n'
                                    'seed = [5, 1, 2]\n',
                     extra='[[runs]]\nmethod = "lwf"\n[runs.grid]\nseed = [1, 7]\n')
    full = sw.load_spec(spec)
    assert full.seeds() == [5, 1, 2, 7] and len(full.runs) == 8
    ov = write_spec(tmp_path, 'description = "short"\nseeds = 2\n[set]\nepochs = 2\n'
                              'bits = 5\n', "short.toml")
    s = sw.load_spec(spec, sw.make_overlay([ov]))
    assert s.overlay.names == ("short",) and s.seeds() == [5, 1]
    # the overlay's settings win over [base], [grid] tables and [[runs]]
    assert {(r.config.arith, r.config.seed) for r in s.runs} == \
        {("fp", 5), ("fp", 1), ("hdqt", 5), ("hdqt", 1)} | {("hdqt", 1)}
    assert all(r.resolved.epochs == 2 for r in s.runs)
    assert all(r.config.bits == 5 for r in s.runs if r.config.arith == "hdqt")
    # labels show the values set (intsim compare DIR groups runs by label)
    assert [r.label for r in s.runs][:3] == ["arith=fp seed=5 epochs=2 bits=5",
                                             "arith=fp seed=1 epochs=2 bits=5",
                                             "arith=hdqt,bits=5 seed=5 epochs=2"]
    assert len(s.runs) == 5                     # 2 x 2 of the grid, lwf seed 1
    # the command line wins over the file; --seeds alone keeps the settings
    s2 = sw.load_spec(spec, sw.make_overlay([ov], ["epochs=3", "acc_mode=wrap"], 1))
    assert s2.seeds() == [5] and all(r.resolved.epochs == 3 for r in s2.runs)
    assert {r.config.acc_mode for r in s2.runs if r.config.arith == "hdqt"} == {"wrap"}
    assert [r.key for r in sw.load_spec(spec, sw.make_overlay(seeds=4)).runs] == \
        [r.key for r in full.runs]
    # --set collapses an axis: identical runs are run once
    one = sw.load_spec(spec, sw.make_overlay(sets=["seed=9"]))
    assert len(one.runs) == 3 and one.seeds() == [9]
    assert sw.parse_set("hidden=[8, 8]") == ("hidden", [8, 8])
    assert sw.parse_set("acc-bits=none") == ("acc_bits", "none")
    assert sw.parse_set("hadamard=false") == ("hadamard", False)


@pytest.mark.parametrize("args, msg", [
    (["--seeds", "0"], "--seeds must be a whole number >= 1"),
    (["--seeds", "3"], "has 2 seed(s) (1, 2); cannot keep its first 3"),
    (["--seeds", "x"], "'x' is not a valid integer"),
    (["--set", "epochs"], "--set epochs: expected KEY=VALUE"),
    (["--set", "bogus=1"], "--set bogus=1: unknown setting 'bogus'"),
    (["--set", "epochs=-1"], "run method=icarl seed=1 epochs=-1: epochs=-1 must be >= 1"),
    (["--overlay", "nope.toml"], "overlay file not found: nope.toml"),
    (["--overlay", "{spec}"], "unknown key 'base' (an overlay has description, set, seeds"),
    (["--overlay", "{bad}"], r"[set]: unknown setting 'epoch'"),
    (["--overlay", "{badseeds}"], "seeds must be a whole number >= 1"),
])
def test_bad_overlays_are_one_line_errors(tmp_path, args, msg):
    spec = tiny_spec(tmp_path)
    files = {"spec": spec,
             "bad": write_spec(tmp_path, "[set]\nepoch = 3\n", "bad.toml"),
             "badseeds": write_spec(tmp_path, "seeds = [1, 2]\n", "badseeds.toml")}
    args = [a.format(**files) for a in args]
    r = CliRunner().invoke(main, ["sweep", spec, "--out", str(tmp_path / "o")] + args)
    assert r.exit_code == 2, r.output
    assert msg in r.stderr and r.stderr.startswith("intsim: error: ") \
        and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "o").exists()
    # an overlay given as the SPEC says so
    ov = write_spec(tmp_path, "seeds = 1\n", "ov.toml")
    r = CliRunner().invoke(main, ["sweep", ov])
    assert r.exit_code == 2 and "an overlay file goes after --overlay" in r.stderr


def test_dry_run_lists_the_runs_and_runs_nothing(tmp_path):
    spec = tiny_spec(tmp_path, grid="seed = [1, 2, 3]\n")
    out = tmp_path / "out"
    runs = sw.load_spec(spec).runs
    from intsim.app.driver import run
    run(runs[0].config, out / runs[0].key, keep_checkpoint=False)

    def crash(t, rec):
        raise RuntimeError("stop")
    from intsim.app.driver import RunHooks
    with pytest.raises(RuntimeError):
        run(runs[1].config, out / runs[1].key, hooks=RunHooks(on_task_end=crash))
    before = sorted(os.listdir(out))
    r = CliRunner().invoke(main, ["sweep", spec, "--out", str(out), "--dry-run"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].endswith(f"3 runs, 1 done, 1 to resume, 1 to run; results in {out}")
    assert [ln.split()[0] for ln in lines[1:]] == ["done", "resumes", "to"]
    assert runs[2].key in lines[3] and lines[3].endswith("seed=3")
    assert sorted(os.listdir(out)) == before            # nothing written, not even sweep.json
    r = CliRunner().invoke(main, ["sweep", spec, "--out", str(out), "--dry-run",
                                  "--seeds", "1", "--set", "epochs=1"])
    assert r.exit_code == 0 and "(set epochs=1, first 1 seed(s)): 1 runs, 1 done" in r.output


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


def test_scenario_is_a_sweep_axis(tmp_path):
    """A grid over the scenarios: a run each, the domain one with its tasks filled in,
    and intsim compare DIR shows the forgetting and backward transfer by task."""
    base = TINY_BASE.replace("memory = 24", "memory = 30")     # 6 classes x 5 domain tasks
    spec = sw.load_spec(write_spec(tmp_path, f'[base]\n{base}\n[grid]\n'
                                             f'scenario = ["class", "task", "domain"]\n'))
    assert [r.label for r in spec.runs] == ["scenario=class", "scenario=task", "scenario=domain"]
    assert [r.config.scenario for r in spec.runs] == ["class", "task", "domain"]
    assert [r.resolved.domain_tasks for r in spec.runs] == [None, None, 5]
    assert len({r.key for r in spec.runs}) == 3
    assert "scenario" not in spec.runs[0].settings()          # the default: same key as before
    out = str(tmp_path / "out")
    res = sw.run_sweep(spec.runs, out, sw.LocalExecutor(1), log=quiet())
    assert {v["status"] for v in res.values()} == {"done"}
    r = CliRunner().invoke(main, ["compare", out])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split()[:2] == ["scenario", "seeds"] and "BWT" in lines[0]
    assert [l.split()[0] for l in lines[2:5]] == ["class", "task", "domain"]
    domain = json.loads(open(os.path.join(out, spec.runs[2].key, "results.json")).read())
    assert domain["run"]["domains"]["kind"] == "permuted" and len(domain["tasks"]) == 5


# ---------------------------------------------------------------- diverged runs

class InProcess(sw.LocalExecutor):
    """The local executor on one thread of this process, so a test's patches reach
    its runs."""

    def _start(self):
        import concurrent.futures as cf
        self._pool = cf.ThreadPoolExecutor(1)


def _files(folder):
    """{name: (bytes, mtime)} of a folder's files but its lock (a worker takes it)."""
    return {n: (open(os.path.join(folder, n), "rb").read(),
                os.stat(os.path.join(folder, n)).st_mtime_ns)
            for n in sorted(os.listdir(folder)) if n != runfolder.LOCK}


def test_a_diverged_run_is_an_outcome_recorded_and_not_run_again(tmp_path, monkeypatch):
    """One run of two diverges in its second task (NaN logits injected): the sweep
    records it as diverged with its cause (sweep.json, progress line), exits 0, and a
    second sweep runs neither run again; --dry-run, plan and status show it."""
    import numpy as np

    from intsim.app.sweep import worker
    from intsim.cil.learner import Learner
    spec = sw.load_spec(tiny_spec(tmp_path, grid="seed = [1, 2]\n"))
    good, bad = spec.runs
    out = str(tmp_path / "out")
    monkeypatch.setattr(sw, "make_executor", lambda *a, **k: InProcess(1))
    calls, nan = [], {"on": False}
    real_drive, forward = worker.drive, Learner._forward

    def drive(cfg, folder, **kw):
        calls.append(os.path.basename(os.fspath(folder)))
        nan["on"] = os.path.basename(os.fspath(folder)) == bad.key
        try:
            return real_drive(cfg, folder, **kw)
        finally:
            nan["on"] = False

    def nan_in_task_2(self, xb):
        logits = forward(self, xb)
        return np.full_like(logits, np.nan) if nan["on"] and self.cur_task == 1 else logits
    monkeypatch.setattr(worker, "drive", drive)
    monkeypatch.setattr(Learner, "_forward", nan_in_task_2)

    r = CliRunner().invoke(main, ["sweep", spec.source, "--out", out])
    assert r.exit_code == 0, r.stderr
    assert sorted(calls) == sorted([good.key, bad.key])
    cause = ("training diverged in task 2 (train, epoch 1, batch 1): "
             "logits contain NaN or inf")
    assert f"DIVERGED {bad.key}: {cause}" in r.stderr
    assert "failed 0 diverged 1;" in r.stderr
    assert "sweep: 1 done, 0 failed, 1 diverged of 2 in" in r.stderr
    stored = json.loads((tmp_path / "out" / "sweep.json").read_text())["runs"]
    e = stored[bad.key]
    assert (e["status"], e["error"], e["tasks_done"], e["attempts"]) == \
        ("diverged", cause, 1, 1)
    assert stored[good.key]["status"] == "done"
    ev = sw.load_diverged(bad, out)
    assert (ev["event"], ev["task"], ev["tasks_done"], ev["cause"]) == \
        ("diverged", 1, 1, "logits contain NaN or inf")
    assert sw.load_done(bad, out) is None
    assert sw.load_diverged(good, out) is None          # a complete run
    res = json.loads(open(os.path.join(out, bad.key, "results.json")).read())
    assert res["complete"] is False and len(res["tasks"]) == 1   # its finished task kept

    # what a sweep would do: nothing
    assert [st for _, st in sw.plan(spec.runs, out)] == ["done", "diverged"]
    d = CliRunner().invoke(main, ["sweep", spec.source, "--out", out, "--dry-run"])
    assert d.exit_code == 0, d.output
    lines = d.output.splitlines()
    assert lines[0].endswith(f"2 runs, 1 done, 1 diverged, 0 to resume, 0 to run; "
                             f"results in {out}")
    assert lines[2].split()[:2] == ["diverged", bad.key]
    s = CliRunner().invoke(main, ["sweep", "status", out])
    assert s.exit_code == 0, s.output
    assert "2 runs: 0 running, 1 done, 0 failed, 1 diverged" in s.output
    assert f"diverged    {bad.key}: {cause}" in s.output

    # again: neither run runs, the diverged run's folder is untouched, exit code 0
    before = _files(os.path.join(out, bad.key))
    assert {"checkpoint.json", "results.json", "log.jsonl"} <= set(before)
    lock = os.stat(os.path.join(out, bad.key, runfolder.LOCK)).st_mtime_ns
    calls.clear()
    r = CliRunner().invoke(main, ["sweep", spec.source, "--out", out])
    assert r.exit_code == 0, r.stderr
    assert calls == []
    assert "2 runs, 1 already done, 1 diverged before, 0 to run" in r.stderr
    assert "sweep: 1 done, 0 failed, 1 diverged of 2 in" in r.stderr
    assert _files(os.path.join(out, bad.key)) == before
    assert os.stat(os.path.join(out, bad.key, runfolder.LOCK)).st_mtime_ns == lock
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["runs"][bad.key][
        "status"] == "diverged"
    # a worker given it anyway does not run it either
    rec = sw.run_one(bad, out)
    assert (rec["status"], rec["skipped"], rec["error"], rec["tasks_done"]) == \
        ("diverged", True, cause, 1)
    assert calls == [] and _files(os.path.join(out, bad.key)) == before

    # load_diverged is None for a run of other settings, and for a folder whose
    # log does not end with the diverged event
    other = sw.load_spec(tiny_spec(tmp_path, grid="seed = [2]\n"),
                         sw.make_overlay(sets=["memory=30"])).runs[0]
    import shutil
    shutil.copytree(os.path.join(out, bad.key), os.path.join(out, other.key))
    assert sw.load_diverged(other, out) is None
    log = os.path.join(out, bad.key, "log.jsonl")
    with open(log, "a") as f:
        f.write(json.dumps({"event": "resume", "config": {}}) + "\n")
    assert sw.load_diverged(bad, out) is None
    assert [st for _, st in sw.plan([bad], out)] == ["resumes"]


def test_a_run_diverging_in_its_first_task_is_diverged_too(tmp_path):
    """A learning rate of 1e30 overflows the weights at once (in the process pool):
    the run has no results.json (no task finished), and is still recorded as
    diverged, and found so (load_diverged: the log's start event has its settings)."""
    spec = sw.load_spec(tiny_spec(tmp_path, grid="seed = [1]\nlr = [1e30]\n"))
    (r,) = spec.runs
    out = str(tmp_path / "out")
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        res = sw.run_sweep(spec.runs, out, sw.LocalExecutor(1), log=f)
    e = res[r.key]
    assert e["status"] == "diverged" and e["tasks_done"] == 0, e
    assert e["error"].startswith("training diverged in task 1 (train, epoch 1, batch 2): ")
    assert f"DIVERGED {r.key}: {e['error']}" in log.read_text()
    assert not os.path.exists(os.path.join(out, r.key, "results.json"))
    ev = sw.load_diverged(r, out)
    assert ev["tasks_done"] == 0 and e["error"].endswith(ev["cause"])
    assert sw.plan(spec.runs, out)[0][1] == "diverged"
    assert sw.status(out)[r.key]["status"] == "diverged"
    # the same run with another seed finds nothing in this folder
    other = sw.load_spec(tiny_spec(tmp_path, grid="seed = [2]\nlr = [1e30]\n")).runs[0]
    os.rename(os.path.join(out, r.key), os.path.join(out, other.key))
    assert sw.load_diverged(other, out) is None and sw.load_diverged(r, out) is None
