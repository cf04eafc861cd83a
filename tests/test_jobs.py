"""intsim.app.jobs: keys, caching in run folders, resume and the parallel runner (tiny synthetic data)."""
import json
import os
import sys

import pytest

from intsim.app import jobs as ex
from intsim.app import runfolder

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
from benchutil import run_or_collect  # noqa: E402

TINY = {"epochs": 1, "hidden": [16, 16], "memory": 24, "batch_size": 32}


def tiny(method="icarl", arith=None, seed=3, **over):
    return ex.Job("synthetic", method, arith or {"kind": "hdqt"}, seed, {**TINY, **over})


def quiet():
    return open(os.devnull, "w")


def test_key_is_stable_and_distinguishes_settings():
    a = tiny()
    assert a.key == tiny().key
    assert a.key.startswith("synthetic-icarl-hdqt4-8-s3-")
    others = [tiny(seed=4), tiny(method="lwf"), tiny(arith={"kind": "fp"}),
              tiny(arith={"kind": "hdqt", "acc_mode": "wrap"}), tiny(epochs=2)]
    keys = {a.key} | {o.key for o in others}
    assert len(keys) == 6
    # the key hashes the resolved settings: insertion order and spelled-out defaults do not matter
    b = ex.Job("synthetic", "icarl", {"kind": "hdqt"}, 3, dict(reversed(list(TINY.items()))))
    assert b.key == a.key
    assert tiny(arith={"kind": "hdqt", "bits": 4, "acc_bits": 8, "tile": 32}).key == a.key
    assert ex.Job.from_spec(a.spec()).key == a.key
    cfg = a.config()
    assert (cfg.arith, cfg.schedule, cfg.threads, cfg.hidden) == ("hdqt", "paper", 1, (16, 16))
    assert cfg.milestones is None and a.resolved().epochs == 1


def test_arith_specs_and_bad_jobs():
    h = tiny(arith={"kind": "hdqt", "bits": 3, "acc_bits": 10, "hadamard": False,
                    "bwd_tile": 32}).config()
    assert (h.bits, h.acc_bits, h.hadamard, dict(h.arith_options)) == (3, 10, False, {"bwd_tile": 32})
    assert tiny(arith={"kind": "luq", "acc_bits": 8}).config().acc_bits == 8
    with pytest.raises(ValueError, match="unknown fields"):
        tiny(arith={"kind": "hdqt", "bogus": 1}).config()
    with pytest.raises(ValueError, match="arith kind"):
        ex.Job("synthetic", "icarl", {"kind": "int8"}, 1)
    with pytest.raises(ValueError, match="seed"):
        ex.Job("synthetic", "icarl", {"kind": "fp"}, -1)
    with pytest.raises(ValueError, match="unknown overrides"):
        ex.Job("synthetic", "icarl", {"kind": "fp"}, 1, {"momentum": 0.5})
    assert ex.arith_label({"kind": "hdqt", "bits": 4, "acc_bits": 8}) == "HDQT 4/8"
    assert ex.arith_label({"kind": "hdqt", "hadamard": False}) == "HDQT 4/8 hadamard=False"


def test_run_job_writes_a_run_folder_and_is_cached(tmp_path, monkeypatch):
    job = tiny()
    out = ex.run_job(job, str(tmp_path), log=quiet())
    folder = tmp_path / job.key
    stored = json.loads((folder / "results.json").read_text())     # strict JSON (no NaN)
    assert sorted(os.listdir(folder)) == [".lock", "config.toml", "log.jsonl", "results.json"]
    assert stored["complete"] and len(stored["tasks"]) == 3
    assert stored["config"] == runfolder.to_jsonable(job.resolved().to_dict())
    # a setting added later, at its default, does not invalidate a stored run
    old_style = json.loads(json.dumps(stored))
    del old_style["config"]["conv_init"]
    (folder / "results.json").write_text(json.dumps(old_style))
    assert ex.load_run(job, str(tmp_path)) is not None
    old_style["config"]["epochs"] = 7                       # a different setting does
    (folder / "results.json").write_text(json.dumps(old_style))
    assert ex.load_run(job, str(tmp_path)) is None
    (folder / "results.json").write_text(json.dumps(stored))
    s = ex.run_summary(stored)
    assert 0.0 <= s["cnn_last"] <= 100.0 and s["nme_avg"] is not None
    assert abs(s["cnn_avg"] - sum(t["cnn"] for t in stored["tasks"]) / 3) < 1e-9
    assert 0.0 <= s["sat_pct"] <= 100.0 and stored["tasks"][0]["audit"]
    assert out == stored

    import intsim.cil.runner as runner

    def boom(*a, **k):
        raise AssertionError("a finished job must not run again")
    monkeypatch.setattr(runner, "run_cil", boom)
    assert ex.run_job(job, str(tmp_path), log=quiet()) == stored
    # a corrupt results.json is not trusted: the job runs again (here: boom)
    (folder / "results.json").write_text("{not json")
    with pytest.raises(AssertionError, match="must not run again"):
        ex.run_job(job, str(tmp_path), log=quiet())


class Stop(Exception):
    pass


def test_interrupted_job_resumes_to_identical_results(tmp_path):
    job = tiny(method="bic", seed=5)
    ref = ex.run_job(job, str(tmp_path / "ref"), log=quiet())

    def stop_after_first(t, rec):
        if t == 0:
            raise Stop()
    d = str(tmp_path / "cut")
    with pytest.raises(Stop):
        ex.run_job(job, d, log=quiet(), on_task=stop_after_first)
    assert runfolder.has_checkpoint(ex.run_path(job, d)) and ex.load_run(job, d) is None
    seen = []
    res = ex.run_job(job, d, log=quiet(), on_task=lambda t, r: seen.append(t))
    assert seen == [1, 2]                           # task 0 was not trained again
    for a, b in zip(res["tasks"], ref["tasks"]):
        assert (a["cnn"], a["per_class_cnn"], a["audit"], a["bias"]) == \
            (b["cnn"], b["per_class_cnn"], b["audit"], b["bias"])
    assert not runfolder.has_checkpoint(ex.run_path(job, d))


def test_run_jobs_parallel_skips_done_and_reports_failures(tmp_path, monkeypatch):
    d = str(tmp_path)
    done = tiny(arith={"kind": "fp"})
    ex.run_job(done, d, log=quiet())
    res_path = os.path.join(ex.run_path(done, d), "results.json")
    before = os.path.getmtime(res_path)
    jobs = [done, tiny(), tiny(), tiny(method="lwf", arith={"kind": "luq", "acc_bits": 8})]
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        runs = ex.run_jobs(jobs, d, workers=2, log=f)
    assert "OPENBLAS_NUM_THREADS" not in os.environ       # parent env restored
    assert set(runs) == {j.key for j in jobs} and len(runs) == 3
    assert os.path.getmtime(res_path) == before
    text = log.read_text()
    assert "3 runs, 1 already done, 2 to run" in text and "[2/2]" in text
    assert all(ex.run_summary(r)["cnn_avg"] is not None for r in runs.values())

    bad_settings = ex.Job("synthetic", "icarl", {"kind": "hdqt", "acc_mode": "bogus"}, 1,
                          dict(TINY))
    fails_in_run = tiny(seed=10, init_classes=99)            # more classes than the data has
    with open(log, "w") as f:
        with pytest.raises(RuntimeError, match="2 run\\(s\\) failed"):
            ex.run_jobs([bad_settings, fails_in_run, tiny(seed=9)], d, workers=0, log=f)
    text = log.read_text()
    assert "unknown acc_mode 'bogus'" in text and "cannot split synthetic" in text
    assert ex.load_run(tiny(seed=9), d) is not None         # the good one was kept


def test_mean_std_and_format():
    assert ex.mean_std([1.0, 3.0, None]) == (2.0, pytest.approx(2 ** 0.5), 2)
    assert ex.fmt_pm([5.0]) == "5.00"
    assert ex.fmt_pm([]) == "-"
    assert ex.fmt_pm([1.0, 3.0], 1) == "2.0 +- 1.4"


def test_table_only_collects_without_running(tmp_path):
    d = str(tmp_path)
    done, todo = tiny(arith={"kind": "fp"}, seed=7), tiny(arith={"kind": "fp"}, seed=8)
    ex.run_job(done, d, log=quiet())
    runs = run_or_collect([done, todo], argv=["--table-only"], runs_dir=d)
    assert set(runs) == {done.key}
    assert ex.load_run(todo, d) is None
    assert ex.summaries(runs, [done, todo], "cnn_avg")[1] is None


def test_a_job_folder_is_a_cli_run_folder(tmp_path):
    """intsim compare/audit read a job's folder like any intsim train run."""
    from click.testing import CliRunner
    from intsim.cli import main
    job = tiny(arith={"kind": "fp"}, seed=11)
    ex.run_job(job, str(tmp_path), log=quiet())
    r = CliRunner().invoke(main, ["compare", ex.run_path(job, str(tmp_path))])
    assert r.exit_code == 0, r.output
    assert "icarl" in r.output.lower()


def test_a_none_in_a_job_is_an_explicit_none():
    """acc_bits None in a job spec means no accumulator limit (it once fell back to 8)."""
    wide = tiny(arith={"kind": "luq", "acc_bits": None}).config()
    assert wide.acc_bits is None and build_arith_limit(wide) is None
    assert tiny(arith={"kind": "luq", "acc_bits": None}).key != \
        tiny(arith={"kind": "luq", "acc_bits": 8}).key


def build_arith_limit(cfg):
    from intsim.app.build import build_arith
    return build_arith(cfg).acc_limit
