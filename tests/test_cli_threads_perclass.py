"""``intsim train --threads`` / INTSIM_THREADS, ``--per-class``, seconds per epoch
in the progress line, and the compile notice / cache folder (intsim.kernels.threads,
intsim.kernels.jitcache, intsim.kernels.runtime)."""
import io
import os
import subprocess
import sys
import json
import pickle
import re
import tomllib

import numba
import numpy as np
import pytest
from click.testing import CliRunner

import intsim.app.driver
from intsim.kernels import jitcache, runtime, threads
from intsim.cli import main
from intsim.app.driver import RunHooks, _same_settings
from intsim.data import first_per_class
from intsim.app.progress import Progress
from intsim.app.config import ConfigError, RunConfig, resolve
from test_cli_train import FAST, tiny_dataset


@pytest.fixture(autouse=True)
def _restore_threads(monkeypatch):
    """Each test starts without INTSIM_THREADS and leaves the thread counts as found."""
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    before = numba.get_num_threads()
    yield
    threads.set_threads(before)


def _run(tmp_path, *args, name="run", hooks=None, env=None):
    out = tmp_path / name
    hooks = hooks if hooks is not None else RunHooks(dataset=tiny_dataset())
    r = CliRunner(env=env).invoke(main, ["train", "--out", str(out), *args], obj=hooks)
    return r, out


def _written(out):
    return (tomllib.loads((out / "config.toml").read_text()),
            json.loads((out / "results.json").read_text()))


# ------------------------------------------------------------------ threads

def test_parse_and_default_threads():
    assert threads.parse_threads("3") == 3 and threads.parse_threads(2) == 2
    for bad in ("0", "-1", "two", "", 1.5, True, 0):
        with pytest.raises(ValueError, match="integer >= 1"):
            threads.parse_threads(bad)
    assert threads.default_threads({}) == threads.available_cores() >= 1
    assert threads.default_threads({"INTSIM_THREADS": " 5 "}) == 5
    with pytest.raises(ValueError, match="INTSIM_THREADS must be an integer >= 1, got 'x'"):
        threads.default_threads({"INTSIM_THREADS": "x"})


def test_active_runs_share_the_cores(tmp_path):
    """A live run's mark counts; a killed run's mark is stale and removed."""
    code = ("import sys; from intsim.kernels.threads import ActiveRun\n"
            f"with ActiveRun({str(tmp_path)!r}):\n"
            "    print('in', flush=True); sys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "in"
        with threads.ActiveRun(tmp_path) as me:
            assert me.others() == 1
            assert (tmp_path / str(os.getpid())).exists()
            child.kill()
            child.wait()
            assert me.others() == 0                      # its lock died with it
            assert sorted(os.listdir(tmp_path)) == [str(os.getpid())]
        assert os.listdir(tmp_path) == []
    finally:
        if child.poll() is None:
            child.kill()
    cores = threads.available_cores()
    assert threads.default_threads({}, others=1) == max(1, cores // 2)
    assert threads.default_threads({}, others=10 * cores) == 1
    assert threads.default_threads({"INTSIM_THREADS": "3"}, others=5) == 3


def test_set_threads_sets_numba_and_openblas():
    got = threads.set_threads(1)
    assert got["numba"] == numba.get_num_threads() == 1
    if got["openblas"] is not None:                 # NumPy's bundled OpenBLAS
        assert got["openblas"] == threads.openblas_threads() == 1
    many = threads.set_threads(10_000)              # capped at Numba's pool size
    assert many["numba"] == numba.config.NUMBA_NUM_THREADS


def test_environment_defaults_keep_user_values():
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert runtime.configure_environment(env) == {"OPENBLAS_THREAD_TIMEOUT": "4"}
    assert env == {"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}


def test_threads_option_file_and_environment(tmp_path):
    r, out = _run(tmp_path, "--threads", "1", "--per-class", "5", *FAST)
    assert r.exit_code == 0, r.output + r.stderr
    cfg, res = _written(out)
    assert cfg["threads"] == 1 and res["config"]["threads"] == 1
    assert cfg["per_class"] == 5 and res["run"]["n_train"] == 6 * 5     # HAR-like: 6 classes
    assert res["run"]["threads"]["numba"] == 1 and numba.get_num_threads() == 1
    # default: INTSIM_THREADS, else every core; the file beats the environment
    r, out = _run(tmp_path, *FAST, name="env", env={"INTSIM_THREADS": "1"})
    assert r.exit_code == 0 and _written(out)[0]["threads"] == 1
    conf = tmp_path / "c.toml"
    conf.write_text("threads = 2\n")
    r, out = _run(tmp_path, "--config", str(conf), *FAST, name="file",
                  env={"INTSIM_THREADS": "1"})
    assert r.exit_code == 0 and _written(out)[0]["threads"] == 2
    assert resolve(None, {}).threads == threads.available_cores()


def test_default_threads_leave_the_busy_cores(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    assert threads.auto_threads(0, load=0.0) == 4
    assert threads.auto_threads(0, load=1.4) == 3          # the cores not busy
    assert threads.auto_threads(0, load=3.7) == 1          # at least one
    assert threads.auto_threads(1, load=0.0) == 2          # the share among intsim runs
    assert threads.auto_threads(1, load=2.8) == 1          # the smaller of the two
    # the 1-minute load average, scaled to the cores this process may use
    monkeypatch.setattr(os, "getloadavg", lambda: (6.0, 1.0, 1.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert threads.machine_load() == 3.0 and threads.default_threads({}) == 1
    assert threads.default_threads({"INTSIM_THREADS": "4"}) == 4
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 1.0, 1.0))
    assert threads.default_threads({}) == 3


def _busy(monkeypatch, others=1, load=0.0, cores=2):
    monkeypatch.setattr(threads, "available_cores", lambda: cores)
    monkeypatch.setattr(threads, "machine_load", lambda: load)
    monkeypatch.setattr(threads.ActiveRun, "others", lambda self: others)


@pytest.mark.parametrize("others, load, why", [
    (1, 0.0, "1 other intsim run(s) active"),
    (0, 1.2, "load average 1.2"),
    (1, 1.0, "1 other intsim run(s) active and load average 1.0"),
])
def test_the_thread_notice_is_on_stderr(tmp_path, monkeypatch, others, load, why):
    _busy(monkeypatch, others, load)
    r, out = _run(tmp_path, *FAST)
    assert r.exit_code == 0, r.output + r.stderr
    notice = f"using 1 of 2 cores ({why}; --threads N to choose)"
    assert notice in r.stderr.splitlines() and "cores" not in r.stdout
    assert _written(out)[0]["threads"] == 1
    r, out = _run(tmp_path, "--threads", "1", *FAST, name="given")     # chosen: no notice
    assert r.exit_code == 0 and "cores" not in r.stderr


def test_a_refused_run_prints_no_thread_notice(tmp_path, monkeypatch):
    _busy(monkeypatch, others=1)
    r, out = _run(tmp_path, "--epochs", "1", "--memory", "5")          # refused in the driver
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "memory=5" in r.stderr
    assert not out.exists()


def test_threads_above_the_cores_are_one_line(tmp_path, monkeypatch):
    _busy(monkeypatch, others=0, cores=2)
    r, out = _run(tmp_path, "--threads", "1000", *FAST)
    assert r.exit_code == 2 and r.stderr == ("intsim: error: threads=1000 is more than the 2 "
                                             "core(s) this process may use (threads 1..2)\n")
    assert not out.exists()


@pytest.mark.parametrize("args, env, words", [
    (["--threads", "0"], None, "threads=0 must be >= 1"),
    (["--threads", "many"], None, "threads must be an integer, got 'many'"),
    ([], {"INTSIM_THREADS": "all"}, "INTSIM_THREADS must be an integer >= 1, got 'all'"),
    (["--per-class", "0"], None, "per_class=0 must be >= 1"),
    (["--per-class", "1.5"], None, "per_class must be an integer, got '1.5'"),
])
def test_bad_threads_and_per_class_one_line_exit_2(tmp_path, args, env, words):
    r, out = _run(tmp_path, *args, env=env)
    assert r.exit_code == 2, r.output + r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("intsim: error:") and words in r.stderr
    assert not out.exists()


def test_bad_values_in_config_file(tmp_path):
    for text, words in (('threads = "x"\n', "threads must be an integer"),
                        ("per_class = -2\n", "per_class=-2 must be >= 1")):
        conf = tmp_path / "c.toml"
        conf.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(words)):
            resolve(conf)


def test_old_checkpoint_without_new_settings_still_matches():
    cfg = RunConfig(threads=2)
    saved = {k: v for k, v in cfg.to_dict().items() if k not in ("threads", "per_class")}
    assert _same_settings(saved, cfg)
    assert not _same_settings({**saved, "epochs": 99}, cfg)
    assert not _same_settings(None, cfg)


# ---------------------------------------------------------------- per class

def test_first_per_class_keeps_file_order_and_test_set():
    ds = tiny_dataset(n_cls=3, ntr=5, nte=2)
    order = np.random.default_rng(0).permutation(len(ds.y_train))
    ds = type(ds)(ds.X_train[order], ds.y_train[order], ds.X_test, ds.y_test,
                  users_train=ds.users_train[order])
    sub = first_per_class(ds, 2)
    for c in (1, 2, 3):
        first = np.flatnonzero(ds.y_train == c)[:2]
        np.testing.assert_array_equal(sub.X_train[sub.y_train == c], ds.X_train[np.sort(first)])
    assert len(sub.y_train) == 6 and sub.info["per_class"] == 2
    assert sub.X_test is ds.X_test and len(sub.users_train) == 6
    assert len(first_per_class(ds, 50).y_train) == 15       # fewer than N: all kept
    with pytest.raises(ValueError, match="per_class"):
        first_per_class(ds, 0)


def _write_cifar10(root, per_class_train=4, per_class_test=2, seed=0):
    """Tiny CIFAR-10 in the official python layout (5 data batches + test batch)."""
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    ytr = rng.permutation(np.repeat(np.arange(10), per_class_train))
    parts = np.array_split(ytr, 5)
    for i, y in enumerate(parts, 1):
        x = rng.integers(0, 256, (len(y), 3072), dtype=np.uint8)
        (d / f"data_batch_{i}").write_bytes(pickle.dumps({b"data": x, b"labels": y.tolist()}))
    yte = np.repeat(np.arange(10), per_class_test)
    (d / "test_batch").write_bytes(pickle.dumps(
        {b"data": rng.integers(0, 256, (len(yte), 3072), dtype=np.uint8), b"labels": yte.tolist()}))
    (d / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"c"] * 10}))
    return root


def test_cifar_per_class_end_to_end_with_seconds_per_epoch(tmp_path):
    data = _write_cifar10(tmp_path / "data")
    args = ["--dataset", "cifar10", "--data", str(data), "--arith", "fp", "--method", "finetune",
            "--inc-classes", "5", "--init-classes", "5", "--per-class", "3", "-v", *FAST]
    r, out = _run(tmp_path, *args, hooks=RunHooks())
    assert r.exit_code == 0, r.output + r.stderr
    cfg, res = _written(out)
    assert cfg["per_class"] == 3 and res["config"]["per_class"] == 3
    assert res["run"]["n_train"] == 30 and res["run"]["n_test"] == 20      # test set whole
    # the progress line of every finished epoch ends in its seconds per epoch
    lines = [l for l in r.stderr.splitlines() if l.startswith("task ")]
    assert len(lines) == 2 and all(re.search(r" \d+\.\d s/epoch$", l) for l in lines)


def test_live_bar_shows_elapsed_and_projected_seconds_per_epoch():
    err = io.StringIO()
    p = Progress("bar", out=io.StringIO(), err=err, tty=True, min_interval=0.0)
    p.start_epoch(0, 1, 0, 1, num_batches=4)
    p.batch(0.5, 3, 4)
    assert re.search(r"1/4 loss 0\.5000 acc  75\.0% \d+s, ~\d+ s/epoch", err.getvalue())


# ------------------------------------------------------------------ compile

def test_compile_notice_in_bar_and_jsonl_modes_only(tmp_path, monkeypatch):
    from contextlib import contextmanager

    @contextmanager
    def always_compiles(notify):      # as on a cold cache: Numba compiles at once
        class Seen:
            seconds = 1.5
        notify()
        yield Seen()
    monkeypatch.setattr(intsim.app.driver, "notify_compiles", always_compiles)
    r, _ = _run(tmp_path, *FAST, name="bar")
    assert r.exit_code == 0 and r.stderr.count(jitcache.MESSAGE) == 1
    r, out = _run(tmp_path, "--quiet", *FAST, name="quiet")
    assert r.exit_code == 0 and r.stderr == "" and r.stdout.strip() == str(out)
    assert _written(out)[1]["timings"]["compile_seconds"] == 1.5
    r, _ = _run(tmp_path, "--jsonl", *FAST, name="jsonl")
    events = [json.loads(l)["event"] for l in r.stdout.splitlines()]
    assert r.exit_code == 0 and events.count("compiling") == 1 and r.stderr == ""


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled without the JIT")
def test_notify_compiles_fires_once_on_compilation_only():
    calls = []

    @numba.njit
    def f(x):
        return x + 1

    with jitcache.notify_compiles(lambda: calls.append(1)) as seen:
        f(1)
        f(2.0)                       # a second specialization: no second notice
    assert calls == [1] and seen.compiled and seen.seconds > 0
    with jitcache.notify_compiles(lambda: calls.append(2)) as seen:
        f(3)                         # already compiled
    assert calls == [1] and not seen.compiled


def test_cache_dir_for_a_read_only_package(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__pycache__").write_text("")         # cannot hold files: as if read-only
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    d = runtime.configure_cache_dir(str(pkg), env)
    assert d == env["NUMBA_CACHE_DIR"] == str(tmp_path / "xdg" / "intsim" / "numba")
    assert runtime.writable_dir(d)
    mine = {"NUMBA_CACHE_DIR": "/my/cache", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert runtime.configure_cache_dir(str(pkg), mine) is None
    assert mine["NUMBA_CACHE_DIR"] == "/my/cache"                     # the user's choice
    ok = tmp_path / "ok"
    ok.mkdir()
    env = {}
    assert runtime.configure_cache_dir(str(ok), env) is None and env == {}


# ---------------------------------------------------------------- thread-invariant bits

def _results_without_machine_fields(path):
    """results.json without timings, versions and the thread counts."""
    r = json.loads((path / "results.json").read_text())
    for k in ("timings", "versions"):
        r.pop(k, None)
    r["run"].pop("threads", None)
    r["config"].pop("threads", None)
    for t in r["tasks"]:
        t.pop("seconds", None)
    return r


#: a float datapath on the real HAPT shapes: OpenBLAS's float32 sums split by thread count
FLOAT_RUN = ["--method", "der", "--arith", "fp", "--seed", "1", "--epochs", "2",
             "--per-class", "60"]


@pytest.mark.skipif(threads.available_cores() < 2, reason="needs 2 cores to compare 1 and 2 "
                    "threads")
def test_float_run_bits_do_not_depend_on_the_thread_count(tmp_path):
    """FP (float32 BLAS sums) gives the same results at 1 and 2 threads: a run keeps
    OpenBLAS at one thread when its datapath's sums are not exact integers."""
    for t in ("1", "2"):
        r, _ = _run(tmp_path, *FLOAT_RUN, "--threads", t, name=f"t{t}", hooks=RunHooks())
        assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "t2" / "results.json").read_text())["run"]["threads"] == \
        {"numba": 2, "openblas": 1}
    assert _results_without_machine_fields(tmp_path / "t1") == \
        _results_without_machine_fields(tmp_path / "t2")


@pytest.mark.skipif(threads.available_cores() < 2, reason="needs 2 cores to change 1 to 2 "
                    "threads")
def test_resume_may_change_the_thread_count_and_nothing_else(tmp_path):
    full, _ = _run(tmp_path, *FLOAT_RUN, "--threads", "1", name="full", hooks=RunHooks())
    assert full.exit_code == 0, full.output

    def stop(t, rec):
        if t == 0:
            raise KeyboardInterrupt
    r, _ = _run(tmp_path, *FLOAT_RUN, "--threads", "1", name="part",
                hooks=RunHooks(on_task_end=stop))
    assert r.exit_code == 130
    r, _ = _run(tmp_path, "--resume", "--epochs", "3", name="part", hooks=RunHooks())
    assert r.exit_code == 2 and "only --threads may change" in r.output + r.stderr
    r, _ = _run(tmp_path, "--resume", name="part", hooks=RunHooks(),
                env={threads.ENV_VAR: "2"})
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "part" / "results.json").read_text())
    assert res["run"]["threads"]["numba"] == 2
    assert _results_without_machine_fields(tmp_path / "part") == \
        _results_without_machine_fields(tmp_path / "full")


def test_set_threads_reaches_numpys_openblas_beside_scipys():
    """SciPy's wheels load an OpenBLAS of their own beside NumPy's (scipy.special does);
    the count must reach the one NumPy's products run on, and every other one."""
    import ctypes
    import scipy.special  # noqa: F401
    np_dir = os.path.realpath(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs"))
    libs = [p for p in {os.path.realpath(p) for p in threads._openblas_candidates()}]
    numpys = [p for p in libs if p.startswith(np_dir)]
    if not numpys:
        pytest.skip("NumPy does not bundle OpenBLAS here")

    def count(path):
        lib = ctypes.CDLL(path)
        fn = next(f for f in threads._OPENBLAS_GETTERS if hasattr(lib, f))
        return int(getattr(lib, fn)())
    for n in (2, 1):
        threads.set_threads(n)
        assert [count(p) for p in libs] == [n] * len(libs)
        assert threads.openblas_threads() == count(numpys[0]) == n
