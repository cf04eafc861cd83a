"""Run configuration: defaults <- TOML <- options, validation, the TOML writer."""
import tomllib

import pytest

from intsim.app.config import (NOT_GIVEN, ConfigError, RunConfig, acc_bits_needed,
                               max_tile_sum, parse_arith_option, resolve, to_toml)
from intsim.kernels import threads


def test_defaults_are_the_paper_main_job():
    c = resolve()
    assert (c.dataset, c.method, c.arith, c.bits, c.acc_bits, c.tile) == \
        ("hapt", "icarl", "hdqt", 4, 8, 32)
    assert c.schedule == "short" and c.data is None


def test_file_then_options_override(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('method = "lwf"\nbits = 6\nacc-bits = "none"\nepochs = 3\n'
                 '[arith_options]\nbwd_tile = 16\n')
    c = resolve(f, {"bits": 5, "epochs": NOT_GIVEN, "arith_options": [("ste_raw_clip", False)]})
    assert c.method == "lwf" and c.bits == 5 and c.acc_bits is None and c.epochs == 3
    assert dict(c.arith_options) == {"bwd_tile": 16, "ste_raw_clip": False}


def test_toml_round_trip(tmp_path):
    c = resolve(None, {"hidden": "64,32", "milestones": "none", "lr": 0.05, "data": str(tmp_path),
                       "arith_options": [("bwd_tile", 8)]})
    text = to_toml(c.to_dict(), header="x\ny")
    assert text.startswith("# x\n# y\n")
    f = tmp_path / "back.toml"
    f.write_text(text)
    assert resolve(f) == c
    assert c.milestones == () and c.hidden == (64, 32)


def test_toml_writer_escapes_and_types():
    d = {"s": 'a"b\\c\nd\x01', "f": 1e-7, "i": -3, "b": True, "n": None, "l": [1, 2.5, "x"],
         "t": {"k": 1, "weird key": "v"}}
    back = tomllib.loads(to_toml(d))
    assert back["s"] == d["s"] and back["f"] == 1e-7 and back["i"] == -3 and back["b"] is True
    assert back["n"] == "none" and back["l"] == [1, 2.5, "x"] and back["t"] == d["t"]


@pytest.mark.parametrize("over, words", [
    ({"dataset": "imagenet"}, "unknown dataset"),
    ({"method": "ewc"}, "unknown method"),
    ({"bits": 9}, "bits=9 out of range"),
    ({"bits": 1}, "bits=1 out of range"),
    ({"acc_bits": 3}, "minimum acc_bits=4"),
    ({"acc_bits": 40}, "acc_bits=40 out of range"),
    ({"tile": 0}, "tile=0"),
    ({"epochs": 0}, "epochs=0"),
    ({"lr": -1.0}, "lr=-1.0"),
    ({"fwd_clip": 1.5}, "fwd_clip"),
    ({"data": "/no/such/path"}, "does not exist"),
    ({"dataset": "cifar100"}, "needs --data"),
    ({"seed": -1}, "seed=-1"),
    ({"bits": "four"}, "bits must be an integer"),
])
def test_bad_values_name_the_setting(over, words):
    with pytest.raises(ConfigError) as e:
        resolve(None, over)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_acc_bits_bound_message_gives_numbers():
    with pytest.raises(ConfigError) as e:
        resolve(None, {"bits": 6, "acc_bits": 5})
    msg = str(e.value)
    assert "minimum acc_bits=6" in msg and f"acc_bits>={acc_bits_needed(6, 32)}" in msg
    # 4-bit operands: 15 * 7 per product, 32 products per tile
    assert max_tile_sum(4, 32) == 32 * 105 and acc_bits_needed(4, 32) == 13
    assert resolve(None, {"acc_bits": 4}).acc_bits == 4    # the paper's sweep starts at 4


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        resolve(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("bits = = 4\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve(bad)
    unk = tmp_path / "unk.toml"
    unk.write_text("colour = 'red'\n")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        resolve(unk)


def test_parse_arith_option():
    assert parse_arith_option("bwd-tile=32") == ("bwd_tile", 32)
    assert parse_arith_option("ste_raw_clip=false") == ("ste_raw_clip", False)
    assert parse_arith_option("conv_init=he_normal") == ("conv_init", "he_normal")
    with pytest.raises(ConfigError):
        parse_arith_option("novalue")


def test_config_is_frozen():
    c = RunConfig()
    with pytest.raises(Exception):
        c.bits = 3


def test_schedules_map_to_cil_configs():
    from intsim.app.build import cil_config, complete_config
    short = cil_config(resolve())
    assert (short.epochs, short.lr, short.effective_milestones, short.memory) == (15, 0.01, (), 200)
    paper = cil_config(resolve(None, {"schedule": "paper"}))
    assert (paper.epochs, paper.lr, paper.effective_milestones) == (100, 0.01, ())   # quirk 4
    cifar = cil_config(RunConfig(dataset="cifar100", schedule="paper"))
    assert (cifar.model, cifar.epochs, cifar.lr, cifar.effective_milestones, cifar.memory) == \
        ("resnet32", 170, 0.05, (60, 100, 140), 2000)
    mine = cil_config(resolve(None, {"epochs": 3, "milestones": "2", "memory": 50, "lr": 0.1}))
    assert (mine.epochs, mine.lr, mine.effective_milestones, mine.memory) == (3, 0.1, (2,), 50)
    full = complete_config(resolve(), short)
    assert (full.epochs, full.lr, full.milestones, full.batch_size, full.model) == \
        (15, 0.01, (), 128, "fcnet")


def test_none_in_overrides_is_a_value_and_not_given_is_skipped(tmp_path):
    import intsim
    assert intsim.resolve(None, {"acc_bits": None}).acc_bits is None  # no limit
    assert resolve(None, {"acc_bits": "none"}).acc_bits is None
    assert resolve(None, {"acc_bits": NOT_GIVEN}).acc_bits == 8
    f = tmp_path / "c.toml"
    f.write_text("epochs = 3\n")
    assert resolve(f, {"epochs": None}).epochs is None                # the schedule's
    assert resolve(f, {"epochs": NOT_GIVEN}).epochs == 3
    with pytest.raises(ConfigError, match="bits cannot be none"):
        resolve(None, {"bits": None})


@pytest.mark.parametrize("text, words", [
    ('bits = "4"\n', "bits must be an integer, got the string '4'"),
    ('fwd_clip = "0.5"\n', "fwd_clip must be a number, got the string '0.5'"),
    ('hidden = "16,16"\n', "hidden must be a list of integers, got the string '16,16'"),
    ('seed = "7"\n', "(TOML: seed = 4, unquoted)"),
])
def test_a_file_gives_numbers_as_numbers(tmp_path, text, words):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        resolve(f)
    assert words in str(e.value) and str(f) in str(e.value)
    # "none" stays the spelling of None; the command line's text is parsed
    f.write_text('acc_bits = "none"\nmilestones = "none"\nhidden = [16, 16]\n')
    c = resolve(f, {"bits": "5", "seed": "7"})
    assert (c.acc_bits, c.milestones, c.hidden, c.bits, c.seed) == (None, (), (16, 16), 5, 7)


def test_a_file_setting_the_preset_does_not_take_is_refused(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('arith = "fp"\nbits = 3\n')
    with pytest.raises(ConfigError) as e:
        resolve(f)
    msg = str(e.value)
    assert msg == (f"bits (in {f}) does not apply to --arith fp (it takes: none of the "
                   f"arithmetic options; remove it from the file)")
    f.write_text('datapath = "mxfp4"\ntile = 16\n')
    with pytest.raises(ConfigError, match=r"tile \(in .*\) does not apply with a \[datapath\]"):
        resolve(f)
    f.write_text('arith = "fp"\n# bits = 3    # unused: --arith fp does not take it\n')
    assert resolve(f).arith == "fp"


@pytest.mark.parametrize("over", [
    {"acc_mode": "wrap", "acc_bits": "none"},
    {"acc_mode": "saturate", "acc_bits": None},
    {"arith": "luq", "acc_mode": "wrap", "acc_bits": "none"},
])
def test_wrap_and_saturate_need_an_accumulator_width(over):
    with pytest.raises(ConfigError) as e:
        resolve(None, over)
    assert f"acc_mode={over['acc_mode']} needs a width" in str(e.value)


def test_clamp_and_wide_take_no_limit():
    for mode in ("clamp", "wide"):
        assert resolve(None, {"acc_mode": mode, "acc_bits": None}).acc_bits is None


def test_a_generated_dataset_refuses_data(tmp_path):
    junk = tmp_path / "garbage.csv"
    junk.write_text("1,2\n")
    with pytest.raises(ConfigError) as e:
        resolve(None, {"dataset": "synthetic", "data": str(junk)})
    assert "dataset 'synthetic' reads no file" in str(e.value) and str(junk) in str(e.value)


def test_threads_at_most_the_cores(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    assert resolve(None, {"threads": 2}).threads == 2
    with pytest.raises(ConfigError) as e:
        resolve(None, {"threads": 1000})
    assert str(e.value) == ("threads=1000 is more than the 2 core(s) this process may use "
                            "(threads 1..2)")
    monkeypatch.setenv(threads.ENV_VAR, "3")
    with pytest.raises(ConfigError, match="threads=3 is more than the 2 core"):
        resolve(None, {})


def test_milestones_out_of_order_name_the_setting():
    with pytest.raises(ConfigError) as e:
        resolve(None, {"milestones": "5,3"})
    assert str(e.value) == "milestones=[5, 3] must be in increasing order (e.g. 3,5)"


def test_a_digit_string_format_name_from_the_command_line():
    from intsim.app.build import build_arith
    opt = parse_arith_option("act_format=11111110")        # read as a number
    dp = build_arith(resolve(None, {"arith": "fp134", "arith_options": [opt]}))
    assert dp.act_format == "11111110"
