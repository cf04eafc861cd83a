"""The process setup (intsim.kernels.runtime.configure_runtime) comes from the entry
points, not from ``import intsim``: the console script applies it before NumPy
loads, ``intsim.run`` applies it first thing, the local sweep pool's workers get it
too; importing the package changes no environment variable and no Numba config."""
import json
import os
import subprocess
import sys

import pytest

import intsim
import intsim.app.driver as driver
from intsim.app.config import resolve
from intsim.app.sweep.executors import LocalExecutor
from intsim.kernels import runtime

KEYS = ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "NUMBA_CACHE_DIR")

# Run before anything else in the child: make the install look read-only (so the
# setup would set NUMBA_CACHE_DIR) without importing more than intsim.kernels.runtime.
READ_ONLY = """
import os, sys
import intsim.kernels.runtime as rt
_writable = rt.writable_dir
rt.writable_dir = lambda p: False if p == os.path.join(rt.PACKAGE_DIR, "__pycache__") \\
    else _writable(p)
"""


def clean_env(tmp_path, **extra):
    """A minimal environment: none of the setup's variables, a private cache home."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
           "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.update(extra)
    return env


def child(code, env):
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return r


def test_import_intsim_sets_no_environment_and_leaves_numba_config(tmp_path):
    code = """
import json, os, sys
before = dict(os.environ)
import intsim
numpy_loaded = "numpy" in sys.modules
""" + READ_ONLY + """
# every public name and package, as a library user would reach them
intsim.FP, intsim.HDQT, intsim.LUQ, intsim.FP8, intsim.FP134, intsim.nn, intsim.optim
intsim.run, intsim.RunConfig, intsim.resolve, intsim.RunHooks
import intsim.models, intsim.cil, intsim.data, intsim.app.sweep, intsim.cli
import numba
print(json.dumps({"numpy_on_import": numpy_loaded, "changed": sorted(
    k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)),
    "cache_dir": numba.config.CACHE_DIR}))
"""
    out = json.loads(child(code, clean_env(tmp_path)).stdout.splitlines()[-1])
    assert out == {"numpy_on_import": False, "changed": [], "cache_dir": ""}


# The console script's code (setup.cfg: intsim = intsim.cli:main), with a spy that
# records the environment at the moment NumPy starts loading.
CONSOLE = """
import atexit, importlib.metadata, json, os, sys
KEYS = %r
at_numpy = {}

class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" and not at_numpy:
            at_numpy.update({k: os.environ.get(k) for k in KEYS})
        return None

sys.meta_path.insert(0, Spy())

def report():
    import numba
    print(json.dumps({"at_numpy": at_numpy, "cache_dir": numba.config.CACHE_DIR}))

atexit.register(report)
""" % (KEYS,) + READ_ONLY + """
(ep,) = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "intsim"]
main = ep.load()
sys.argv = ["intsim", "--help"]
sys.exit(main())
"""


@pytest.mark.parametrize("mine", [False, True])
def test_the_console_script_sets_up_the_process_before_numpy(tmp_path, mine):
    own = {"OMP_WAIT_POLICY": "ACTIVE", "NUMBA_CACHE_DIR": str(tmp_path / "mine")} if mine else {}
    env = clean_env(tmp_path, **own)
    r = child(CONSOLE, env)
    assert "train" in r.stdout                       # the help, with the sub-commands
    out = json.loads(r.stdout.splitlines()[-1])
    cache = env.get("NUMBA_CACHE_DIR", str(tmp_path / "xdg" / "intsim" / "numba"))
    assert out["at_numpy"] == {"OMP_WAIT_POLICY": own.get("OMP_WAIT_POLICY", "PASSIVE"),
                               "OPENBLAS_THREAD_TIMEOUT": "4", "NUMBA_CACHE_DIR": cache}
    assert out["cache_dir"] == cache                 # a user's own values win


def test_intsim_run_sets_up_the_process_first(tmp_path, monkeypatch):
    calls = []

    def setup():
        calls.append(1)
        raise RuntimeError("setup called")
    monkeypatch.setattr(driver, "configure_runtime", setup)
    with pytest.raises(RuntimeError, match="setup called"):
        intsim.run(resolve(None, {"epochs": 1}), tmp_path / "run")
    assert calls == [1] and not (tmp_path / "run").exists()


def test_local_sweep_workers_get_the_setup(monkeypatch):
    for k in KEYS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")          # the user's own value
    ex = LocalExecutor(1)
    try:
        ex._start()
        assert ex._pool._initializer is runtime.configure_runtime
        got = {k: ex._pool.submit(os.getenv, k).result(timeout=120) for k in KEYS[:2]}
    finally:
        ex.close()
    assert got == {"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ       # the client's is restored
