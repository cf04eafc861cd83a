"""The rest of a task (exemplar selection, class means, evaluation): the
evaluation shares one backbone pass between logits and NME features where
that is exact and unaudited, and results equal the reference (the learner
as it was before, one pass per use) bit for bit."""
import copy
import json

import numpy as np
import pytest

import intsim
from intsim.cil import CILConfig, run_cil
from intsim.cil.learner import audits_passes
from intsim.cil.memory import class_mean, nme_predict
from intsim.cil.registry import METHODS as LEARNERS
from intsim.cil.runner import make_learner
from intsim.data import Dataset, TaskStream
from intsim.models import FCNet, ResNet

LABELS = np.arange(6)


def _dataset(seed, n, nt, shape):
    rng = np.random.default_rng(seed)
    dim = int(np.prod(shape))
    centers = rng.normal(size=(len(LABELS), dim)) * 2.0
    yi, yti = np.repeat(LABELS, n), np.repeat(LABELS, nt)
    X = (centers[yi] + rng.normal(size=(len(yi), dim))).astype(np.float32).reshape(-1, *shape)
    Xt = (centers[yti] + rng.normal(size=(len(yti), dim))).astype(np.float32).reshape(-1, *shape)
    return Dataset(X, yi.astype(np.int64), Xt, yti.astype(np.int64), name="blobs")


def _resnet(arith, rng, classes=0):
    return ResNet(1, classes, arith, rng, widths=(4, 8, 8))


def _fcnet(arith, rng, classes=0, bias=False):
    return FCNet(12, (12, 12), arith, rng, num_classes=classes, classifier_bias=bias)


class TwoPass:
    """Mixin: the exemplar / class-mean / evaluation code as it was before
    the passes were shared (one feature pass per use), as the reference."""

    def _build_memory(self, task):
        mem = self.memory
        m = mem.per_class(self.total_classes)
        mem.reduce(m)
        self.model.eval()
        fb = self.config.feature_batch_size
        y = np.asarray(task.y_train)
        for c in np.asarray(task.classes, dtype=np.int64):
            Xc = task.X_train[y == c]
            mem.add_class(int(c), Xc, self._features(Xc, fb), m)
        if self.config.nme:
            self.class_means = np.stack([
                class_mean(self._features(mem.exemplars[c], fb))
                for c in range(self.total_classes)])

    def eval_task(self, task):
        n_old = int(task.seen - len(task.classes))
        self.model.eval()
        logits = self._predict_logits(task.X_test)
        out = {"task": int(task.t), "seen": int(task.seen), "n_old": n_old,
               "cnn": self._scores(np.argmax(logits, axis=1), task, n_old),
               "nme": None}
        if self.config.nme and self.class_means is not None:
            feats = self._features(task.X_test, self.config.test_batch_size)
            out["nme"] = self._scores(nme_predict(feats, self.class_means), task, n_old)
        return out


def _canon(res):
    """The results without timings and operation counts (the two-pass reference runs
    more forwards for the same results, so it counts more operations)."""
    r = copy.deepcopy(res)
    for t in r["tasks"]:
        t.pop("seconds")
        t.pop("op_counts")
    return json.dumps(r, sort_keys=True, default=float)


def _new_and_reference(monkeypatch, stream, factory, cfg):
    """(results of run_cil, results with the TwoPass reference learner), same seed."""
    new = run_cil(stream, factory, cfg, np.random.default_rng(3))
    monkeypatch.setitem(LEARNERS, cfg.method, type("Ref", (TwoPass, LEARNERS[cfg.method]), {}))
    return new, run_cil(stream, factory, cfg, np.random.default_rng(3))


@pytest.mark.parametrize("family", ["resnet", "fcnet"])
@pytest.mark.parametrize("method", ["icarl", "bic"])
def test_eval_one_pass_equals_two_passes(family, method):
    rng = np.random.default_rng(0)
    shape = (3, 8, 8) if family == "resnet" else (12,)
    cfg = CILConfig.for_dataset("hapt", method, test_batch_size=8, memory=10)
    build = _resnet if family == "resnet" else _fcnet
    learner = make_learner(build(intsim.FP(), rng, 4), cfg, np.random.default_rng(1))
    assert not audits_passes(learner.model)
    if method == "bic":
        learner.bias.add(0, 4)
        learner.bias.alphas[0].data[0] = 0.5     # a bias layer that changes the logits
    X = rng.normal(size=(29,) + shape).astype(np.float32)   # 8 does not divide 29
    logits, feats = learner._eval_outputs(X, True)
    np.testing.assert_array_equal(logits, learner._predict_logits(X))
    np.testing.assert_array_equal(feats, learner._features(X, 8))
    assert learner._eval_outputs(X, False)[1] is None
    quantized = make_learner(build(intsim.HDQT(), rng, 4), cfg, np.random.default_rng(1))
    assert audits_passes(quantized.model)


class _Counter:
    """Wraps model.features, counting the images it sees."""

    def __init__(self, model):
        self.images = 0
        self.fn = model.features
        model.features = self

    def __call__(self, x):
        self.images += len(x)
        return self.fn(x)


@pytest.mark.parametrize("arith,shared", [("fp", True), ("hdqt", False)])
def test_backbone_images_per_task(arith, shared):
    ds = _dataset(0, 20, 7, (12,))
    st = TaskStream(ds, 2, 2, seed=1)
    cfg = CILConfig.for_dataset("hapt", "icarl", epochs=1, memory=12, batch_size=16)
    a = intsim.FP() if arith == "fp" else intsim.HDQT()
    learner = make_learner(_fcnet(a, np.random.default_rng(0)), cfg, np.random.default_rng(1))
    for t in range(2):
        task = st.task(t)
        learner.incremental_train(task)
        count = _Counter(learner.model)
        learner._build_memory(task)      # after_task's passes (then the frozen copy)
        ex_old = sum(len(learner.memory.exemplars[c]) for c in range(learner.known_classes))
        ex_new = sum(len(learner.memory.exemplars[c]) for c in task.classes)
        assert ex_new > 0 and ex_old == (6 if t else 0)
        assert count.images == len(task.y_train) + ex_old + ex_new
        count.images = 0
        learner.eval_task(task)
        assert count.images == len(task.y_test) * (1 if shared else 2)
        del learner.model.features
        learner.old_model = learner._freeze_copy()


@pytest.mark.parametrize("method", ["icarl", "bic", "lwf"])
@pytest.mark.parametrize("arith", ["fp", "hdqt", "hdqt-per-sample"])
def test_fcnet_results_equal_two_pass_reference(monkeypatch, method, arith):
    a = {"fp": intsim.FP(), "hdqt": intsim.HDQT(),
         "hdqt-per-sample": intsim.HDQT(eval_per_sample=True)}[arith]
    st = TaskStream(_dataset(2, 30, 9, (12,)), 2, 2, seed=5)
    # feature batch 7 and test batch 10 do not divide the class sizes
    cfg = CILConfig.for_dataset("hapt", method, epochs=2, memory=18, batch_size=16,
                                feature_batch_size=7, test_batch_size=10, nme=True)
    fac = lambda rng: _fcnet(a, rng, bias=cfg.classifier_bias)
    new, ref = _new_and_reference(monkeypatch, st, fac, cfg)
    assert (new["nme"] is not None) == cfg.uses_memory and len(new["tasks"]) == 3
    assert _canon(new) == _canon(ref)


@pytest.mark.parametrize("arith", ["fp", "hdqt"])
def test_resnet_icarl_equals_two_pass_reference(monkeypatch, arith):
    a = intsim.FP() if arith == "fp" else intsim.HDQT()
    st = TaskStream(_dataset(4, 10, 5, (3, 8, 8)), 2, 2, seed=1)
    cfg = CILConfig.for_dataset("cifar100", "icarl", init_classes=2, inc_classes=2, epochs=1,
                                memory=12, batch_size=16, feature_batch_size=4,
                                test_batch_size=6)
    fac = lambda rng: _resnet(a, rng)
    new, ref = _new_and_reference(monkeypatch, st, fac, cfg)
    assert new["nme"]["acc"][0] > 0
    assert _canon(new) == _canon(ref)
