"""End-to-end class-incremental runs on tiny synthetic data with the real
FCNet (and a tiny ResNet) under FP and HDQT: every method, determinism,
checkpoint/resume, frozen old model, memory budget, BiC split."""
import copy
import json

import numpy as np
import pytest

import intsim
from intsim.cil import CILConfig, run_cil
from intsim.cil.runner import make_learner
from intsim.data import Dataset, TaskStream
from intsim.models import FCNet, ResNet

D = 12
LABELS = np.array([3, 5, 7, 9, 11, 13])  # original ids, remapped by the stream


def _dataset(seed=0, n=40, nt=15, shape=(D,)):
    rng = np.random.default_rng(seed)
    C = len(LABELS)
    dim = int(np.prod(shape))
    centers = rng.normal(size=(C, dim)) * 2.0
    yi, yti = np.repeat(np.arange(C), n), np.repeat(np.arange(C), nt)
    X = (centers[yi] + rng.normal(size=(len(yi), dim))).astype(np.float32).reshape(-1, *shape)
    Xt = (centers[yti] + rng.normal(size=(len(yti), dim))).astype(np.float32).reshape(-1, *shape)
    return Dataset(X, LABELS[yi].astype(np.int64), Xt, LABELS[yti].astype(np.int64), name="blobs")


@pytest.fixture(scope="module")
def stream():
    return TaskStream(_dataset(), init_classes=2, inc_classes=2, seed=42467)


def _cfg(method, **kw):
    base = dict(epochs=6, memory=24, batch_size=16, lr=0.05)
    base.update(kw)
    return CILConfig.for_dataset("hapt", method, **base)


def _factory(cfg, arith):
    return lambda rng: FCNet(D, (D, D), arith, rng, classifier_bias=cfg.classifier_bias)


def _canon(res):
    r = copy.deepcopy(res)
    for t in r["tasks"]:
        t.pop("seconds")
    return json.dumps(r, sort_keys=True, default=float)


ARITHS = {"fp": intsim.FP(), "hdqt": intsim.HDQT()}


@pytest.mark.parametrize("arith", ["fp", "hdqt"])
@pytest.mark.parametrize("method", ["finetune", "lwf", "icarl", "bic"])
def test_method_runs(stream, method, arith):
    cfg = _cfg(method)
    res = run_cil(stream, _factory(cfg, ARITHS[arith]), cfg, np.random.default_rng(0))
    assert len(res["tasks"]) == stream.num_tasks == 3
    assert res["class_order"] == [int(c) for c in stream.class_order]
    for t, ev in enumerate(res["tasks"]):
        assert ev["seen"] == 2 * (t + 1) and ev["n_old"] == 2 * t
        assert 0 <= ev["cnn"]["acc"] <= 100 and len(ev["cnn"]["per_class"]) == ev["seen"]
        assert ev["cnn"]["confusion"]["old_total"] == 15 * 2 * t
    assert res["cnn"]["last"] == res["tasks"][-1]["cnn"]["acc"]
    assert len(res["cnn"]["forgetting"]) == 3 and res["cnn"]["forgetting"][0] == 0
    assert (res["nme"] is not None) == (method == "icarl")
    # the first task (2 well separated classes) is learned by every method
    assert res["tasks"][0]["cnn"]["acc"] >= 70
    if arith == "hdqt":
        assert any(p["forward"]["tiles"] > 0 for p in res["tasks"][0]["audit"].values())


@pytest.mark.parametrize("method", ["icarl", "bic"])
def test_deterministic_and_resume(stream, method):
    from intsim.app import runfolder as runio
    cfg = _cfg(method, epochs=3)
    fac = _factory(cfg, ARITHS["hdqt"])
    ck = {}
    a = run_cil(stream, fac, cfg, np.random.default_rng(5),
                on_task_end=lambda t, r, c: ck.__setitem__(t, c))
    b = run_cil(stream, fac, cfg, np.random.default_rng(5))
    assert _canon(a) == _canon(b)
    c = run_cil(stream, fac, cfg, np.random.default_rng(6))
    assert _canon(a) != _canon(c)
    for t in (0, 1):  # resume through the CLI's checkpoint serialisation
        skel, arrays = runio.flatten_state(ck[t])
        state = runio.unflatten_state(json.loads(json.dumps(skel)), arrays)
        r = run_cil(stream, fac, cfg, np.random.default_rng(5), state=state)
        assert _canon(r) == _canon(a)


def _after_task0(stream, cfg, arith):
    """(learner after training task 0 and its after_task, task 0, task 1)."""
    learner = make_learner(_factory(cfg, arith)(np.random.default_rng(0)), cfg,
                           np.random.default_rng(1))
    t0, t1 = stream.task(0), stream.task(1)
    learner.incremental_train(t0)
    learner.after_task(t0)
    return learner, t0, t1


def test_old_model_frozen_copy_and_memory(stream):
    arith = ARITHS["hdqt"]
    learner, task0, task1 = _after_task0(stream, _cfg("icarl"), arith)
    old = learner.old_model
    assert old is not learner.model and old.arith == arith and not old.training
    x = task0.X_test[:16]
    learner.model.eval()
    ref = learner.model.forward(x).copy()
    np.testing.assert_array_equal(old.forward(x), ref)
    snap = {k: v.copy() for k, v in old.state_dict().items()}
    assert len(learner.memory) == 24 and len(learner.memory.exemplars[0]) == 12
    learner.incremental_train(task1)
    for k, v in old.state_dict().items():
        np.testing.assert_array_equal(v, snap[k])
    assert learner.old_model is old
    assert not np.array_equal(learner.model.state_dict()["backbone.0.weight"],
                              snap["backbone.0.weight"])
    learner.after_task(task1)
    assert [len(learner.memory.exemplars[c]) for c in range(4)] == [6] * 4
    assert learner.class_means.shape == (4, D)
    np.testing.assert_allclose(np.linalg.norm(learner.class_means, axis=1), 1, rtol=1e-6)


def test_bic_split_and_bias_layers(stream):
    cfg = _cfg("bic", memory=40)
    learner = make_learner(_factory(cfg, ARITHS["fp"])(np.random.default_rng(0)), cfg,
                           np.random.default_rng(1))
    t0, t1 = stream.task(0), stream.task(1)
    learner.incremental_train(t0)
    learner.after_task(t0)
    assert learner.val_size == 0 and learner.bias.values() == [(1.0, 0.0)]
    learner.incremental_train(t1)
    v = int(0.1 * 40 / 2)
    assert learner.validation_per_class() == v == 2 and learner.val_size == 4 * v
    assert learner.lamda == 0.5
    vals = learner.bias.values()
    assert vals[0] == (1.0, 0.0) and vals[1] != (1.0, 0.0)  # only the newest is trained
    X, y, Xv, yv = learner._split(t1)
    assert np.bincount(yv).tolist() == [v] * 4
    assert len(y) == len(t1.y_train) + 40 - 4 * v


@pytest.mark.parametrize("arith", ["fp", "hdqt"])
def test_tiny_resnet_icarl(arith):
    ds = _dataset(seed=3, n=12, nt=6, shape=(3, 8, 8))
    st = TaskStream(ds, init_classes=2, inc_classes=2, seed=1)
    cfg = CILConfig.for_dataset("cifar100", "icarl", init_classes=2, inc_classes=2, epochs=2,
                                memory=12, batch_size=16, milestones=(1,))
    assert cfg.augment  # CIFAR defaults: augment_cifar on every training batch
    fac = lambda rng: ResNet(1, 0, ARITHS[arith], rng, widths=(4, 8, 8))
    res = run_cil(st, fac, cfg, np.random.default_rng(0))
    assert len(res["tasks"]) == 3 and res["nme"]["acc"][0] > 0


def test_progress_and_on_epoch_callbacks(stream):
    import io
    from intsim.app.progress import Progress
    out = io.StringIO()
    events = []
    cfg = _cfg("bic", epochs=2, memory=40)
    run_cil(stream, _factory(cfg, ARITHS["fp"]), cfg, np.random.default_rng(0),
            on_epoch=events.append, progress=Progress("jsonl", out=out, err=io.StringIO()))
    stages = [(e["task"], e["stage"]) for e in events]
    assert stages == [(0, "train")] * 2 + [(1, "train")] * 2 + [(1, "bias")] * 2 + \
        [(2, "train")] * 2 + [(2, "bias")] * 2
    assert all(0 <= e["acc"] <= 1 and e["lr"] == cfg.lr for e in events)
    lines = [json.loads(s) for s in out.getvalue().splitlines()]
    assert len(lines) == len(events) and lines[0]["event"] == "epoch"


def _bic_two_tasks(stream, arith):
    """A BiC learner after task 0 and after stage 1 of task 1 (stage 2 skipped)."""
    learner, _, t1 = _after_task0(stream, _cfg("bic", memory=40, epochs=3), arith)
    stage1 = learner._fit
    learner._fit = lambda X, y, params, *a, stage="train", **kw: (
        stage1(X, y, params, *a, stage=stage, **kw) if stage == "train" else None)
    learner.incremental_train(t1)
    return learner


@pytest.mark.parametrize("shared", [True, False])
def test_fp134_bic_stage1_trains_the_bias_layers_at_the_base_lr(stream, shared):
    """lptorch's SGD gives the released BiC's lr-0 group of bias layers the first
    group's lr: under FP134 the bias layers move in stage 1; with shared_group_lr off,
    and under every other arithmetic, they stay at alpha 1, beta 0."""
    learner = _bic_two_tasks(stream, intsim.FP134(shared_group_lr=shared))
    moved = [ab != (1.0, 0.0) for ab in learner.bias.values()]
    assert moved == ([True, True] if shared else [False, False])
    learner = _bic_two_tasks(stream, intsim.FP())
    assert learner.bias.values() == [(1.0, 0.0), (1.0, 0.0)]


@pytest.mark.parametrize("reset", [True, False])
def test_fp134_classifier_bias_is_drawn_afresh_each_task(reset):
    """The released place_quant leaves the old classifier bias on the QLayer wrapper:
    under FP134 a growing classifier runs a freshly initialised bias (all rows)."""
    rng = np.random.default_rng(3)
    for arith, fresh in ((intsim.FP134(reset_classifier_bias=reset), reset),
                         (intsim.FP(), False)):
        model = FCNet(D, (D, D), arith, np.random.default_rng(0), classifier_bias=True)
        model.add_classes(2, rng)
        old = model.classifier.bias.data.copy()
        model.classifier.bias.data += 1.0           # trained away from any fresh draw
        model.add_classes(2, rng)
        b = model.classifier.bias.data
        assert b.shape == (4,) and b.dtype == np.float32
        bound = 1 / np.sqrt(D)
        assert np.all(np.abs(b[2:]) <= bound)
        assert np.array_equal(b[:2], old + 1.0) != fresh
        assert np.all(np.abs(b[:2]) <= bound) == fresh
