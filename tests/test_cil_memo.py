"""MEMO (intsim.cil.memo) and its model (intsim.models.memo): the frozen
generalized blocks and old specialized blocks stay bit-identical, parameters
grow as expected, the audit names every block, a resumed run equals the
uninterrupted one, and --method memo works from the CLI. Tiny data, FCNet
hidden (16, 16), ResNet widths (4, 8, 8) with one block per stage."""
import copy
import json

import numpy as np
import pytest
from click.testing import CliRunner

import intsim
from intsim.app import runfolder as runio
from intsim.app.driver import RunHooks
from intsim.cil import METHODS, CILConfig
from intsim.cil.memo import MEMO
from intsim.cil.runner import make_learner
from intsim.cli import main
from intsim.data import Dataset, TaskStream
from intsim.models import FCNet, ResNet
from intsim.models.growing import ConcatBackbones, GrowingModel, growing_model
from intsim.models.memo import MemoModel, adopt_memo
from intsim.nn import PassAudit
from resumecheck import canon, cli_full_and_resumed, full_and_resumed

DIM, HID = 12, (16, 16)
H = HID[-1]
FAST = ["--dataset", "synthetic", "--epochs", "1", "--batch-size", "32", "--memory", "12",
        "--hidden", "16,16"]
ARITHS = {"fp": intsim.FP, "hdqt": intsim.HDQT, "luq": intsim.LUQ}


def _dataset(seed=0, n_cls=6, shape=(DIM,), ntr=20, nte=6):
    rng = np.random.default_rng(seed)
    dim = int(np.prod(shape))
    centers = 2.0 * rng.standard_normal((n_cls, dim))

    def make(n):
        y = np.repeat(np.arange(n_cls), n)
        X = (centers[y] + rng.standard_normal((len(y), dim))).astype(np.float32)
        return X.reshape(-1, *shape), y.astype(np.int64)
    Xtr, ytr = make(ntr)
    Xte, yte = make(nte)
    return Dataset(Xtr, ytr, Xte, yte, name="tiny",
                   users_train=np.zeros(len(ytr), np.int64),
                   users_test=np.ones(len(yte), np.int64))


def _cfg(**kw):
    base = dict(epochs=1, memory=12, batch_size=16, hidden=HID)
    base.update(kw)
    return CILConfig.for_dataset("hapt", "memo", **base)


def _learner(arith, seed=0, cls=None):
    a = ARITHS[arith]()
    model = FCNet(DIM, HID, a, np.random.default_rng(seed))
    cfg = _cfg()
    if cls is None:
        return make_learner(model, cfg, np.random.default_rng(seed + 1))
    return cls(model, cfg, np.random.default_rng(seed + 1))


def _tiny_resnet(arith, rng):
    return ResNet(1, 0, ARITHS[arith](), rng, widths=(4, 8, 8))


def _state(module):
    return copy.deepcopy(module.state_dict())


def _same_state(a, b):
    return set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def _eval_out(module, x):
    was = module.training
    module.eval()
    out = module.forward(x)
    module.train(was)
    return out


def _run_tasks(learner, stream, upto=None):
    for t in range(stream.num_tasks if upto is None else upto):
        task = stream.task(t)
        learner.incremental_train(task)
        learner.after_task(task)


# ---------------------------------------------------------------- model

def test_memo_is_registered_without_classifier_bias():
    assert METHODS["memo"] is MEMO
    cfg = _cfg()
    assert cfg.uses_memory and cfg.classifier_bias is False and cfg.nme is False


@pytest.mark.parametrize("arith", ["fp", "hdqt"])
def test_resnet_split_is_the_last_stage_and_keeps_the_function(arith):
    plain = _tiny_resnet(arith, np.random.default_rng(0))
    twin = _tiny_resnet(arith, np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((3, 3, 8, 8)).astype(np.float32)
    plain.eval()
    want = plain.features(x)
    m = adopt_memo(twin, np.random.default_rng(2))
    assert m is twin and isinstance(m, MemoModel) and isinstance(m, ResNet)
    assert "backbone" not in m._modules
    assert list(m._modules)[:3] == ["generalized", "specialized", "classifier"]
    # stem + stages 1-2 | stage 3 + pool + flatten (backbones/memo_cifar_resnet.py)
    assert len(m.generalized) == 3 + 2 and len(m.specialized.backbone(0)) == 1 + 2
    m.eval()
    assert np.array_equal(m.features(x), want)          # the same layers, the same outputs
    assert m.specialized.dims == [8] and m.feature_dim == 8
    # a fresh block is a last stage of the same shape
    blk = m.memo_block(np.random.default_rng(3))
    s0 = m.specialized.backbone(0)
    assert [p.data.shape for p in blk.parameters()] == [p.data.shape for p in s0.parameters()]
    with pytest.raises(ValueError):
        m.forward(x[:, :1])                             # ResNet's own input check still applies


def test_fcnet_split_is_get_memo_fcnet():
    a = intsim.FP()
    m = adopt_memo(FCNet(DIM, HID, a, np.random.default_rng(0)), np.random.default_rng(1))
    assert isinstance(m, FCNet) and m.generalized.parameters()[0].data.shape == (HID[0], DIM)
    s0 = m.specialized.backbone(0)
    assert [p.data.shape for p in s0.parameters()] == [(H, H), (H, H)]     # two h -> h layers
    # the first block is drawn from the rng given: the same draw gives the same block
    again = FCNet(DIM, HID, a, np.random.default_rng(0)).memo_block(np.random.default_rng(1))
    assert _same_state(s0.state_dict(), again.state_dict())
    x = np.random.default_rng(2).standard_normal((5, DIM)).astype(np.float32)
    m.eval()
    assert np.array_equal(m.features(x), s0.forward(m.generalized.forward(x)))
    with pytest.raises(ValueError):
        adopt_memo(growing_model(lambda r: FCNet(DIM, HID, a, r), np.random.default_rng(0)),
                   np.random.default_rng(1))


@pytest.mark.parametrize("arith", ["fp", "hdqt"])
def test_frozen_blocks_are_bit_identical_after_later_tasks(arith):
    st = TaskStream(_dataset(), 2, 2, seed=1)
    learner = _learner(arith)
    assert isinstance(learner, MEMO) and isinstance(learner.model, MemoModel)
    m = learner.model
    X = m._input(st.task(0).X_test)
    gen0 = None
    kept = []              # (state, eval output on the generalized features) of each block
    for t in range(st.num_tasks):
        gen_before = _state(m.generalized)
        task = st.task(t)
        learner.incremental_train(task)
        learner.after_task(task)
        learner.eval_task(task)
        assert m.num_backbones == t + 1
        assert m.generalized_frozen == (t > 0)
        assert m.specialized.frozen == [True] * t + [False]
        if t == 0:         # task 0 trains the generalized blocks
            assert not _same_state(gen_before, _state(m.generalized))
            gen0 = (_state(m.generalized), _eval_out(m.generalized, X))
        else:              # later tasks leave them bit-identical
            assert _same_state(_state(m.generalized), gen0[0])
            assert np.array_equal(_eval_out(m.generalized, X), gen0[1])
            assert all(p.grad is None for p in m.generalized.parameters())
        G = _eval_out(m.generalized, X)
        for i, (state, out) in enumerate(kept):
            blk = m.specialized.backbone(i)
            assert _same_state(_state(blk), state), (t, i)
            assert np.array_equal(_eval_out(blk, G), out), (t, i)
            assert all(p.grad is None for p in blk.parameters())
        if t > 0:          # the new block started as a copy of the previous one and trained
            assert not _same_state(_state(m.specialized.backbone(t - 1)),
                                   _state(m.specialized.backbone(t)))
        kept.append((_state(m.specialized.backbone(t)), _eval_out(m.specialized.backbone(t), G)))


def test_new_block_starts_as_a_copy_of_the_previous_one():
    a = intsim.HDQT()
    m = adopt_memo(FCNet(DIM, HID, a, np.random.default_rng(0)), np.random.default_rng(1))
    m.add_classes(2, np.random.default_rng(2))
    W = m.classifier.weight.data.copy()
    m.freeze_generalized()
    m.add_backbone(np.random.default_rng(3))
    assert m.classifier.weight.data.shape == (2, 2 * H)
    assert np.array_equal(m.classifier.weight.data[:, :H], W)
    x = np.random.default_rng(4).standard_normal((5, DIM)).astype(np.float32)
    m.eval()
    f = m.features(x)
    assert np.array_equal(f[:, :H], f[:, H:])


def test_parameter_counts_grow_and_only_the_new_parts_train():
    st = TaskStream(_dataset(), 2, 2, seed=1)
    learner = _learner("fp")
    m = learner.model
    gen = DIM * HID[0] + HID[0] * HID[1]
    per_block = 2 * H * H                      # no biases anywhere (released --bias default)
    for t in range(st.num_tasks):
        task = st.task(t)
        learner.incremental_train(task)
        n, C, D = t + 1, 2 * (t + 1), H * (t + 1)
        aux = 0 if t == 0 else (2 + 1) * H
        assert m.feature_dim == D and m.num_classes == C
        assert m.classifier.weight.data.shape == (C, D) and m.classifier.bias is None
        assert sum(p.data.size for p in m.parameters()) == gen + n * per_block + C * D + aux
        trainable = sum(p.data.size for p in learner._train_params())
        assert trainable == (gen if t == 0 else 0) + per_block + C * D + aux
        ids = {id(p) for p in learner._train_params()}
        frozen = [p for i in range(t) for p in m.specialized.backbone(i).parameters()]
        if t > 0:
            frozen += m.generalized.parameters()
        assert all(id(p) not in ids for p in frozen)
        learner.after_task(task)
        assert learner.old_model is None
        assert (learner.gamma is None) == (t == 0)
        assert learner.task_extras() == {"memo_blocks": n, "memo_gamma": learner.gamma}


@pytest.mark.parametrize("family", ["fcnet", "resnet"])
def test_input_gradients_follow_the_generalized_part(family):
    """While the generalized part trains, the specialized blocks feed it their input
    gradient; once frozen, nothing below the blocks is computed."""
    a = intsim.HDQT()
    if family == "fcnet":
        m = adopt_memo(FCNet(DIM, HID, a, np.random.default_rng(0)), np.random.default_rng(1))
        x = np.random.default_rng(2).standard_normal((4, DIM)).astype(np.float32)
    else:
        m = adopt_memo(_tiny_resnet("hdqt", np.random.default_rng(0)), np.random.default_rng(1))
        x = np.random.default_rng(2).standard_normal((4, 3, 8, 8)).astype(np.float32)
    m.add_classes(2, np.random.default_rng(3))
    s0 = m.specialized.backbone(0)
    first = next(mod for _, mod in s0.named_modules() if hasattr(mod, "need_input_grad"))
    assert first.need_input_grad is True
    m.train()
    logits = m.forward(x)
    assert m.backward(np.ones_like(logits) / logits.size) is None
    assert all(p.grad is not None for p in m.parameters())
    m.freeze_generalized()
    assert first.need_input_grad is False and m.generalized.training is False
    m.add_backbone(np.random.default_rng(4))
    m.train()                              # train() keeps the frozen generalized part in eval
    assert m.generalized.training is False and m.specialized.backbone(1).training
    m.zero_grad()
    logits = m.forward(x)
    assert m.backward(np.ones_like(logits) / logits.size) is None
    assert all(p.grad is None for p in m.generalized.parameters())
    assert all(p.grad is not None for p in m.specialized.backbone(1).parameters())
    assert isinstance(m.specialized, ConcatBackbones) and m.specialized.prefix == "s"


def test_audit_covers_every_block_and_the_aux_head():
    st = TaskStream(_dataset(), 2, 2, seed=1)
    learner = _learner("hdqt")
    m = learner.model
    audits = []
    for t in range(st.num_tasks):
        m.reset_audit()
        learner.incremental_train(st.task(t))
        learner.after_task(st.task(t))
        # a snapshot: the layers reset their audit objects in place
        audits.append({k: {p: a.as_dict() for p, a in v.items()} for k, v in m.audit().items()})
    blocks = {f"specialized.s{i}.{j}" for i in range(3) for j in (0, 2)}
    assert set(audits[-1]) == {"generalized.0", "generalized.2", "classifier", "aux"} | blocks
    empty = lambda a: a == PassAudit().as_dict()   # noqa: E731
    # task 0: s0 feeds the trainable generalized part its input gradient
    assert not empty(audits[0]["specialized.s0.0"]["backward_input"])
    assert not empty(audits[0]["generalized.2"]["backward_weight"])
    assert "backward_input" not in audits[0]["generalized.0"]
    last = audits[-1]
    for i in range(3):
        assert "backward_input" not in last[f"specialized.s{i}.0"]
        assert not empty(last[f"specialized.s{i}.0"]["forward"])
    # the frozen parts run forward in the last task, but no backward
    for name in ["generalized.0", "generalized.2", "specialized.s0.2", "specialized.s1.2"]:
        assert empty(last[name]["backward_weight"]), name
    assert not empty(last["specialized.s2.2"]["backward_weight"])
    assert not empty(last["aux"]["backward_weight"])


def test_state_dict_rebuilds_the_grown_model():
    st = TaskStream(_dataset(), 2, 2, seed=1)
    learner = _learner("hdqt")
    _run_tasks(learner, st, upto=2)
    state = copy.deepcopy(learner.state_dict())
    assert int(state["model"]["params"]["generalized_frozen"]) == 1
    fresh = _learner("hdqt", seed=5)
    fresh.load_state_dict(state)
    a, b = learner.model, fresh.model
    assert b.num_backbones == 2 and b.specialized.frozen == a.specialized.frozen
    assert b.generalized_frozen and b.aux.out_features == a.aux.out_features == 3
    assert _same_state(a.state_dict(), b.state_dict())
    assert json.dumps(a.rng_state(), sort_keys=True) == json.dumps(b.rng_state(), sort_keys=True)
    X = st.task(1).X_test
    a.eval(), b.eval()
    assert np.array_equal(a.forward(X), b.forward(X))
    # and both continue identically
    t2 = st.task(2)
    for lr in (learner, fresh):
        lr.incremental_train(t2)
        lr.after_task(t2)
    assert _same_state(a.state_dict(), b.state_dict())


class _TrainAll(MEMO):
    """The released --train_base --train_adaptive variant."""
    train_base = True
    train_adaptive = True


def test_train_base_and_train_adaptive_keep_everything_training():
    st = TaskStream(_dataset(), 2, 2, seed=1)
    learner = _learner("fp", cls=_TrainAll)
    m = learner.model
    _run_tasks(learner, st, upto=1)
    gen, s0 = _state(m.generalized), _state(m.specialized.backbone(0))
    task = st.task(1)
    learner.incremental_train(task)
    learner.after_task(task)
    assert not m.generalized_frozen and m.specialized.frozen == [False, False]
    assert not _same_state(gen, _state(m.generalized))
    assert not _same_state(s0, _state(m.specialized.backbone(0)))
    assert len(learner._train_params()) == len(m.parameters())


# ---------------------------------------------------------------- CLI / driver

def _train(args, hooks=None):
    return CliRunner().invoke(main, ["train", *args], obj=hooks if hooks is not None
                              else RunHooks())


def _accuracies(res):
    return [(t["cnn"], t["nme"], t["per_class_cnn"], t["audit"], t.get("memo_gamma"),
             t.get("memo_blocks")) for t in res["tasks"]], res["summary"]


@pytest.mark.parametrize("arith", ["fp", "hdqt", "luq"])
def test_cli_memo_resumed_after_task_1_equals_uninterrupted(tmp_path, arith):
    args = ["--method", "memo", "--arith", arith, *FAST]
    full = tmp_path / "full"
    r = _train(["--out", str(full), *args])
    assert r.exit_code == 0, r.output + r.stderr
    ref = json.loads((full / "results.json").read_text())
    assert ref["complete"] and ref["config"]["method"] == "memo"
    assert [t["memo_blocks"] for t in ref["tasks"]] == [1, 2, 3]
    assert ref["tasks"][0]["memo_gamma"] is None and ref["tasks"][1]["memo_gamma"] > 0
    if arith != "fp":
        assert {"generalized.0", "specialized.s2.0", "aux"} <= set(ref["tasks"][2]["audit"])

    part = tmp_path / "part"

    def on_task_end(t, rec):
        if t == 0:
            raise KeyboardInterrupt
    r = _train(["--out", str(part), *args], RunHooks(on_task_end=on_task_end))
    assert r.exit_code == 130
    assert runio.load_checkpoint(part)[0] == 0
    r = _train(["--out", str(part), "--resume"])
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((part / "results.json").read_text())
    assert res["complete"] and _accuracies(res) == _accuracies(ref)


def test_cli_memo_resumed_mid_task_equals_uninterrupted(tmp_path):
    def on_epoch(ev):
        if ev["task"] == 2:
            raise KeyboardInterrupt
    ref, res = cli_full_and_resumed(tmp_path, _train, ["--method", "memo", "--arith", "hdqt",
                                                       *FAST], RunHooks(on_epoch=on_epoch))
    assert _accuracies(res) == _accuracies(ref)


@pytest.mark.parametrize("arith", ["fp", "hdqt", "luq"])
def test_resnet_memo_run_cil_resume_equals_uninterrupted(arith):
    ds = _dataset(shape=(3, 8, 8), ntr=10, nte=4)
    st = TaskStream(ds, 2, 2, seed=1)
    cfg = CILConfig.for_dataset("hapt", "memo", epochs=1, memory=12, batch_size=16,
                                model="resnet32")
    mf = lambda rng: _tiny_resnet(arith, rng)   # noqa: E731
    full, resumed = full_and_resumed(st, mf, cfg)
    assert canon(full) == canon(resumed)
    assert [t["memo_blocks"] for t in full["tasks"]] == [1, 2, 3]
    if arith != "fp":
        aud = set(full["tasks"][2]["audit"])
        assert {"generalized.0", "generalized.3.conv1", "generalized.4.conv2", "aux",
                "classifier"} <= aud
        assert {f"specialized.s{i}.0.conv{j}" for i in range(3) for j in (1, 2)} <= aud
        assert not any(k.startswith("backbone") for k in aud)


def test_memo_and_der_differ_only_where_they_should():
    """The same ResNet trained as DER and as MEMO: task 0 is the same training
    (MEMO's split reuses the model's own layers; nothing is drawn for it)."""
    ds = _dataset(shape=(3, 8, 8), ntr=10, nte=4)
    st = TaskStream(ds, 2, 2, seed=1)
    out = {}
    for method in ("der", "memo"):
        cfg = CILConfig.for_dataset("hapt", method, epochs=1, memory=12, batch_size=16,
                                    model="resnet32")
        fac = lambda rng: _tiny_resnet("fp", rng)   # noqa: E731
        mf = (lambda rng: growing_model(fac, rng)) if method == "der" else fac
        learner = make_learner(mf(np.random.default_rng(0)), cfg, np.random.default_rng(1))
        learner.incremental_train(st.task(0))
        out[method] = learner.model
    x = st.task(0).X_test
    out["der"].eval(), out["memo"].eval()
    assert np.array_equal(out["der"].forward(x), out["memo"].forward(x))
    assert isinstance(out["der"], GrowingModel) and not isinstance(out["der"], MemoModel)


@pytest.mark.parametrize("method", ["der", "memo"])
def test_cli_resnet32_growing_methods_end_to_end(tmp_path, method):
    """`intsim train --model resnet32 --method der|memo` through the CLI (HDQT,
    injected 8x8 images: the driver, checkpoints, audit and results.json)."""
    hooks = RunHooks(dataset=_dataset(shape=(3, 8, 8), ntr=8, nte=3))
    out = tmp_path / method
    r = _train(["--out", str(out), "--dataset", "cifar10", "--data", str(tmp_path),
                "--model", "resnet32", "--method",
                method, "--arith", "hdqt", "--epochs", "1", "--batch-size", "16", "--memory", "12",
                "--init-classes", "2", "--inc-classes", "2"], hooks)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["config"]["model"] == "resnet32"
    assert len(res["tasks"]) == 3
    last = set(res["tasks"][2]["audit"])
    if method == "der":
        assert {"backbone.b0.0", "backbone.b2.0", "classifier", "aux"} <= last
    else:
        assert {"generalized.0", "specialized.s2.0.conv1", "classifier", "aux"} <= last
