"""``intsim train --scenario class|task|domain`` end to end through click's CliRunner
on tiny data: the task and domain scenarios' results.json, resume in the domain
scenario, the one-line refusals, and the class scenario's results unchanged (a
record written before the scenarios existed)."""
import json
import pathlib
import re
import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

import intsim
from intsim.app.config import resolve
from intsim.app.driver import RunHooks
from intsim.cli import main
from intsim.data import Dataset

FAST = ["--epochs", "2", "--batch-size", "32", "--threads", "1"]
FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "class_scenario"


def subjects_dataset(n_users=4, n_cls=3, dim=10, per=10, seed=0):
    """HAR-like data held out within every subject: n_users subjects x n_cls classes,
    the first 8 of each subject's 10 windows of a class train, the last 2 test."""
    rng = np.random.default_rng(seed)
    centers = 2.0 * rng.standard_normal((n_cls, dim))
    u = np.repeat(np.arange(1, n_users + 1), n_cls * per)
    y = np.tile(np.repeat(np.arange(1, n_cls + 1), per), n_users)
    X = (centers[y - 1] + 0.3 * u[:, None] + rng.standard_normal((len(y), dim))).astype(np.float32)
    test = np.tile(np.arange(per) >= per - 2, n_users * n_cls)
    return Dataset(X[~test], y[~test], X[test], y[test], users_train=u[~test],
                   users_test=u[test], name="subjects")


def train(args, dataset=None, hooks=None):
    hooks = hooks or RunHooks(dataset=dataset if dataset is not None else subjects_dataset())
    return CliRunner().invoke(main, ["train", *args], obj=hooks)


def results(out):
    return json.loads((out / "results.json").read_text())


def test_task_scenario_masks_each_test_sample_to_its_task(tmp_path):
    out = tmp_path / "task"
    r = train(["--out", str(out), "--scenario", "task", "--memory", "12", *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    res = results(out)
    assert res["config"]["scenario"] == "task" and res["run"]["scenario"] == "task"
    assert res["run"]["cil"]["scenario"] == "task" and len(res["tasks"]) == 2   # 3 classes: 2 + 1
    for t, rec in enumerate(res["tasks"]):
        for m in ("cnn", "nme"):
            assert len(rec[f"task_acc_{m}"]) == t + 1
            # masked: an old class's sample is never taken for a new class, nor back
            assert rec[f"confusion_{m}"]["old_as_new"] == rec[f"confusion_{m}"]["new_as_old"] == 0
    by_task = res["summary"]["cnn"]["by_task"]
    assert by_task["matrix"] == [rec["task_acc_cnn"] for rec in res["tasks"]]
    a = by_task["matrix"]
    assert by_task["bwt"] == pytest.approx(a[1][0] - a[0][0])
    assert by_task["forgetting"] == pytest.approx(a[0][0] - a[1][0])
    assert "by task: forgetting" in r.stdout
    c = CliRunner().invoke(main, ["compare", str(out)])
    assert c.exit_code == 0 and "task forg" in c.stdout and "BWT" in c.stdout


def test_task_scenario_trains_as_the_class_scenario(tmp_path):
    """Only the argmax changes: the same passes (audits), the same first task."""
    runs = {}
    for scenario in ("class", "task"):
        out = tmp_path / scenario
        r = train(["--out", str(out), "--scenario", scenario, "--method", "bic", "--memory", "12",
                   *FAST])
        assert r.exit_code == 0, r.output + r.stderr
        runs[scenario] = results(out)
    c, t = runs["class"], runs["task"]
    assert [x["audit"] for x in c["tasks"]] == [x["audit"] for x in t["tasks"]]
    assert [x["bias"] for x in c["tasks"]] == [x["bias"] for x in t["tasks"]]
    assert c["tasks"][0]["cnn"] == t["tasks"][0]["cnn"]


def test_domain_scenario_streams_subjects_and_resumes_exactly(tmp_path):
    args = ["--scenario", "domain", "--domain-tasks", "2", "--memory", "12", *FAST]
    full = tmp_path / "full"
    r = train(["--out", str(full), *args])
    assert r.exit_code == 0, r.output + r.stderr
    res = results(full)
    cfg = tomllib.loads((full / "config.toml").read_text())
    assert cfg["scenario"] == "domain" and cfg["domain_tasks"] == 2
    assert cfg["split"] == "within-subject"
    groups = res["run"]["domains"]["subjects"]
    assert res["run"]["domains"]["kind"] == "subjects" and len(groups) == 2
    assert sorted(groups[0] + groups[1]) == [1, 2, 3, 4]
    perm = np.random.default_rng(42467).permutation([1, 2, 3, 4])     # the run's seed
    assert groups == [sorted(g.tolist()) for g in np.array_split(perm, 2)]
    for t, rec in enumerate(res["tasks"]):
        assert rec["classes_seen"] == 3 and rec["n_old"] == 0 and rec["classes"] == [0, 1, 2]
        assert len(rec["per_class_cnn"]) == 3 and len(rec["task_acc_cnn"]) == t + 1
    assert len(res["summary"]["cnn"]["by_task"]["matrix"]) == 2

    # Ctrl-C after task 1 is saved, then --resume: the same results
    part = tmp_path / "part"

    def stop(t, rec):
        if t == 0:
            raise KeyboardInterrupt
    r = train(["--out", str(part), *args], hooks=RunHooks(dataset=subjects_dataset(),
                                                          on_task_end=stop))
    assert r.exit_code == 130
    r = train(["--out", str(part), "--resume"])
    assert r.exit_code == 0, r.output + r.stderr
    again = results(part)
    keys = ("cnn", "nme", "per_class_cnn", "per_class_nme", "task_acc_cnn", "task_acc_nme", "audit")
    assert [[t[k] for k in keys] for t in again["tasks"]] == \
        [[t[k] for k in keys] for t in res["tasks"]]
    assert again["summary"] == res["summary"]


def test_domain_scenario_permutes_other_data(tmp_path):
    out = tmp_path / "perm"
    r = CliRunner().invoke(main, ["train", "--dataset", "synthetic", "--scenario", "domain",
                                  "--domain-tasks", "3", "--method", "lwf", "--out", str(out),
                                  *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    res = results(out)
    assert res["run"]["domains"] == {"kind": "permuted", "positions": 24}
    assert [t["classes_seen"] for t in res["tasks"]] == [6, 6, 6]
    # every task's test set is the whole test set, permuted: 120 samples each
    assert res["run"]["n_test"] == 120 and len(res["tasks"][2]["task_acc_cnn"]) == 3


@pytest.mark.parametrize("args, words", [
    (["--scenario", "domain", "--method", "bic"],
     "method bic does not run in the domain scenario: its bias correction"),
    (["--scenario", "domain", "--method", "der"], "method der does not run in the domain scenario"),
    (["--scenario", "domain", "--method", "memo"], "method memo does not run in the domain scenario"),
    (["--scenario", "joint"], "'joint' is not one of 'class', 'task', 'domain'"),
    (["--domain-tasks", "3"], "domain_tasks=3 applies to --scenario domain only, not class"),
    (["--scenario", "domain", "--domain-tasks", "0"], "domain_tasks=0 must be >= 1"),
    (["--scenario", "domain", "--split", "sorted"],
     "split=sorted holds out whole subjects, but --scenario domain"),
    (["--scenario", "domain", "--domain-tasks", "5"],
     "cannot split hapt into tasks: 5 tasks need at least as many subjects, the data has 4"),
    (["--scenario", "domain", "--domain-tasks", "2", "--memory", "5"],
     "memory=5 is fewer exemplars than the 3 classes x 2 tasks the run will see; icarl keeps "
     "at least one per class and task (use --memory 6 or more)"),
])
def test_refusals_are_one_line_exit_2_nothing_written(tmp_path, args, words):
    out = tmp_path / "run"
    r = train(["--out", str(out), *args, *FAST])
    assert r.exit_code == 2, r.output + r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("intsim: error:") and words in r.stderr
    assert not out.exists() and r.stdout == ""


def test_config_files_take_the_scenario_through_the_same_checks(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('scenario = "domain"\nmethod = "memo"\n')
    r = train(["--config", str(conf), "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "method memo does not run in the domain scenario" in r.stderr
    conf.write_text('scenario = "domain"\nmethod = "lwf"\n')
    r = train(["--config", str(conf), "--dry-run", "--init-classes", "3"])
    assert r.exit_code == 0, r.output + r.stderr
    cfg = tomllib.loads(r.stdout)
    assert (cfg["scenario"], cfg["domain_tasks"], cfg["split"]) == ("domain", 5, "within-subject")
    assert "init_classes=3 has no effect: in the domain scenario" in r.stderr


def _flat(d, prefix=""):
    if isinstance(d, dict):
        return {k: v for key, x in d.items() for k, v in _flat(x, f"{prefix}.{key}").items()}
    if isinstance(d, list):
        return {k: v for i, x in enumerate(d) for k, v in _flat(x, f"{prefix}[{i}]").items()}
    return {prefix: d}


@pytest.mark.parametrize("name", ["synthetic-icarl-hdqt", "synthetic-lwf-hdqt"])
def test_the_class_scenario_gives_the_results_of_before_the_scenarios(tmp_path, name):
    """The fixture is the results.json of a short class-incremental run written before
    the scenarios existed (tests/fixtures/class_scenario/README.md). The same settings
    now give every stored field the same value; the only differences are new fields."""
    stored = json.loads((FIXTURES / f"{name}.json").read_text())
    cfg = resolve(None, {**stored["config"], "threads": 1})
    assert cfg.scenario == "class"
    new = intsim.run(cfg, tmp_path / name)
    a, b = _flat(stored), _flat(new)
    skip = (".timings", ".versions", ".run.threads", ".config.threads")
    changed = [k for k in a if not k.startswith(skip) and ".seconds." not in k
               and a[k] != b.get(k, "<missing>")]
    assert changed == []
    added = {re.sub(r"\[\d+\]", "[]", k) for k in b if k not in a and not k.startswith(skip)
             and ".seconds." not in k}
    new_fields = {".config.scenario", ".config.domain_tasks", ".run.scenario",
                  ".run.cil.scenario", ".run.cil.domain_tasks", ".tasks[].task_acc_cnn[]",
                  ".tasks[].task_acc_nme[]", ".tasks[].task_acc_nme", ".config.features",
                  ".config.bic_stage2_loss", ".config.attn_products", ".run.cil.attn_products"}
    assert {k for k in added if not k.startswith((".summary.cnn.by_task.",
                                                  ".summary.nme.by_task."))} <= new_fields
    assert ".tasks[].task_acc_cnn[]" in added and ".summary.cnn.by_task.bwt" in added


def test_accuracy_plots_run_along_the_tasks_when_tasks_add_no_class():
    from intsim.cli import plotting
    grow = {"tasks": [{"classes_seen": 2}, {"classes_seen": 4}]}
    same = {"tasks": [{"classes_seen": 6}, {"classes_seen": 6}]}
    assert not plotting._by_task([("a", grow)])
    assert plotting._by_task([("a", grow), ("b", same)])
