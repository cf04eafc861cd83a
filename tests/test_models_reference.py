"""The reference networks (a tiny ViT for CIFAR-10, transformers over the raw windows of
HAPT, DSADS and PAMAP2): registered by name, shipped as model files, one training step
under FP, HDQT and FP8 on a batch of 2, with the attention products named in the audit."""
import os
from types import SimpleNamespace

import numpy as np
import pytest

import intsim
from intsim.models import MODELS, read_model_file
from intsim.models.reference import REFERENCE_FILES, reference_file

SHAPES = {"vit_tiny": (3, 32, 32), "har_transformer": (6, 128),
          "har_transformer_dsads": (30, 125), "har_transformer_pamap2": (18, 512)}
BLOCKS = {"vit_tiny": 4, "har_transformer": 3, "har_transformer_dsads": 3,
          "har_transformer_pamap2": 3}


@pytest.mark.parametrize("name", sorted(REFERENCE_FILES))
def test_a_reference_model_is_a_shipped_file(name):
    path = reference_file(name)
    assert os.path.isfile(path) and os.path.dirname(path).endswith(os.path.join("models", "files"))
    mf = read_model_file(path)
    assert mf.name == name and mf.input == SHAPES[name] and mf.quantize_products == ("qk", "av")
    assert MODELS[name].needs_images == (len(SHAPES[name]) == 3)


@pytest.mark.parametrize("arith", ["fp", "hdqt", "fp8"])
@pytest.mark.parametrize("name", sorted(REFERENCE_FILES))
def test_one_training_step_of_a_reference_model(name, arith):
    dp = {"fp": intsim.FP, "hdqt": intsim.HDQT, "fp8": intsim.FP8}[arith]()
    cc = SimpleNamespace(classifier_bias=False, attn_products="file")
    model = MODELS[name].build(cc, dp, SHAPES[name], np.random.default_rng(0))
    model.add_classes(4, np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((2,) + SHAPES[name]).astype(np.float32)
    logits = model.forward(x)
    assert logits.shape == (2, 4) and np.isfinite(logits).all()
    g = np.zeros_like(logits)
    g[[0, 1], [0, 3]] = -0.5
    assert model.backward(g) is None
    grads = [p.grad for p in model.parameters()]
    assert all(gr is not None and np.isfinite(gr).all() for gr in grads)
    assert any(np.abs(gr).sum() > 0 for gr in grads[:2])       # the embedding learns
    audit = model.audit()
    if arith == "fp":
        assert audit == {}
        return
    for b in range(BLOCKS[name]):
        for site in ("qkv", "qk", "av", "proj"):
            assert f"backbone.encoder{b}.attn.mhsa.{site}" in audit
        assert f"backbone.encoder{b}.mlp.fc1" in audit
    qk = audit["backbone.encoder0.attn.mhsa.qk"]
    assert set(qk) == {"forward", "backward_input", "backward_weight"}


def test_a_trained_reference_model_can_be_copied():
    """iCaRL, LwF and BiC keep a deep copy of the model after a task: the attention
    products' per-item sites must copy."""
    import copy
    model = MODELS["har_transformer"].build(SimpleNamespace(classifier_bias=False, attn_products="file"),
                                            intsim.HDQT(), (6, 128), np.random.default_rng(0))
    model.add_classes(2, np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((2, 6, 128)).astype(np.float32)
    y = model.forward(x)
    model.backward(np.full_like(y, 0.1))
    old = copy.deepcopy(model)
    np.testing.assert_array_equal(old.forward(x), model.forward(x))


def test_intsim_train_runs_the_vit_on_images(tmp_path):
    """--model vit_tiny through intsim train: 6 classes of tiny random 32 x 32 images
    (injected), 3 tasks, the audit of every task names the attention products."""
    import json

    from click.testing import CliRunner

    from intsim.app.driver import RunHooks
    from intsim.cli import main
    from intsim.data import Dataset
    rng = np.random.default_rng(0)

    def images(n):
        y = np.repeat(np.arange(6), n)
        X = rng.integers(0, 256, (len(y), 3, 32, 32)).astype(np.uint8)
        return X, y.astype(np.int64)
    (Xtr, ytr), (Xte, yte) = images(4), images(2)
    hooks = RunHooks(dataset=Dataset(Xtr, ytr, Xte, yte, name="cifar10"))
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--dataset", "cifar10", "--data", str(tmp_path),
                                  "--model", "vit_tiny", "--epochs", "1", "--min-steps", "0",
                                  "--batch-size", "12", "--init-classes", "2",
                                  "--inc-classes", "2", "--memory", "12", "--threads", "1",
                                  "--out", str(out)], obj=hooks)
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((out / "results.json").read_text())
    assert len(res["tasks"]) == 3
    assert "backbone.encoder3.attn.mhsa.av" in res["tasks"][-1]["audit"]
