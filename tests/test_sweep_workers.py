"""`intsim sweep` with real processes: two sweeps on one folder run each run once (the
per-run lock), and a worker process killed in the middle of a run (Dask LocalCluster,
and the local process pool): every run still finishes, with the results of an
uninterrupted sweep. Tiny synthetic runs of 3 tasks: a worker is killed once its
run has finished its first task and before it finishes its second."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from intsim.app import sweep as sw
from intsim.cli.main import main

BASE = ('[base]\ndataset = "synthetic"\nschedule = "paper"\nhidden = [16, 16]\n'
        'memory = 24\nbatch_size = 32\nmethod = "icarl"\n')


def write_spec(tmp_path, epochs, grid, extra=""):
    p = tmp_path / "spec.toml"
    p.write_text(f"{BASE}epochs = {epochs}\n\n[grid]\n{grid}\n{extra}")
    return str(p)


def events(out, key):
    with open(os.path.join(out, key, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def results(out, key):
    """results.json without its wall-clock times (everything else must be equal)."""
    with open(os.path.join(out, key, "results.json")) as f:
        d = json.load(f)
    d.pop("timings")
    for t in d["tasks"]:
        t.pop("seconds")
    return d


def quiet():
    return open(os.devnull, "w")


# ---------------------------------------------------------------- two sweeps, one DIR

def test_two_sweeps_on_one_folder_run_every_run_exactly_once(tmp_path):
    spec = write_spec(tmp_path, 10, 'seed = [1, 2, 3, 4]\n')
    runs = sw.load_spec(spec).runs
    out = str(tmp_path / "out")
    cmd = [sys.executable, "-c", "from intsim.cli import main; main()",
           "sweep", spec, "--out", out, "--workers", "1"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:         # only on a timeout: the two commands this test started
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "sweep: 4 done, 0 failed of 4" in err, err
    for r in runs:
        ev = [e["event"] for e in events(out, r.key)]
        # run once: one start, never resumed or restarted by the other sweep
        assert (ev.count("start"), ev.count("resume"), ev.count("end")) == (1, 0, 1), (r.key, ev)
        assert sw.load_done(r, out) is not None
    st = sw.status(out)
    assert set(st) == {r.key for r in runs} and all(e["status"] == "done" for e in st.values())
    r = CliRunner().invoke(main, ["sweep", "status", out])
    assert r.exit_code == 0 and "4 runs: 0 running, 4 done, 0 failed" in r.output


def test_a_run_another_process_holds_is_waited_for_not_run(tmp_path):
    """The client's side of the lock, in one process: a run whose folder is locked
    (here by a thread standing for another process) is not run; once the lock is
    released the run is complete and the sweep records it as done without running it."""
    from intsim.app import runfolder
    from intsim.app.driver import run
    spec = sw.load_spec(write_spec(tmp_path, 1, 'seed = [1, 2]\n'))
    held, free = spec.runs
    out = str(tmp_path / "out")
    folder = os.path.join(out, held.key)
    os.makedirs(folder)
    lock = runfolder.RunLock(folder).acquire()
    assert sw.lock_held(folder) and sw.run_one(held, out)["status"] == sw.BUSY
    log = tmp_path / "log.txt"
    seen = threading.Event()

    def other_process():        # runs the run once the sweep has found it busy
        try:
            for _ in range(600):
                if "another process holds its folder" in log.read_text():
                    seen.set()
                    break
                time.sleep(0.1)
            run(held.config, folder, keep_checkpoint=False, lock=lock)
        finally:
            lock.release()
    t = threading.Thread(target=other_process)
    with open(log, "w") as f:
        t.start()
        res = sw.run_sweep(spec.runs, out, sw.LocalExecutor(1), log=f)
    t.join()
    text = log.read_text()
    assert seen.is_set() and "waiting 1" in text and "(run by another process)" in text
    assert res[held.key]["status"] == res[free.key]["status"] == "done"
    assert "attempts" not in res[held.key] and res[free.key]["attempts"] == 1
    for r in spec.runs:
        ev = [e["event"] for e in events(out, r.key)]
        assert (ev.count("start"), ev.count("resume"), ev.count("end")) == (1, 0, 1), ev
        assert sw.load_done(r, out) is not None


# ---------------------------------------------------------------- killed workers

KILL_EPOCHS, KILL_GRID = 20, 'seed = [1, 2]\n'     # 3 tasks per run


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The killed-worker sweeps' runs, run by the local executor without a kill."""
    tmp = tmp_path_factory.mktemp("reference")
    spec = sw.load_spec(write_spec(tmp, KILL_EPOCHS, KILL_GRID))
    res = sw.run_sweep(spec.runs, str(tmp / "out"), sw.LocalExecutor(2), log=quiet())
    assert all(e["status"] == "done" for e in res.values())
    return str(tmp / "out")


class Killer(threading.Thread):
    """SIGKILLs the process running a run of ``out`` once the run has finished its
    first task (of 3) and not its second, if ``ours(pid)`` says the test started it."""

    def __init__(self, out, ours):
        super().__init__(daemon=True)
        self.out, self.ours = out, ours
        self.killed = None
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for key in sorted(os.listdir(self.out)) if os.path.isdir(self.out) else ():
                folder = os.path.join(self.out, key)
                try:
                    with open(os.path.join(folder, ".lock")) as f:
                        pid = int(f.read().strip())
                    ev = [e["event"] for e in events(self.out, key)]
                except (OSError, ValueError):
                    continue
                if ev.count("task") == 1 and "end" not in ev and sw.lock_held(folder) \
                        and self.ours(pid):
                    os.kill(pid, signal.SIGKILL)
                    self.killed = {"key": key, "pid": pid}
                    return
            time.sleep(0.01)


def assert_resumed_after_the_kill(out, key):
    ev = events(out, key)
    names = [e["event"] for e in ev]
    resumes = [e for e in ev if e["event"] == "resume"]
    # started once; resumed from the checkpoint of its first task, not from scratch
    assert names.count("start") == 1 and len(resumes) == 1 and names.count("end") == 1, names
    assert resumes[0]["start_task"] >= 1


def test_a_killed_dask_worker_s_run_resumes_elsewhere_with_identical_results(
        tmp_path, reference):
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed (pip install -e \".[dask]\")")
    assert distributed
    spec = sw.load_spec(write_spec(
        tmp_path, KILL_EPOCHS, KILL_GRID,
        extra='[[runs]]\nseed = 3\nmemory = 1\n'))        # a run that fails with an error
    good, bad = spec.runs[:2], spec.runs[2]
    dask = str(tmp_path / "dask")

    exe = sw.make_executor("dask", workers=2)
    pids = set(exe.client.run(os.getpid).values())      # this test's own worker processes
    assert len(pids) == 2 and os.getpid() not in pids
    killer = Killer(dask, lambda pid: pid in pids)
    killer.start()
    log = tmp_path / "log.txt"
    try:
        with open(log, "w") as f:
            res = sw.run_sweep(spec.runs, dask, exe, log=f)
    finally:
        killer.stop.set()
        killer.join()
    assert killer.killed is not None, "no worker was killed mid-run"
    assert killer.killed["key"] in {r.key for r in good}
    assert [res[r.key]["status"] for r in spec.runs] == ["done", "done", "failed"]
    assert "memory=1 is fewer exemplars" in res[bad.key]["error"]
    assert "failed 1" in log.read_text()
    assert_resumed_after_the_kill(dask, killer.killed["key"])
    for r in good:
        assert results(dask, r.key) == results(reference, r.key), r.key


def _child_of_this_process(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
    except (OSError, ValueError, IndexError):
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the pool's processes in /proc")
def test_a_killed_local_worker_s_runs_restart_from_their_checkpoints(tmp_path, reference):
    spec = sw.load_spec(write_spec(tmp_path, KILL_EPOCHS, KILL_GRID))
    keys = [r.key for r in spec.runs]
    out = str(tmp_path / "out")
    killer = Killer(out, _child_of_this_process)     # only this test's pool workers
    killer.start()
    log = tmp_path / "log.txt"
    try:
        with open(log, "w") as f:
            res = sw.run_sweep(spec.runs, out, sw.LocalExecutor(2), log=f)
    finally:
        killer.stop.set()
        killer.join()
    assert killer.killed is not None, "no worker was killed mid-run"
    assert "worker died; will resume from its checkpoint" in log.read_text()
    assert all(res[k]["status"] == "done" for k in keys)
    assert_resumed_after_the_kill(out, killer.killed["key"])
    for k in keys:
        assert results(out, k) == results(reference, k), k
