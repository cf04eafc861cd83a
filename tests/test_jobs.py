"""intsim.app.jobs: run-folder keys, the cache check, a run's figures and their
aggregation over seeds (tiny synthetic runs)."""
import json
import os

import pytest

from intsim.app import jobs as ex
from intsim.app import runfolder
from intsim.app import sweep as sw

TINY = {"dataset": "synthetic", "schedule": "paper", "epochs": 1, "hidden": [16, 16],
        "memory": 24, "batch_size": 32}


def tiny(**over):
    return sw.make_run({**TINY, "method": "icarl", "arith": "hdqt", "seed": 3, **over})


def test_key_is_stable_and_distinguishes_settings():
    a = tiny()
    assert a.key == tiny().key
    assert a.key.startswith("synthetic-icarl-hdqt4-8-s3-")
    others = [tiny(seed=4), tiny(method="lwf"), tiny(arith="fp"), tiny(acc_mode="wrap"),
              tiny(epochs=2)]
    assert len({a.key} | {o.key for o in others}) == 6
    # the key hashes the resolved settings: order and spelled-out defaults do not matter
    b = sw.make_run(dict(reversed(list({**TINY, "method": "icarl", "arith": "hdqt",
                                        "seed": 3}.items()))))
    assert b.key == a.key
    assert tiny(bits=4, acc_bits=8, tile=32).key == a.key
    assert ex.run_key(a.resolved, "hdqt4-8") == a.key
    # a setting at RunConfig's default is not part of the key
    assert "acc_mode" not in a.settings() and a.settings()["threads"] == 1
    assert a.settings() == ex.settings(a.resolved.to_dict())
    assert tiny(arith="luq", acc_bits="none").key.startswith("synthetic-icarl-luq4-w-s3-")
    assert tiny(arith="fp").key.startswith("synthetic-icarl-fp-s3-")


def test_cache_check_and_run_summary(tmp_path):
    """A stored run counts as done when its results.json is complete with the run's
    settings; a setting added to intsim later, at its default, does not invalidate it."""
    from intsim.app.driver import run
    r = tiny()
    folder = tmp_path / r.key
    run(r.config, folder, keep_checkpoint=False)
    stored = json.loads((folder / "results.json").read_text())      # strict JSON (no NaN)
    assert stored["config"] == runfolder.to_jsonable(r.resolved.to_dict())
    assert sw.load_done(r, tmp_path) == stored
    old_style = json.loads(json.dumps(stored))
    del old_style["config"]["conv_init"]
    (folder / "results.json").write_text(json.dumps(old_style))
    assert sw.load_done(r, tmp_path) is not None
    old_style["config"]["epochs"] = 7                       # a different setting does
    (folder / "results.json").write_text(json.dumps(old_style))
    assert sw.load_done(r, tmp_path) is None
    (folder / "results.json").write_text("{not json")
    assert sw.load_done(r, tmp_path) is None

    s = ex.run_summary(stored)
    assert 0.0 <= s["cnn_last"] <= 100.0 and s["nme_avg"] is not None
    assert abs(s["cnn_avg"] - sum(t["cnn"] for t in stored["tasks"]) / 3) < 1e-9
    assert 0.0 <= s["sat_pct"] <= 100.0 and stored["tasks"][0]["audit"]
    assert s["max_abs"] > 0 and ex.run_seconds(stored) > 0


def test_mean_std_and_format():
    assert ex.mean_std([1.0, 3.0, None]) == (2.0, pytest.approx(2 ** 0.5), 2)
    assert ex.mean_std([None]) == (None, None, 0)
    assert ex.fmt_pm([5.0]) == "5.00"
    assert ex.fmt_pm([]) == "-"
    assert ex.fmt_pm([1.0, 3.0], 1) == "2.0 +- 1.4"


def test_paper_seeds():
    assert len(ex.HAR_SEEDS) == len(set(ex.HAR_SEEDS)) == 20
    assert ex.PAPER_SEEDS == ex.HAR_SEEDS[:5] and ex.HAR_SEEDS[0] == 42467


def test_a_run_folder_is_a_cli_run_folder(tmp_path):
    """intsim compare reads a sweep's run folder like any intsim train run."""
    from click.testing import CliRunner
    from intsim.app.driver import run
    from intsim.cli import main
    r = tiny(arith="fp", seed=11)
    run(r.config, tmp_path / r.key, keep_checkpoint=False)
    res = CliRunner().invoke(main, ["compare", os.path.join(tmp_path, r.key)])
    assert res.exit_code == 0, res.output
    assert "icarl" in res.output.lower()
