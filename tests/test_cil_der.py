"""DER (intsim.cil.der) and the growing model (intsim.models.growing): frozen
backbones stay bit-identical, parameters grow as expected, the audit names
every backbone, a resumed run equals the uninterrupted one, and --method der
works from the CLI. Tiny data, FCNet hidden (16, 16), ResNet widths (4, 8, 8)."""
import copy
import json

import numpy as np
import pytest
from click.testing import CliRunner

import intsim
from intsim.app import runfolder as runio
from intsim.app.driver import RunHooks
from intsim.cil import CILConfig
from intsim.cil.der import DER, weight_align
from intsim.cil.runner import make_learner
from intsim.cli import main
from intsim.data import Dataset, TaskStream
from intsim.models import FCNet, ResNet
from intsim.models.growing import ConcatBackbones, GrowingModel, growing_model
from resumecheck import canon, cli_full_and_resumed, full_and_resumed

DIM, HID = 12, (16, 16)
FAST = ["--epochs", "1", "--batch-size", "32", "--memory", "12", "--hidden", "16,16"]


def _dataset(seed=0, n_cls=6, shape=(DIM,), ntr=20, nte=6, labels_from=0):
    rng = np.random.default_rng(seed)
    dim = int(np.prod(shape))
    centers = 2.0 * rng.standard_normal((n_cls, dim))

    def make(n):
        y = np.repeat(np.arange(n_cls), n)
        X = (centers[y] + rng.standard_normal((len(y), dim))).astype(np.float32)
        return X.reshape(-1, *shape), (y + labels_from).astype(np.int64)
    Xtr, ytr = make(ntr)
    Xte, yte = make(nte)
    return Dataset(Xtr, ytr, Xte, yte, name="tiny",
                   users_train=np.zeros(len(ytr), np.int64),
                   users_test=np.ones(len(yte), np.int64))


def _arith(name):
    return intsim.FP() if name == "fp" else intsim.HDQT()


def _cfg(**kw):
    base = dict(epochs=1, memory=12, batch_size=16, hidden=HID)
    base.update(kw)
    return CILConfig.for_dataset("hapt", "der", **base)


def _learner(arith, seed=0):
    a = _arith(arith)
    model = FCNet(DIM, HID, a, np.random.default_rng(seed), classifier_bias=True)
    return make_learner(model, _cfg(), np.random.default_rng(seed + 1))


def _backbone_state(model, i):
    return model.backbone.backbone(i).state_dict()


def _eval_features(model, i, X):
    b = model.backbone.backbone(i)
    was = b.training
    b.eval()
    out = b.forward(model._input(X))
    b.train(was)
    return out


@pytest.mark.parametrize("arith", ["fp", "hdqt"])
def test_frozen_backbones_are_bit_identical_after_later_tasks(arith):
    st = TaskStream(_dataset(), 2, 2, seed=1)
    learner = _learner(arith)
    assert isinstance(learner, DER) and isinstance(learner.model, GrowingModel)
    X = st.task(0).X_test
    kept = []                         # (state, features) of each backbone after its task
    for t in range(st.num_tasks):
        task = st.task(t)
        learner.incremental_train(task)
        learner.after_task(task)
        learner.eval_task(task)
        m = learner.model
        assert m.num_backbones == t + 1
        assert m.backbone.frozen == [True] * t + [False]
        for i, (state, feats) in enumerate(kept):       # frozen during task t
            now = _backbone_state(m, i)
            assert set(now) == set(state)
            assert all(np.array_equal(now[k], state[k]) for k in state), (t, i)
            assert np.array_equal(_eval_features(m, i, X), feats), (t, i)
            assert all(p.grad is None for p in m.backbone.backbone(i).parameters())
        if t > 0:                     # the new backbone started as a copy and was trained
            prev, new = _backbone_state(m, t - 1), _backbone_state(m, t)
            assert any(not np.array_equal(prev[k], new[k]) for k in prev)
        kept.append((copy.deepcopy(_backbone_state(m, t)), _eval_features(m, t, X)))


def test_parameter_counts_grow_and_only_the_new_parts_train():
    st = TaskStream(_dataset(), 2, 2, seed=1)
    learner = _learner("fp")
    per_bb = DIM * HID[0] + HID[0] * HID[1]
    for t in range(st.num_tasks):
        task = st.task(t)
        learner.incremental_train(task)
        m = learner.model
        n_bb, C, D = t + 1, 2 * (t + 1), HID[-1] * (t + 1)
        aux = 0 if t == 0 else (2 + 1) * HID[-1] + (2 + 1)
        assert m.feature_dim == D and m.num_classes == C
        assert m.classifier.weight.data.shape == (C, D)
        total = sum(p.data.size for p in m.parameters())
        assert total == n_bb * per_bb + C * D + C + aux
        trainable = sum(p.data.size for p in learner._train_params())
        assert trainable == per_bb + C * D + C + aux
        ids = {id(p) for p in learner._train_params()}
        assert all(id(p) not in ids for i in range(t)
                   for p in m.backbone.backbone(i).parameters())
        learner.after_task(task)
        assert learner.old_model is None
        assert (learner.gamma is None) == (t == 0)


def test_classifier_widening_keeps_old_weights():
    a = intsim.FP()
    fac = lambda rng: FCNet(DIM, HID, a, rng, classifier_bias=True)
    m = growing_model(fac, np.random.default_rng(0))
    m.add_classes(3, np.random.default_rng(1))
    W, b = m.classifier.weight.data.copy(), m.classifier.bias.data.copy()
    wp = m.classifier.weight
    m.add_backbone(np.random.default_rng(2))
    assert m.classifier.weight is wp                      # same Parameter, grown
    assert np.array_equal(m.classifier.weight.data[:, :HID[-1]], W)
    assert np.array_equal(m.classifier.bias.data, b)
    assert m.classifier.weight.data.shape == (3, 2 * HID[-1])
    # the new backbone starts as the previous one: its features equal b0's
    x = np.random.default_rng(3).standard_normal((5, DIM)).astype(np.float32)
    m.eval()
    f = m.features(x)
    assert np.array_equal(f[:, :HID[-1]], f[:, HID[-1]:])
    assert m.forward(x).shape == (5, 3)


def test_weight_align_matches_the_norm_ratio():
    m = FCNet(4, 4, intsim.FP(), np.random.default_rng(0), num_classes=5)
    W = m.classifier.weight.data.astype(np.float64)
    g = weight_align(m.classifier, 2)
    n = np.linalg.norm(W, axis=1)
    assert g == pytest.approx(n[:3].mean() / n[3:].mean())
    assert np.allclose(np.linalg.norm(m.classifier.weight.data[3:], axis=1).mean(), n[:3].mean())


@pytest.mark.parametrize("arith", ["fp", "hdqt"])
def test_each_backbone_first_layer_computes_no_input_gradient(arith):
    a = _arith(arith)
    m = growing_model(lambda rng: FCNet(DIM, HID, a, rng), np.random.default_rng(0))
    m.add_classes(2, np.random.default_rng(1))
    m.add_backbone(np.random.default_rng(2))
    for i in range(2):
        first = m.backbone.backbone(i)[0]
        assert first.need_input_grad is False
        assert m.backbone.backbone(i)[2].need_input_grad is True
    m.train()
    x = np.random.default_rng(3).standard_normal((4, DIM)).astype(np.float32)
    logits = m.forward(x)
    assert m.backward(np.ones_like(logits) / logits.size) is None
    assert all(p.grad is not None for p in m.parameters())
    m.freeze_backbone(0)
    assert m.backbone.backbone(0).training is False
    m.train()                                 # train() keeps frozen backbones in eval
    assert m.backbone.backbone(0).training is False and m.backbone.backbone(1).training
    m.zero_grad()
    m.forward(x)
    cat = m.backbone
    assert isinstance(cat, ConcatBackbones)
    assert cat.backward(np.ones((4, cat.dims[0] + cat.dims[1]), np.float32)) is None
    assert all(p.grad is None for p in m.backbone.backbone(0).parameters())
    assert all(p.grad is not None for p in m.backbone.backbone(1).parameters())


def test_audit_covers_every_backbone_and_the_aux_head():
    st = TaskStream(_dataset(), 2, 2, seed=1)
    learner = _learner("hdqt")
    for t in range(st.num_tasks):
        learner.model.reset_audit()
        learner.incremental_train(st.task(t))
        learner.after_task(st.task(t))
    aud = learner.model.audit()
    want = {f"backbone.b{i}.{j}" for i in range(3) for j in (0, 2)} | {"classifier", "aux"}
    assert set(aud) == want
    for i in range(3):
        assert "backward_input" not in aud[f"backbone.b{i}.0"]
        assert "forward" in aud[f"backbone.b{i}.0"]
    # frozen backbones run forward in the last task but no backward
    for i in range(2):
        assert aud[f"backbone.b{i}.2"]["backward_weight"].as_dict() == \
            type(aud[f"backbone.b{i}.2"]["backward_weight"])().as_dict()
    assert aud["backbone.b2.2"]["backward_weight"].as_dict() != \
        type(aud["backbone.b2.2"]["backward_weight"])().as_dict()


def test_state_dict_rebuilds_the_grown_model():
    st = TaskStream(_dataset(), 2, 2, seed=1)
    learner = _learner("hdqt")
    for t in range(2):
        learner.incremental_train(st.task(t))
        learner.after_task(st.task(t))
    state = copy.deepcopy(learner.state_dict())
    fresh = _learner("hdqt", seed=5)
    fresh.load_state_dict(state)
    a, b = learner.model, fresh.model
    assert b.num_backbones == 2 and b.backbone.frozen == a.backbone.frozen
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb) and all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert json.dumps(a.rng_state(), sort_keys=True) == json.dumps(b.rng_state(), sort_keys=True)
    X = st.task(1).X_test
    a.eval(), b.eval()
    assert np.array_equal(a.forward(X), b.forward(X))


# ---------------------------------------------------------------- CLI / driver

def _train(args, hooks=None):
    hooks = hooks if hooks is not None else RunHooks(dataset=_dataset(labels_from=1))
    return CliRunner().invoke(main, ["train", *args], obj=hooks)


def _accuracies(res):
    return [(t["cnn"], t["nme"], t["per_class_cnn"], t["audit"], t.get("der_gamma"),
             t.get("der_backbones")) for t in res["tasks"]], res["summary"]


@pytest.mark.parametrize("arith", ["fp", "hdqt"])
def test_cli_der_resumed_after_task_1_equals_uninterrupted(tmp_path, arith):
    args = ["--method", "der", "--arith", arith, *FAST]
    full = tmp_path / "full"
    r = _train(["--out", str(full), *args])
    assert r.exit_code == 0, r.output + r.stderr
    ref = json.loads((full / "results.json").read_text())
    assert ref["complete"] and ref["config"]["method"] == "der"
    assert [t["der_backbones"] for t in ref["tasks"]] == [1, 2, 3]
    assert ref["tasks"][0]["der_gamma"] is None and ref["tasks"][1]["der_gamma"] > 0
    assert "backbone.b2.0" in ref["tasks"][2]["audit"] or arith == "fp"

    part = tmp_path / "part"
    hooks = RunHooks(dataset=_dataset(labels_from=1))

    def on_task_end(t, rec):
        if t == 0:
            raise KeyboardInterrupt
    hooks.on_task_end = on_task_end
    r = _train(["--out", str(part), *args], hooks)
    assert r.exit_code == 130
    assert runio.load_checkpoint(part)[0] == 0
    r = _train(["--out", str(part), "--resume"])
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((part / "results.json").read_text())
    assert res["complete"] and _accuracies(res) == _accuracies(ref)


def test_cli_der_resumed_mid_task_equals_uninterrupted(tmp_path):
    hooks = RunHooks(dataset=_dataset(labels_from=1))

    def on_epoch(ev):
        if ev["task"] == 2:
            raise KeyboardInterrupt
    hooks.on_epoch = on_epoch
    ref, res = cli_full_and_resumed(tmp_path, _train, ["--method", "der", "--arith", "hdqt",
                                                       *FAST], hooks)
    assert _accuracies(res) == _accuracies(ref)


@pytest.mark.parametrize("arith", ["fp", "hdqt"])
def test_resnet_der_run_cil_resume_equals_uninterrupted(arith):
    a = _arith(arith)
    ds = _dataset(shape=(3, 8, 8), ntr=10, nte=4)
    st = TaskStream(ds, 2, 2, seed=1)
    cfg = CILConfig.for_dataset("hapt", "der", epochs=1, memory=12, batch_size=16,
                                model="resnet32")
    fac = lambda rng: ResNet(1, 0, a, rng, widths=(4, 8, 8))
    mf = lambda rng: growing_model(fac, rng)
    full, resumed = full_and_resumed(st, mf, cfg)
    assert canon(full) == canon(resumed)
    assert [t["der_backbones"] for t in full["tasks"]] == [1, 2, 3]
    if arith == "hdqt":
        assert {"backbone.b0.0", "backbone.b2.0", "aux", "classifier"} <= set(full["tasks"][2]["audit"])


def test_registry_factory_builds_the_runs_resnet_family():
    from intsim.models import MODELS
    cfg = CILConfig.for_dataset("hapt", "der", epochs=1, memory=12, model="resnet32")
    a = intsim.FP()
    model = MODELS["resnet32"].build(cfg, a, (3, 8, 8), np.random.default_rng(0))
    learner = make_learner(model, cfg, np.random.default_rng(1))
    assert learner.model is model and isinstance(model, GrowingModel)
    learner._in_shape = (3, 8, 8)             # set from the task data in _begin_task
    model.add_classes(2, np.random.default_rng(2))
    model.add_backbone(np.random.default_rng(3))
    assert model.num_backbones == 2 and model.feature_dim == 128
    x = np.random.default_rng(4).standard_normal((2, 3, 8, 8)).astype(np.float32)
    model.eval()
    f = model.features(x)
    assert np.array_equal(f[:, :64], f[:, 64:])     # b1 starts as a copy of b0
    with pytest.raises(ValueError):
        model.forward(x[:, :1])                        # ResNet's own input check still applies
