"""Shared by the growing-method tests: run_cil uninterrupted vs resumed after task 0."""
import copy
import json

import numpy as np

from intsim.cil import run_cil


def canon(results):
    """results as canonical JSON, without wall-clock fields."""
    r = copy.deepcopy(results)
    for t in r["tasks"]:
        t.pop("seconds")
    return json.dumps(r, sort_keys=True, default=float)


def full_and_resumed(stream, model_factory, cfg, seed=7):
    """(full results, resumed results): the second run starts from the
    checkpoint the first wrote after task 0, with the same seed."""
    saved = {}

    def keep(t, results, ckpt):
        if t == 0:
            saved["ckpt"] = copy.deepcopy(ckpt)
    full = run_cil(stream, model_factory, cfg, np.random.default_rng(seed), on_task_end=keep)
    resumed = run_cil(stream, model_factory, cfg, np.random.default_rng(seed),
                      state=saved["ckpt"])
    return full, resumed


def cli_full_and_resumed(tmp_path, train, args, hooks):
    """(full results, resumed results) of ``train(["--out", DIR, *args])``: the
    second run is stopped by ``hooks`` (a KeyboardInterrupt: exit 130), then
    resumed with --resume. train(args, hooks=None) -> click Result."""
    full, part = tmp_path / "full", tmp_path / "part"
    r = train(["--out", str(full), *args])
    assert r.exit_code == 0, r.output
    assert train(["--out", str(part), *args], hooks).exit_code == 130
    r = train(["--out", str(part), "--resume"])
    assert r.exit_code == 0, r.output
    return [json.loads((d / "results.json").read_text()) for d in (full, part)]


def stop_in_task(task):
    """RunHooks that interrupt a run (KeyboardInterrupt) at its first epoch of ``task``."""
    from intsim.app.driver import RunHooks
    hooks = RunHooks()

    def on_epoch(ev):
        if ev["task"] == task:
            raise KeyboardInterrupt
    hooks.on_epoch = on_epoch
    return hooks


def cli_train(args, hooks=None):
    """``intsim train ARGS`` through click's runner (hooks: the run's RunHooks)."""
    from click.testing import CliRunner

    from intsim.app.driver import RunHooks
    from intsim.cli import main
    return CliRunner().invoke(main, ["train", *args], obj=hooks or RunHooks())
