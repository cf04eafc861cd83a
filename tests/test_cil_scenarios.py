"""The scenarios on the learner side (intsim.cil.scenarios): the task scenario's
masks (CNN and NME), which method runs where, the domain scenario's exemplar
memory and LwF loss, and run_cil over task and domain streams."""
import copy

import numpy as np
import pytest

import intsim
from intsim.cil import CILConfig, DomainExemplarMemory, METHODS, SCENARIOS, run_cil, scenario_of
from intsim.cil.memory import nme_predict
from intsim.cil.runner import make_learner
from intsim.data import Dataset, PermutedDomains, Task, TaskStream
from intsim.models import FCNet
from intsim.nn import cross_entropy, kd_loss

D = 8


def _task(test_task, class_task):
    n = len(test_task)
    return Task(t=int(max(test_task)), classes=np.array([2, 3]), seen=len(class_task),
                X_train=np.zeros((1, D)), y_train=np.zeros(1, np.int64),
                X_test=np.zeros((n, D)), y_test=np.zeros(n, np.int64),
                orig_classes=np.array([2, 3]), test_task=np.asarray(test_task),
                class_task=np.asarray(class_task))


def test_the_task_scenario_masks_the_logits_to_the_samples_task():
    task = _task([0, 1, 1], [0, 0, 1, 1])
    logits = np.array([[1, 2, 9, 9], [9, 9, 3, 4], [9, 0, 5, 1]], np.float32)
    np.testing.assert_array_equal(scenario_of("task").predict(logits, task), [1, 3, 2])
    np.testing.assert_array_equal(scenario_of("class").predict(logits, task), [2, 0, 0])
    assert scenario_of("class").allowed(task) is None


def test_the_task_scenario_masks_the_nearest_mean_too():
    task = _task([0, 1], [0, 0, 1, 1])
    means = np.eye(4)
    feats = np.array([[0.1, 0.2, 1.0, 0.0], [1.0, 0.0, 0.0, 0.3]])
    np.testing.assert_array_equal(nme_predict(feats, means), [2, 0])
    np.testing.assert_array_equal(nme_predict(feats, means, scenario_of("task").allowed(task)),
                                  [1, 3])


REFUSED = {("bic", "domain"), ("der", "domain"), ("memo", "domain")}


@pytest.mark.parametrize("scenario", ["class", "task", "domain"])
@pytest.mark.parametrize("method", ["finetune", "lwf", "icarl", "bic", "der", "memo"])
def test_every_method_runs_in_a_scenario_or_refuses_it_in_one_line(method, scenario):
    assert set(SCENARIOS) == {"class", "task", "domain"} and method in METHODS
    if (method, scenario) in REFUSED:
        with pytest.raises(ValueError) as e:
            CILConfig.for_dataset("hapt", method, scenario=scenario)
        msg = str(e.value)
        assert msg.startswith(f"method {method} does not run in the {scenario} scenario: ")
        assert "\n" not in msg and "no class is new" in msg
    else:
        c = CILConfig.for_dataset("hapt", method, scenario=scenario)
        assert c.scenario == scenario
        assert c.domain_tasks == (5 if scenario == "domain" else None)


def test_scenario_settings_are_checked():
    with pytest.raises(ValueError, match="unknown scenario 'joint'"):
        CILConfig.for_dataset("hapt", "lwf", scenario="joint")
    with pytest.raises(ValueError, match="domain_tasks=3 applies to the domain scenario"):
        CILConfig.for_dataset("hapt", "lwf", scenario="task", domain_tasks=3)
    with pytest.raises(ValueError, match="domain_tasks must be a positive int"):
        CILConfig.for_dataset("hapt", "lwf", scenario="domain", domain_tasks=0)
    c = CILConfig.for_dataset("hapt", "lwf", scenario="domain", domain_tasks=3)
    assert CILConfig.from_dict(c.to_dict()) == c


def test_domain_memory_shares_its_budget_over_tasks_and_classes():
    mem = DomainExemplarMemory(60)
    rng = np.random.default_rng(0)
    assert [mem.budget(3, t) for t in range(3)] == [20, 10, 6]
    for t in range(2):
        m = mem.budget(3, t)
        mem.reduce(m)
        for c in range(3):
            X = rng.normal(size=(30, 4)).astype(np.float32) + 10 * t
            mem.add_class(c, X, X, m, task=t)
    assert len(mem) == 60 and mem.classes == [0, 1, 2]
    assert [len(v) for v in mem.exemplars.values()] == [10] * 6   # task 0 reduced to 10
    X, y = mem.data()
    assert y.tolist() == [0] * 20 + [1] * 20 + [2] * 20
    np.testing.assert_array_equal(mem.class_exemplars(1),
                                  np.concatenate([mem.exemplars[(0, 1)], mem.exemplars[(1, 1)]]))
    back = DomainExemplarMemory(0)
    back.load_state_dict(copy.deepcopy(mem.state_dict()))
    assert back.total == 60 and sorted(back.exemplars) == sorted(mem.exemplars)
    for k in mem.exemplars:
        np.testing.assert_array_equal(back.exemplars[k], mem.exemplars[k])
    with pytest.raises(ValueError, match="needs the task"):
        mem.add_class(0, X[:2], X[:2], 1)


def _fcnet(arith=None, classes=0):
    arith = arith or intsim.FP()
    return lambda rng: FCNet(D, (D, D), arith, rng, num_classes=classes)


def test_lwf_in_the_domain_scenario_distils_and_fits_every_class():
    cfg = CILConfig.for_dataset("hapt", "lwf", scenario="domain")
    rng = np.random.default_rng(0)
    learner = make_learner(_fcnet(classes=3)(rng), cfg, np.random.default_rng(1))
    learner.known_classes = learner.total_classes = 3          # a later domain task
    learner.old_model = learner._freeze_copy()
    xb = rng.normal(size=(5, D)).astype(np.float32)
    yb = np.array([0, 1, 2, 1, 0])
    logits = learner.model.forward(xb) + rng.normal(size=(5, 3)).astype(np.float32)
    loss, grad = learner._loss(xb, yb, logits)
    ce, g_ce = cross_entropy(logits, yb)
    kd, g_kd = kd_loss(logits, learner.old_model.forward(xb), T=cfg.T)
    assert loss == pytest.approx(ce + cfg.lwf_weight * kd)
    np.testing.assert_allclose(grad, g_ce + cfg.lwf_weight * g_kd, rtol=1e-6)


def _blobs(seed=0, n=20, nt=8, C=4):
    rng = np.random.default_rng(seed)
    centers = 2.0 * rng.normal(size=(C, D))
    yi, yt = np.repeat(np.arange(C), n), np.repeat(np.arange(C), nt)
    X = (centers[yi] + rng.normal(size=(len(yi), D))).astype(np.float32)
    Xt = (centers[yt] + rng.normal(size=(len(yt), D))).astype(np.float32)
    return Dataset(X, yi + 1, Xt, yt + 1, name="blobs")


@pytest.mark.parametrize("method", ["finetune", "icarl", "bic", "der"])
def test_task_scenario_run(method):
    cfg = CILConfig.for_dataset("hapt", method, scenario="task", epochs=3, memory=16,
                                batch_size=16, lr=0.05)
    stream = scenario_of("task").stream(_blobs(), cfg, seed=3)
    res = run_cil(stream, _fcnet(intsim.HDQT()), cfg, np.random.default_rng(0))
    for t, ev in enumerate(res["tasks"]):
        for key in ("cnn", "nme"):
            if ev[key] is None:
                continue
            # masked to its task, no old sample can be taken for a new class (or back)
            assert ev[key]["confusion"]["old_as_new"] == ev[key]["confusion"]["new_as_old"] == 0
            assert len(ev[key]["task_acc"]) == t + 1
            # every task's test data is as large: the pooled accuracy is the row's mean
            assert ev[key]["acc"] == pytest.approx(np.mean(ev[key]["task_acc"]))
    assert len(res["cnn"]["by_task"]["matrix"]) == 2


@pytest.mark.parametrize("method", ["finetune", "lwf", "icarl"])
def test_domain_scenario_run_keeps_the_head_and_resumes_exactly(method):
    cfg = CILConfig.for_dataset("hapt", method, scenario="domain", domain_tasks=3, epochs=2,
                                memory=24, batch_size=16, lr=0.05)
    stream = scenario_of("domain").stream(_blobs(), cfg, seed=3)
    assert isinstance(stream, PermutedDomains) and stream.num_tasks == 3
    saved = {}

    def keep(t, results, ckpt):
        if t == 0:
            saved["ckpt"] = copy.deepcopy(ckpt)

    full = run_cil(stream, _fcnet(intsim.HDQT()), cfg, np.random.default_rng(0), on_task_end=keep)
    for t, ev in enumerate(full["tasks"]):
        assert ev["seen"] == 4 and ev["n_old"] == 0 and len(ev["cnn"]["per_class"]) == 4
        assert len(ev["cnn"]["task_acc"]) == t + 1
    assert len(full["cnn"]["by_task"]["forgetting_per_task"]) == 3
    again = run_cil(stream, _fcnet(intsim.HDQT()), cfg, np.random.default_rng(0),
                    state=saved["ckpt"])
    strip = lambda r: [{k: v for k, v in ev.items() if k != "seconds"} for ev in r["tasks"]]
    assert repr(strip(again)) == repr(strip(full))


def test_class_stream_tasks_carry_their_task_of_every_sample():
    stream = TaskStream(_blobs(), 2, 1, seed=0)
    task = stream.task(2)
    assert task.class_task.tolist() == [0, 0, 1, 2]
    np.testing.assert_array_equal(task.test_task, task.class_task[task.y_test])
