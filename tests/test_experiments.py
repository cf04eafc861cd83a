"""Job keys, caching, resume and the parallel runner of benchmarks/experiments.py (tiny synthetic data)."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

import experiments as ex  # noqa: E402

TINY = {"epochs": 1, "hidden": [16, 16], "memory": 24, "batch_size": 32}


def tiny(method="icarl", arith=None, seed=3, **over):
    return ex.Job("synthetic", method, arith or {"kind": "hdqt"}, seed, {**TINY, **over})


def test_key_is_stable_and_distinguishes_specs():
    a = tiny()
    assert a.key == tiny().key
    assert a.key.startswith("synthetic-icarl-hdqt4-8-s3-")
    others = [tiny(seed=4), tiny(method="lwf"), tiny(arith={"kind": "fp"}),
              tiny(arith={"kind": "hdqt", "acc_mode": "wrap"}), tiny(epochs=2)]
    keys = {a.key} | {o.key for o in others}
    assert len(keys) == 6
    # key does not depend on dict insertion order
    b = ex.Job("synthetic", "icarl", {"kind": "hdqt"}, 3, dict(reversed(list(TINY.items()))))
    assert b.key == a.key
    assert ex.Job.from_spec(a.spec()).key == a.key


def test_make_arith_and_bad_specs():
    import intsim
    assert isinstance(ex.make_arith({"kind": "fp"}), intsim.FP)
    h = ex.make_arith({"kind": "hdqt", "bits": 3, "acc_bits": 10, "hadamard": False})
    assert (h.bits, h.acc_bits, h.hadamard) == (3, 10, False)
    assert ex.make_arith({"kind": "luq", "acc_bits": 8}).acc_bits == 8
    with pytest.raises(ValueError, match="unknown fields"):
        ex.make_arith({"kind": "hdqt", "bogus": 1})
    with pytest.raises(ValueError, match="arith kind"):
        ex.Job("synthetic", "icarl", {"kind": "int8"}, 1)
    with pytest.raises(ValueError, match="seed"):
        ex.Job("synthetic", "icarl", {"kind": "fp"}, -1)
    assert ex.arith_label({"kind": "hdqt", "bits": 4, "acc_bits": 8}) == "HDQT 4/8"
    assert ex.arith_label({"kind": "hdqt", "hadamard": False}) == "HDQT 4/8 hadamard=False"


def test_run_job_stores_json_and_is_cached(tmp_path, monkeypatch):
    job = tiny()
    out = ex.run_job(job, str(tmp_path), log=open(os.devnull, "w"))
    path = tmp_path / (job.key + ".json")
    stored = json.loads(path.read_text())          # strict JSON (no NaN)
    assert stored["job"] == ex._jsonable(job.spec())
    assert len(stored["cnn_acc"]) == 3 and len(stored["tasks"]) == 3
    s = stored["summary"]
    assert 0.0 <= s["cnn_last"] <= 100.0 and s["nme_avg"] is not None
    assert abs(s["cnn_avg"] - sum(stored["cnn_acc"]) / 3) < 1e-9
    assert 0.0 <= s["sat_pct"] <= 100.0 and stored["tasks"][0]["audit"]
    assert path.stat().st_size < 20_000
    assert not os.path.exists(ex.partial_path(job, str(tmp_path)))
    assert out["summary"] == stored["summary"]

    import intsim.cil.runner as runner

    def boom(*a, **k):
        raise AssertionError("a finished job must not run again")
    monkeypatch.setattr(runner, "run_cil", boom)
    again = ex.run_job(job, str(tmp_path), log=open(os.devnull, "w"))
    assert again["summary"] == stored["summary"]
    # a corrupt or foreign file is not trusted: it is rerun (here: boom)
    path.write_text("{not json")
    with pytest.raises(AssertionError, match="must not run again"):
        ex.run_job(job, str(tmp_path), log=open(os.devnull, "w"))


class Stop(Exception):
    pass


def test_interrupted_job_resumes_to_identical_results(tmp_path):
    job = tiny(method="bic", seed=5)
    ref = ex.run_job(job, str(tmp_path / "ref"), log=open(os.devnull, "w"))

    def stop_after_first(t, results):
        if t == 0:
            raise Stop()
    d = str(tmp_path / "cut")
    with pytest.raises(Stop):
        ex.run_job(job, d, log=open(os.devnull, "w"), on_task=stop_after_first)
    assert os.path.exists(ex.partial_path(job, d)) and ex.load_run(job, d) is None
    seen = []
    res = ex.run_job(job, d, log=open(os.devnull, "w"), on_task=lambda t, r: seen.append(t))
    assert seen == [1, 2]                           # task 0 was not trained again
    assert res["cnn_acc"] == ref["cnn_acc"]
    assert [t["audit"] for t in res["tasks"]] == [t["audit"] for t in ref["tasks"]]
    assert not os.path.exists(ex.partial_path(job, d))


def test_run_jobs_parallel_skips_done_and_reports_failures(tmp_path, monkeypatch):
    d = str(tmp_path)
    done = tiny(arith={"kind": "fp"})
    ex.run_job(done, d, log=open(os.devnull, "w"))
    before = os.path.getmtime(ex.run_path(done, d))
    jobs = [done, tiny(), tiny(), tiny(method="lwf", arith={"kind": "luq", "acc_bits": 8})]
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        runs = ex.run_jobs(jobs, d, workers=2, log=f)
    assert "OPENBLAS_NUM_THREADS" not in os.environ       # parent env restored
    assert set(runs) == {j.key for j in jobs} and len(runs) == 3
    assert os.path.getmtime(ex.run_path(done, d)) == before
    text = log.read_text()
    assert "3 runs, 1 already done, 2 to run" in text and "[2/2]" in text
    assert all(r["summary"]["cnn_avg"] is not None for r in runs.values())

    bad = ex.Job("synthetic", "icarl", {"kind": "hdqt", "bogus": 1}, 1, dict(TINY))
    with open(log, "w") as f:
        with pytest.raises(RuntimeError, match="1 run\\(s\\) failed"):
            ex.run_jobs([bad, tiny(seed=9)], d, workers=0, log=f)
    assert ex.load_run(tiny(seed=9), d) is not None         # the good one was kept


def test_mean_std_and_format():
    assert ex.mean_std([1.0, 3.0, None]) == (2.0, pytest.approx(2 ** 0.5), 2)
    assert ex.fmt_pm([5.0]) == "5.00"
    assert ex.fmt_pm([]) == "-"
    assert ex.fmt_pm([1.0, 3.0], 1) == "2.0 +- 1.4"


def test_table_only_collects_without_running(tmp_path):
    d = str(tmp_path)
    done, todo = tiny(arith={"kind": "fp"}, seed=7), tiny(arith={"kind": "fp"}, seed=8)
    ex.run_job(done, d, log=open(os.devnull, "w"))
    runs = ex.run_or_collect([done, todo], argv=["--table-only"], runs_dir=d)
    assert set(runs) == {done.key}
    assert ex.load_run(todo, d) is None
    assert ex.summaries(runs, [done, todo], "cnn_avg")[1] is None
