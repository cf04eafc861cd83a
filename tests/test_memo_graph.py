"""MEMO on networks from model files: where the file splits (its ``memo_split`` or the
default), the one-line refusals, the split keeping the network's function, every
parameter of the new specialized part trained (also when it starts with a
LayerNorm), and a resumed ``intsim train --method memo --model FILE`` run."""
import numpy as np
import pytest
from click.testing import CliRunner

import intsim
from intsim.app.config import ConfigError, resolve
from intsim.cli import main
from intsim.models import build_model, model_spec, read_model_file
from intsim.models.growing import first_layer, set_input_grad
from intsim.models.memo import adopt_memo
from intsim.models.modelfile import ModelFileError
from intsim.nn import LayerNorm
from intsim.nn.module import Sequential
from resumecheck import cli_full_and_resumed, cli_train, stop_in_task

#: tokens over the 24 synthetic features: two pre-norm encoder blocks, a final norm
ENCODER = """
input = [4, 6]
layers = [
  { kind = "linear", name = "embed", out = 8 },
  { kind = "position" },
  { block = "enc", repeat = 2 },
  { kind = "layernorm", name = "norm" },
  { kind = "token_mean" },
]

[blocks.enc]
residual = true
layers = [{ kind = "layernorm" }, { kind = "attention", heads = 2, quantize_products = ["qk", "av"] }]
"""


def write(tmp_path, text, name="model.toml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _names(mf):
    return [c.name for c in mf.plan.children]


def test_the_default_split_is_the_last_block_with_parameters(tmp_path):
    mf = read_model_file(write(tmp_path, ENCODER))
    assert _names(mf)[mf.memo_start] == "enc1" and mf.memo_problem is None
    for name, first in (("har_transformer", "encoder2"), ("vit_tiny", "encoder3")):
        from intsim.models.reference import reference_file
        ref = read_model_file(reference_file(name))
        assert _names(ref)[ref.memo_start] == first
        assert "memo" not in model_spec(name).refuses
    flat = read_model_file(write(tmp_path, 'input = [24]\nlayers = [{ kind = "linear", out = 8 },'
                                           ' { kind = "relu" }, { kind = "linear", out = 4 }]\n',
                                 "flat.toml"))
    assert flat.memo_start == 2            # no blocks: the last layer with parameters


def test_memo_split_names_where_the_specialized_part_starts(tmp_path):
    mf = read_model_file(write(tmp_path, ENCODER.replace("]\n", ']\nmemo_split = "enc0"\n', 1)))
    assert _names(mf)[mf.memo_start] == "enc0"
    with pytest.raises(ModelFileError, match=r"memo_split must name a top-level layer or block "
                                             r"\(embed, position, enc0, enc1, norm, token_mean\)"
                                             r", got 'enc'"):
        read_model_file(write(tmp_path, ENCODER.replace("]\n", ']\nmemo_split = "enc"\n', 1)))


def test_a_split_without_parameters_on_one_side_refuses_only_memo(tmp_path):
    path = write(tmp_path, 'input = [24]\nmemo_split = "relu"\nlayers = [\n'
                           '  { kind = "linear", out = 8 }, { kind = "relu" }, '
                           '{ kind = "token_mean" }]\n'.replace('{ kind = "token_mean" }',
                                                                '{ kind = "flatten" }'))
    mf = read_model_file(path)
    assert mf.memo_start is None and "specialized part" in mf.memo_problem
    with pytest.raises(ConfigError, match=r"cannot run method memo: MEMO's specialized part"):
        resolve(None, {"dataset": "synthetic", "model": path, "method": "memo"})
    assert resolve(None, {"dataset": "synthetic", "model": path, "method": "icarl"}).model == path
    r = CliRunner().invoke(main, ["train", "--dataset", "synthetic", "--model", path,
                                  "--method", "memo", "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "run").exists()
    first = write(tmp_path, 'input = [24]\nlayers = [{ kind = "linear", out = 8 }]\n', "one.toml")
    assert "shared part" in read_model_file(first).memo_problem


def test_the_split_keeps_the_function_and_new_parts_train_whole(tmp_path):
    """adopt_memo reuses the network's own layers (same outputs); a later specialized
    part (starting with a LayerNorm) gets a gradient in every parameter once the
    shared part is frozen, and the frozen part gets none."""
    mf = read_model_file(write(tmp_path, ENCODER))
    m = build_model(mf, intsim.HDQT(), np.random.default_rng(0))
    m.add_classes(3, np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((5, 4, 6)).astype(np.float32)
    m.eval()
    before = m.forward(x)
    m = adopt_memo(m, np.random.default_rng(3))
    m.eval()
    assert np.array_equal(m.forward(x), before)
    assert sorted(m.generalized._modules) == ["embed", "enc0", "position"]
    assert list(m.specialized.backbone(0)._modules) == ["enc1", "norm", "token_mean"]
    m.freeze_generalized()
    m.add_backbone(np.random.default_rng(4), copy_previous=True)
    m.freeze_old()
    s1 = m.specialized.backbone(1)
    assert [p.data.shape for p in s1.parameters()] == \
        [p.data.shape for p in m.specialized.backbone(0).parameters()]
    m.train()
    m.zero_grad()
    logits = m.forward(x)
    m.backward(np.ones_like(logits) / logits.size)
    assert all(p.grad is not None for p in s1.parameters())
    assert all(p.grad is None for p in m.generalized.parameters())
    names = set(m.audit())
    assert {"generalized.embed", "specialized.s1.enc1.attention.qk",
            "specialized.s1.enc1.attention.av"} <= names


def test_a_first_layer_after_a_layernorm_keeps_its_input_gradient():
    a = intsim.FP()
    rng = np.random.default_rng(0)
    lin_first = Sequential(intsim.nn.Linear(4, 4, False, a, rng), LayerNorm(4))
    norm_first = Sequential(LayerNorm(4), intsim.nn.Linear(4, 4, False, a, rng))
    set_input_grad(lin_first, False)
    set_input_grad(norm_first, False)
    assert first_layer(lin_first).need_input_grad is False
    assert first_layer(norm_first) is None
    assert norm_first._modules["1"].need_input_grad is True


def test_intsim_train_memo_on_a_model_file_resumed_equals_uninterrupted(tmp_path):
    path = write(tmp_path, ENCODER)
    args = ["--dataset", "synthetic", "--model", path, "--method", "memo", "--epochs", "2",
            "--min-steps", "0", "--batch-size", "32", "--memory", "24", "--threads", "1"]
    full, resumed = cli_full_and_resumed(tmp_path, cli_train, args, stop_in_task(1))
    def tasks(res):
        return [{k: v for k, v in t.items() if k != "seconds"} for t in res["tasks"]]
    assert tasks(resumed) == tasks(full)        # accuracies, audits, the grown blocks
    last = full["tasks"][-1]
    assert last["memo_blocks"] == len(full["tasks"])
    assert f"specialized.s{len(full['tasks']) - 1}.enc1.attention.qk" in last["audit"]
