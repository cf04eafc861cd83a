"""A run that diverges (NaN/inf from a float overflow) ends with one line saying
where, exit code 1, a `diverged` log event, and the finished tasks kept."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from intsim.app.driver import RunHooks
from intsim.cil.learner import Learner
from intsim.cli import main
from intsim.errors import NonFiniteError, TrainingDiverged
from intsim.nn import cross_entropy

FAST = ["--dataset", "synthetic", "--batch-size", "32", "--memory", "12", "--hidden", "16,16",
        "--quiet"]


def _train(args):
    return CliRunner().invoke(main, ["train", *args], obj=RunHooks())


def _events(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("arith, cause", [("fp", "logits contain NaN or inf"),
                                          ("hdqt", "quantize: input contains NaN or inf"),
                                          ("luq", "sawb_quantize: input contains NaN or inf")])
def test_overflowing_run_ends_with_one_line_and_exit_code_1(tmp_path, arith, cause):
    """An absurd learning rate overflows the float32 weights in the first step; the
    next forward pass meets inf/NaN (FP: in the logits; HDQT/LUQ: in a quantizer)."""
    run = tmp_path / "run"
    r = _train(["--arith", arith, "--lr", "1e30", "--epochs", "2", "--out", str(run), *FAST])
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert lines == [f"intsim: training diverged in task 1 (train, epoch 1, batch 2): {cause}; "
                     "no task had finished"], r.stderr
    ev = _events(run)[-1]
    assert (ev["event"], ev["task"], ev["stage"], ev["epoch"], ev["batch"], ev["cause"]) == \
        ("diverged", 0, "train", 1, 2, cause)
    assert not (run / "results.json").exists()


def test_divergence_in_a_later_task_keeps_the_finished_tasks(tmp_path, monkeypatch):
    """NaN logits injected in task 2's third batch: task 1's results and checkpoint stay."""
    forward = Learner._forward
    calls = {"n": 0}

    def nan_in_task_2(self, xb):
        logits = forward(self, xb)
        if self.cur_task == 1:
            calls["n"] += 1
            if calls["n"] == 3:
                logits = np.full_like(logits, np.nan)
        return logits
    monkeypatch.setattr(Learner, "_forward", nan_in_task_2)
    run = tmp_path / "run"
    r = _train(["--arith", "hdqt", "--epochs", "1", "--out", str(run), *FAST,
                "--batch-size", "8"])
    assert r.exit_code == 1, r.output
    assert r.stderr.strip() == (
        "intsim: training diverged in task 2 (train, epoch 1, batch 3): logits contain NaN or "
        f"inf; task 1 is in {run / 'results.json'} (complete: false)")
    res = json.loads((run / "results.json").read_text())
    assert not res["complete"] and len(res["tasks"]) == 1
    assert (run / "checkpoint.json").exists()
    assert [e["event"] for e in _events(run)][-2:] == ["task", "diverged"]


def test_non_finite_outside_sgd_names_the_stage():
    """run_cil turns a NonFiniteError of exemplar selection or evaluation into
    TrainingDiverged naming the stage, without epoch and batch."""
    from intsim.errors import diverged_in
    with pytest.raises(TrainingDiverged) as e:
        with diverged_in(2, "evaluation"):
            raise NonFiniteError("quantize: input contains NaN or inf")
    assert str(e.value) == ("training diverged in task 3 (evaluation): "
                            "quantize: input contains NaN or inf")
    assert e.value.epoch is None and isinstance(e.value.__cause__, NonFiniteError)


def test_non_finite_logits_are_a_value_error_for_library_callers():
    with pytest.raises(ValueError, match="NaN or inf"):
        cross_entropy(np.array([[np.inf, 0.0]], np.float32), np.array([0]))
