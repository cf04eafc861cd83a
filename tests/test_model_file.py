"""Model files: the format's checks (one line naming the file, the layer's index and
kind, exit code 2), a network from a file trained by ``intsim train --model FILE``
and a sweep axis of files, and the networks' fit to the CIL learners."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import intsim
from intsim.app.config import ConfigError, resolve
from intsim.app.sweep import spec as sw
from intsim.cli import main
from intsim.models import build_model, model_spec, read_model_file
from intsim.models.modelfile import ModelFileError, with_products

RES_MLP = """
name = "res_mlp"
input = [24]
layers = [
  { kind = "linear", out = 16 },
  { kind = "relu" },
  { block = "res", repeat = 2 },
  { kind = "layernorm", name = "norm" },
]

[blocks.res]
residual = true
layers = [{ kind = "linear", out = 16 }, { kind = "gelu" }, { kind = "dropout", p = 0.1 },
          { kind = "linear", out = 16 }]
"""

TOKENS = """
input = [4, 8]
quantize_products = ["qk"]
layers = [
  { kind = "patches1d", size = 2 },
  { kind = "linear", name = "embed", out = 8 },
  { kind = "position" },
  { kind = "residual", name = "attn", layers = [{ kind = "layernorm" }, { kind = "attention", heads = 2 }] },
  { kind = "token_mean" },
]
"""


def write(tmp_path, text, name="model.toml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_a_residual_file_builds_the_named_layers_and_grows_its_classifier(tmp_path):
    mf = read_model_file(write(tmp_path, RES_MLP))
    assert (mf.name, mf.input, mf.feature_dim) == ("res_mlp", (24,), 16)
    m = build_model(mf, intsim.HDQT(), np.random.default_rng(0))
    m.add_classes(3, np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((2, 24)).astype(np.float32)
    y = m.forward(x)
    assert y.shape == (2, 3)
    assert m.backward(np.full_like(y, 0.1)) is None        # the first layer reads the data
    assert set(m.audit()) == {"backbone.linear", "backbone.res0.linear0",
                              "backbone.res0.linear1", "backbone.res1.linear0",
                              "backbone.res1.linear1", "classifier"}
    assert "backward_input" not in m.audit()["backbone.linear"]
    assert all(p.grad is not None for p in m.parameters())
    assert "backbone.norm.weight" in m.state_dict() and int(m.state_dict()["num_classes"]) == 3


def test_attention_follows_the_files_quantize_products(tmp_path):
    mf = read_model_file(write(tmp_path, TOKENS))
    m = build_model(mf, intsim.HDQT(), np.random.default_rng(0))
    m.add_classes(2, np.random.default_rng(1))
    y = m.forward(np.random.default_rng(2).standard_normal((2, 4, 8)).astype(np.float32))
    m.backward(np.full_like(y, 0.1))
    names = set(m.audit())
    assert "backbone.attn.attention.qk" in names and "backbone.attn.attention.av" not in names
    assert "backward_input" not in m.audit()["backbone.embed"]


def test_a_file_that_starts_with_an_embedding_reads_integer_ids(tmp_path):
    path = write(tmp_path, 'input = [5]\nlayers = [{ kind = "embedding", num = 10, dim = 4 },\n'
                           '  { kind = "position" },\n'
                           '  { kind = "attention", heads = 2, causal = true },\n'
                           '  { kind = "token_mean" }]\n')
    m = build_model(read_model_file(path), intsim.HDQT(), np.random.default_rng(0))
    m.add_classes(2, np.random.default_rng(1))
    y = m.forward(np.array([[1, 2, 3, 4, 9], [0, 0, 5, 5, 7]], np.float32))
    assert m.backward(np.full_like(y, 0.1)) is None
    dw = m.backbone.embedding.weight.grad
    assert dw[[0, 9]].any() and not dw[8].any()                # id 8 does not occur


@pytest.mark.parametrize("text, msg", [
    ('input = [8]\nlayers = [{ kind = "linear", out = 4 }, { kind = "conv1d", out = 4 }]\n',
     "layer 1 (conv1d): unknown layer kind 'conv1d'"),
    ('input = [8]\nlayers = [{ kind = "linear", out = 4 }, { kind = "linear", in = 8, out = 2 }]\n',
     "layer 1 (linear): in = 8 does not match its input's 4"),
    ('input = [8]\nlayers = [{ kind = "linear" }]\n',
     "layer 0 (linear): missing setting 'out'"),
    ('input = [8]\nlayers = [{ kind = "linear", out = 4, width = 3 }]\n',
     "layer 0 (linear): unknown setting 'width'"),
    ('input = [3, 8, 8]\nlayers = [{ kind = "conv2d", out = 4, kernel = 3 },\n'
     '  { kind = "layernorm", dim = 3 }, { kind = "flatten" }]\n',
     "layer 1 (layernorm): dim = 3 does not match its input's 6"),
    ('input = [4, 8]\nlayers = [{ kind = "attention", heads = 2, quantize_products = ["qv"] },\n'
     '  { kind = "token_mean" }]\n',
     "layer 0 (attention): quantize_products takes a list of ['qk', 'av']"),
    ('input = [4, 8]\nquantize_products = ["qk", "kv"]\nlayers = [{ kind = "token_mean" }]\n',
     "model: quantize_products takes a list of ['qk', 'av']"),
    ('input = [4, 8]\nlayers = [{ kind = "attention", heads = 3 }, { kind = "token_mean" }]\n',
     "layer 0 (attention): width 8 is not divisible into 3 heads"),
    ('input = [8]\nlayers = [{ kind = "residual", layers = [{ kind = "linear", out = 4 }] }]\n',
     "layer 0 (residual): a residual block must keep its input's shape [8]"),
    ('input = [8]\nlayers = [{ block = "b" }]\n[blocks.b]\nlayers = [{ kind = "relu" },\n'
     '  { kind = "linear", out = 0 }]\n',
     "layer 0.1 (linear): out must be a positive integer"),
    ('input = [8]\nlayers = [{ block = "nope" }]\n', "layer 0 (block nope): no [blocks.nope]"),
    ('input = [8]\nlayers = [{ block = "b" }]\n[blocks.b]\nlayers = [{ block = "b" }]\n',
     "layer 0.0 (block b): block b contains itself"),
    ('input = [4, 8]\nlayers = [{ kind = "relu" }]\n',
     "layer 0 (relu): the last layer gives [4, 8] per sample"),
    ('input = [8]\nlayer = [{ kind = "relu" }]\n', "model: unknown key 'layer'"),
    ('input = "8"\nlayers = [{ kind = "relu" }]\n', "model: input must be one sample's shape"),
    ('input = [8]\nlayers = [{ kind = "relu" }, { kind = "embedding", num = 4, dim = 2 }]\n',
     "layer 1 (embedding): an embedding reads the integer ids: it must be the first layer"),
    ('input = [8]\nlayers = [{ kind = "relu" ]\n', "cannot read it"),
])
def test_bad_model_files_are_one_line_errors_naming_the_layer(tmp_path, text, msg):
    path = write(tmp_path, text)
    with pytest.raises(ModelFileError) as e:
        read_model_file(path)
    assert str(e.value).startswith(f"model file {path}: ") and msg in str(e.value)
    assert "\n" not in str(e.value)


def test_the_command_line_refuses_a_bad_model_file_with_exit_code_2(tmp_path):
    path = write(tmp_path, 'input = [24]\nlayers = [{ kind = "linear", out = 4 },\n'
                           '  { kind = "linear", in = 5, out = 2 }]\n')
    r = CliRunner().invoke(main, ["train", "--dataset", "synthetic", "--model", path,
                                  "--out", str(tmp_path / "run")])
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        f"intsim: error: model file {path}: layer 1 (linear): in = 5 does not match its "
        f"input's 4 (input [4])"]
    assert not (tmp_path / "run").exists()
    r = CliRunner().invoke(main, ["train", "--model", str(tmp_path / "missing.toml"), "--dry-run"])
    assert r.exit_code == 2 and "does not exist" in r.stderr


def test_a_model_file_of_the_wrong_input_size_is_refused(tmp_path):
    path = write(tmp_path, RES_MLP.replace("input = [24]", "input = [25]"))
    r = CliRunner().invoke(main, ["train", "--dataset", "synthetic", "--model", path,
                                  "--epochs", "1", "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and "takes input [25], the data has [24]" in r.stderr


@pytest.mark.parametrize("method", ["icarl", "der"])
def test_intsim_train_runs_a_model_file(tmp_path, method):
    path = write(tmp_path, RES_MLP)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--dataset", "synthetic", "--model", path,
                                  "--method", method, "--epochs", "1", "--min-steps", "0",
                                  "--batch-size", "32", "--memory", "24", "--threads", "1",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output + r.stderr
    assert f'model = "{path}"' in (out / "config.toml").read_text()
    assert resolve(str(out / "config.toml"), {}).model == path


def test_a_sweep_axis_takes_model_files_relative_to_the_spec(tmp_path):
    write(tmp_path, RES_MLP, "a.toml")
    write(tmp_path, RES_MLP.replace("out = 16", "out = 8"), "b.toml")
    spec = tmp_path / "spec.toml"
    spec.write_text('[base]\ndataset = "synthetic"\nepochs = 1\n[grid]\n'
                    'model = ["a.toml", "b.toml"]\n')
    runs = sw.load_spec(str(spec)).runs
    assert [r.config.model for r in runs] == [str(tmp_path / "a.toml"), str(tmp_path / "b.toml")]
    assert len({r.key for r in runs}) == 2


def test_model_values_are_checked_once_in_the_config(tmp_path):
    assert resolve(None, {"model": "VIT_TINY", "dataset": "cifar10",
                          "data": str(tmp_path)}).model == "vit_tiny"
    with pytest.raises(ConfigError, match="unknown model 'vgg'"):
        resolve(None, {"model": "vgg"})
    with pytest.raises(ConfigError, match="needs image data"):
        resolve(None, {"model": "vit_tiny"})
    assert model_spec("har_transformer").needs_images is False


def test_a_model_file_run_resumed_mid_task_equals_the_uninterrupted_run(tmp_path):
    """Attention with its products quantized, dropout's Generator and the reshape of the
    flat synthetic features into (tokens, width): a resumed run gives the same bits."""
    from resumecheck import cli_full_and_resumed, cli_train, stop_in_task
    path = write(tmp_path, 'input = [4, 6]\nquantize_products = ["qk", "av"]\nlayers = [\n'
                           '  { kind = "linear", out = 8 }, { kind = "position" },\n'
                           '  { block = "enc" }, { kind = "token_mean" }]\n'
                           '[blocks.enc]\nresidual = true\nlayers = [{ kind = "layernorm" },\n'
                           '  { kind = "attention", heads = 2 }, { kind = "dropout", p = 0.2 }]\n')
    args = ["--dataset", "synthetic", "--model", path, "--epochs", "2", "--min-steps", "0",
            "--batch-size", "32", "--memory", "24", "--threads", "1"]
    full, resumed = cli_full_and_resumed(tmp_path, cli_train, args, stop_in_task(1))
    assert [t["cnn"] for t in resumed["tasks"]] == [t["cnn"] for t in full["tasks"]]
    assert [t["audit"] for t in resumed["tasks"]] == [t["audit"] for t in full["tasks"]]
    assert "backbone.enc.attention.qk" in full["tasks"][-1]["audit"]


# ---------------------------------------------------------------- the attn_products setting
# which attention products of a model-file network run under the datapath: the file's
# default overridden per run, refused for networks without attention, and the same bits
# when it names what the file names

#: TOKENS over the 24 synthetic features (4 tokens of 6)
TOKENS_24 = TOKENS.replace("input = [4, 8]", "input = [4, 6]")



def _products(mf):
    m = build_model(mf, intsim.HDQT(), np.random.default_rng(0))
    m.add_classes(2, np.random.default_rng(1))
    y = m.forward(np.random.default_rng(2).standard_normal((2, 4, 6)).astype(np.float32))
    m.backward(np.full_like(y, 0.1))
    return {n.rsplit(".", 1)[1] for n in m.audit()
            if n.startswith("backbone.attn.attention.")} - {"qkv", "proj"}


@pytest.mark.parametrize("setting, audited", [
    ("file", {"qk"}), ("none", set()), ("qk", {"qk"}), ("av", {"av"}), ("qk,av", {"qk", "av"})])
def test_the_setting_replaces_the_files_products(tmp_path, setting, audited):
    p = tmp_path / "m.toml"
    p.write_text(TOKENS_24)
    assert _products(with_products(read_model_file(str(p)), setting)) == audited


def _train(tmp_path, name, *extra):
    p = tmp_path / "m.toml"
    p.write_text(TOKENS_24)
    out = tmp_path / name
    r = CliRunner().invoke(main, ["train", "--dataset", "synthetic", "--model", str(p),
                                  "--method", "finetune", "--epochs", "1", "--min-steps", "0",
                                  "--batch-size", "32", "--threads", "1", "--quiet",
                                  "--out", str(out), *extra])
    assert r.exit_code == 0, r.output + r.stderr
    return json.loads((out / "results.json").read_text())


def test_naming_the_files_products_gives_the_files_bits_and_none_removes_them(tmp_path):
    base = _train(tmp_path, "file")
    same = _train(tmp_path, "qk", "--attn-products", "qk")
    none = _train(tmp_path, "none", "--attn-products", "none")
    assert same["config"]["attn_products"] == "qk"
    assert same["summary"] == base["summary"] and same["audit_total"] == base["audit_total"]
    assert any(k.endswith(".qk") for k in base["audit_total"])
    assert not any(k.endswith((".qk", ".av")) for k in none["audit_total"])


def test_a_network_without_attention_refuses_the_setting_in_one_line(tmp_path):
    r = CliRunner().invoke(main, ["train", "--attn-products", "none", "--dry-run",
                                  "--out", str(tmp_path / "run")])
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        "intsim: error: attn_products does not apply to model fcnet (it takes: hidden)"]
    r = CliRunner().invoke(main, ["train", "--attn-products", "kq", "--dry-run"])
    assert r.exit_code == 2 and "kq" in r.stderr and len(r.stderr.strip().splitlines()) == 1
