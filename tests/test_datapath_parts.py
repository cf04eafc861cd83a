"""Datapath parts and configuration: the worked example of docs/architecture.md (a
part is one class), one-line errors, spec round trips, transforms, and datapaths
described in config files through `intsim train` and `intsim sweep`."""
import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from intsim import nn
from intsim.cli.main import main
from intsim.datapath import (DATAPATHS, PRESETS, FormatsDatapath, IntegerDatapath,
                             datapath_from_spec)
from intsim.datapath.parts import PARTS, BlockHadamard, IntAccumulator
from intsim.kernels import hadamard

from test_cli_train import FAST, train
from test_sweep import tiny_spec

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _doc_example() -> str:
    text = DOC.read_text()
    m = re.search(r"<!-- worked-example: round-to-odd[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert m, "the worked example is missing from docs/architecture.md"
    return m.group(1)


@pytest.fixture
def round_to_odd():
    ns = {}
    exec(compile(_doc_example(), str(DOC), "exec"), ns)
    yield ns["RoundToOdd"]
    PARTS["rounding"].pop("odd", None)


def test_worked_example_adds_a_rounding_with_one_class(round_to_odd):
    assert PARTS["rounding"]["odd"] is round_to_odd
    dp = datapath_from_spec({"kind": "formats", "weights": "int4", "activations": "int4",
                             "gradients": "int4", "weight_rounding": "odd",
                             "accumulator": "exact"})
    assert isinstance(dp.weight_rounding, round_to_odd)
    W = np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32)
    aud = nn.LayerAudit(pass_cls=dp.pass_audit)
    q, _ = dp.quantize(W, "weights", -1, dp.weight_rounding, None, aud, ("forward",))
    s = float(np.abs(W).max()) / 7            # int4: max|W| maps to 7
    k = np.round(q.astype(np.float64) / s, 6)
    exact = np.isclose(W / s, np.round(W / s), atol=1e-6)
    assert np.all((k % 2 == 1) | (k % 2 == -1) | exact)       # every inexact value is odd
    # and a layer trains with it
    lin = nn.Linear(10, 6, True, dp, np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((4, 10)).astype(np.float32)
    y = lin.forward(x)
    assert lin.backward(np.ones_like(y)).shape == x.shape
    # the integer datapath's fused quantizers say in one line that they do not take it
    with pytest.raises(ValueError, match="nearest or stochastic"):
        datapath_from_spec({"preset": "hdqt", "weight_rounding": "odd"})


def test_every_datapath_round_trips_through_its_spec():
    for name in PRESETS:
        dp = PRESETS[name].build()
        again = datapath_from_spec(json.loads(json.dumps(dp.to_spec())))
        assert again == dp, name
    for kind, cls in DATAPATHS.items():
        assert datapath_from_spec({"kind": kind}) == cls()


@pytest.mark.parametrize("spec, msg", [
    ({"kind": "nope"}, "kind must be one of"),
    ({"preset": "hdqt", "kind": "integer"}, "not both"),
    ({"preset": "nope"}, "unknown preset"),
    ({"kind": "integer", "accumulator": {"kind": "int", "bits": 40}}, "2..32"),
    ({"kind": "integer", "accumulator": {"kind": "int", "mode": "round"}}, "clamp, saturate"),
    ({"kind": "integer", "accumulator": {"kind": "float"}}, "int accumulator"),
    ({"kind": "integer", "forward_format": "e4m3"}, "integer format"),
    ({"kind": "formats", "weights": "e9m9"}, "unknown number format"),
    ({"kind": "formats", "accumulator": {"kind": "float", "format": "int8"}}, "float format"),
    ({"kind": "formats", "accumulator": {"kind": "float", "order": "random"}}, "naive"),
    ({"kind": "formats", "transform": {"kind": "hadamard", "size": 6}}, "power of two"),
    ({"kind": "formats", "accumulator": "int"}, "integer formats"),
    ({"kind": "formats", "colour": 3}, "unknown setting 'colour'"),
    ({"kind": "formats", "pow2_scale": "yes"}, "true or false"),
    ({"preset": "hdqt", "accumulator.colour": 1}, "unknown setting 'colour'"),
])
def test_bad_specs_fail_in_one_line_naming_the_setting(spec, msg):
    with pytest.raises(ValueError, match=re.escape(msg)) as e:
        datapath_from_spec(spec)
    assert "\n" not in str(e.value)


def test_python_construction_validates_like_a_config_file():
    with pytest.raises(ValueError, match="clamp"):
        IntAccumulator(mode="round")
    with pytest.raises(ValueError, match="rounding part"):
        IntegerDatapath(weight_rounding="nearest")
    with pytest.raises(ValueError):
        FormatsDatapath(scaling="row")


def test_dotted_settings_change_one_field_of_a_part():
    dp = datapath_from_spec({"preset": "hdqt", "accumulator.bits": 10, "accumulator.mode": "wrap",
                             "backward_tile": 16})
    assert dp.accumulator == IntAccumulator(bits=10, tile=32, mode="wrap")
    assert dp.backward_tile == 16 and dp.acc_limit == 10
    assert dp.forward_format == "int4"


def test_block_hadamard_size_caps_the_block():
    x = np.random.default_rng(0).standard_normal((5, 24))
    t = BlockHadamard(size=4)
    assert t.block(24) == 4 and t.block(6) == 2 and BlockHadamard().block(24) == 8
    y = t.apply(x, 1)
    h4 = hadamard.sylvester(4).astype(np.float64)
    want = np.concatenate([x[:, i:i + 4] @ h4.T for i in range(0, 24, 4)], axis=1)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(BlockHadamard(size=8).apply(x, 1), hadamard.fwht(x, axis=1))


# ------------------------------------------------------------ through the CLI
def test_train_with_a_datapath_file_records_it_and_resumes(tmp_path):
    f = tmp_path / "dp.toml"
    f.write_text('[datapath]\nkind = "formats"\nweights = "int4"\nactivations = "int4"\n'
                 'gradients = "e5m2"\ngradient_rounding = "stochastic"\n'
                 'accumulator = { kind = "float", format = "fp16", tile = 8, order = "kahan" }\n')
    out = tmp_path / "run"
    r = train(["--out", str(out), "--datapath", str(f), *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["datapath"]["kind"] == "formats"
    assert cfg["datapath"]["accumulator"] == {"kind": "float", "format": "fp16", "tile": 8,
                                              "order": "kahan", "outer_format": "none"}
    res = json.loads((out / "results.json").read_text())
    assert res["run"]["datapath"]["accumulator"]["order"] == "kahan"
    row = res["tasks"][-1]["audit"]["classifier"]["forward"]
    assert row["acc_adds"] > 0 and 0 <= row["swamped"] <= row["acc_adds"]
    assert row["absorbed"] <= row["swamped"]
    # the recorded config.toml reproduces the run
    again = tmp_path / "again"
    r = train(["--out", str(again), "--config", str(out / "config.toml")])
    assert r.exit_code == 0, r.output + r.stderr
    res2 = json.loads((again / "results.json").read_text())
    assert [t["cnn"] for t in res2["tasks"]] == [t["cnn"] for t in res["tasks"]]
    assert res2["tasks"][-1]["audit"] == res["tasks"][-1]["audit"]


def test_train_with_a_preset_and_datapath_options(tmp_path):
    out = tmp_path / "mx"
    r = train(["--out", str(out), "--datapath", "mxfp4", "--datapath-opt",
               "gradients=mxfp8_e5m2", *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["run"]["datapath"]["weights"] == "mxfp4_e2m1"
    assert res["run"]["datapath"]["gradients"] == "mxfp8_e5m2"
    assert res["run"]["arith"].startswith("formats")
    out2 = tmp_path / "h10"
    r = train(["--out", str(out2), "--datapath-opt", "accumulator.bits=10", *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((out2 / "results.json").read_text())
    assert res["run"]["datapath"]["accumulator"]["bits"] == 10 and res["run"]["acc_limit"] == 10


@pytest.mark.parametrize("args, msg", [
    (["--datapath", "nope"], "neither a preset"),
    (["--datapath", "mxfp4", "--bits", "3"], "--bits does not apply"),
    (["--datapath-opt", "accumulator.order=kahan"], "unknown setting 'order'"),
    (["--datapath-opt", "accumulator"], "expects KEY=VALUE"),
])
def test_bad_datapath_input_is_one_line_and_exit_2(tmp_path, args, msg):
    out = tmp_path / "bad"
    r = train(["--out", str(out), *args, *FAST])
    assert r.exit_code == 2, r.output
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_sweep_over_a_datapath_axis(tmp_path):
    spec = tiny_spec(tmp_path, grid='"datapath.accumulator.tile" = [8, 16]\nseed = [1]\n',
                     extra="")
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["sweep", spec, "--out", str(out)])
    assert r.exit_code == 0, r.output + r.stderr
    tiles = sorted(json.loads((d / "results.json").read_text())["run"]["datapath"]
                   ["accumulator"]["tile"] for d in out.iterdir() if d.is_dir())
    assert tiles == [8, 16]
