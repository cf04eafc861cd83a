"""--features raw for DSADS and PAMAP2: windows of the official downloads' accelerometer
and gyroscope signals (DSADS (30, 125) segments, PAMAP2 (18, window) windows of the
feature reader), scaled per channel, the dataset's transformer picked by --model auto,
and the refusals (datasets without raw windows, the authors' feature files)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import intsim
from intsim.app.build import cil_config, data_options
from intsim.app.config import resolve
from intsim.cil import CILConfig
from intsim.cli import main
from intsim.data import dataset_spec, load_dataset
from intsim.data.common import minmax_scale_channels
from intsim.data.dsads import RAW_CHANNELS as DSADS_RAW, read_dsads, read_dsads_raw_windows
from intsim.data.pamap2 import RAW_CHANNELS as PAMAP2_RAW, read_pamap2, read_pamap2_raw_windows
from intsim.models import MODELS, read_model_file
from intsim.models.reference import reference_file
from test_data_loaders import write_dsads, write_pamap2

UNITS = ("T", "RA", "LA", "RL", "LL")
#: the first column of each IMU's block of 17 in a Protocol .dat file, and the offsets
#: of acc16 and gyro inside it (temperature at 0, acc16 1-3, acc6 4-6, gyro 7-9)
IMU_BASE = {"hand": 3, "chest": 20, "ankle": 37}
IMU_OFFSET = {"acc16": 1, "gyro": 7}
#: PAMAP2 runs long enough for the default 512-sample windows: 4 kept classes, one
#: window each (520 rows), and class 24 (dropped by the removals)
LONG_RUNS = [(0, 10), (1, 520), (2, 520), (0, 5), (3, 520), (4, 520), (24, 515)]
FAST = ["--arith", "fp", "--epochs", "1", "--min-steps", "0", "--batch-size", "32",
        "--memory", "12", "--threads", "1"]


@pytest.fixture(scope="module")
def dsads_dir(tmp_path_factory):
    return write_dsads(tmp_path_factory.mktemp("dsads"), acts=(1, 2, 3, 4))


@pytest.fixture(scope="module")
def pamap2_dir(tmp_path_factory):
    return write_pamap2(tmp_path_factory.mktemp("pamap2"))


@pytest.fixture(scope="module")
def pamap2_long(tmp_path_factory):
    return write_pamap2(tmp_path_factory.mktemp("pamap2_long"), subjects=(1, 2, 5, 6, 7),
                        runs=LONG_RUNS)


def _dsads_column(name):
    """The column of a DSADS segment file that channel ``name`` (UNIT_SENSOR_AXIS) reads:
    unit k holds columns 9k .. 9k+8 as x, y, z of acc, gyro, mag."""
    unit, sensor, axis = name.split("_")
    return 9 * UNITS.index(unit) + 3 * ("acc", "gyro").index(sensor) + "xyz".index(axis)


def _pamap2_column(name):
    """The column of a Protocol .dat file that channel ``name`` (IMU_SENSOR_AXIS) reads."""
    imu, sensor, axis = name.split("_")
    return IMU_BASE[imu] + IMU_OFFSET[sensor] + "xyz".index(axis)


def test_dsads_windows_are_each_segments_acc_and_gyro_columns(dsads_dir):
    w = read_dsads_raw_windows(dsads_dir)
    assert w["X"].shape == (4 * 5 * 2, 30, 125) and w["X"].dtype == np.float32
    names = w["feature_names"]
    assert names == list(DSADS_RAW) and names[:7] == [
        "T_acc_x", "T_acc_y", "T_acc_z", "T_gyro_x", "T_gyro_y", "T_gyro_z", "RA_acc_x"]
    assert names[-1] == "LL_gyro_z" and not any("mag" in n for n in names)
    cols = [_dsads_column(n) for n in names]
    assert cols[:7] == [0, 1, 2, 3, 4, 5, 9] and cols[-1] == 9 * 4 + 5
    f = read_dsads(dsads_dir, features="stats9")      # the same samples in the same order
    for k in ("y", "users", "segment"):
        assert w[k].tolist() == f[k].tolist()
    row = 10 * 2 + 2 * 3 + 1                          # activity 3, subject 4, segment 2
    assert (w["y"][row], w["users"][row], w["segment"][row]) == (3, 4, 2)
    x = np.loadtxt(dsads_dir / "data/a03/p4/s02.txt", delimiter=",")
    np.testing.assert_array_equal(w["X"][row], x[:, cols].T.astype(np.float32))


def test_pamap2_windows_are_the_feature_readers_windows(pamap2_dir):
    for nan in ("interpolate", "drop"):
        w = read_pamap2_raw_windows(pamap2_dir, window=100, step=50, nan=nan)
        f = read_pamap2(pamap2_dir, window=100, step=50, nan=nan, features="stats9")
        assert w["X"].shape == (len(f["y"]), 18, 100) and w["X"].dtype == np.float32
        for k in ("y", "users", "start"):
            assert w[k].tolist() == f[k].tolist()
    names = w["feature_names"]
    assert names == list(PAMAP2_RAW) and names[:6] == [
        "hand_acc16_x", "hand_acc16_y", "hand_acc16_z", "hand_gyro_x", "hand_gyro_y",
        "hand_gyro_z"] and names[-1] == "ankle_gyro_z"
    cols = [_pamap2_column(n) for n in names]
    assert cols[:6] == [4, 5, 6, 10, 11, 12] and cols[-1] == 46
    w = read_pamap2_raw_windows(pamap2_dir, window=100, step=50)
    dat = np.loadtxt(pamap2_dir / "Protocol/subject101.dat")
    # subject 1's first window: rows 50..149 (activity 1 starts after 50 transient rows)
    assert w["users"][0] == 1 and w["y"][0] == 1 and w["start"][0] == 50
    sig = dat[50:150, cols].T
    gap = np.isnan(sig)                               # hand acc16 x is NaN in rows 100..102
    assert gap.sum() == 3 and gap[0, 50:53].all()
    np.testing.assert_array_equal(w["X"][0][~gap], sig[~gap].astype(np.float32))
    filled = np.interp([100, 101, 102], [99, 103], dat[[99, 103], 4])
    np.testing.assert_allclose(w["X"][0, 0, 50:53], filled, rtol=1e-6)
    second = dat[150:250, cols].T                     # step 50: the third window
    np.testing.assert_array_equal(w["X"][2], second.astype(np.float32))


def test_pamap2_default_windows_are_512_samples(pamap2_long):
    w = read_pamap2_raw_windows(pamap2_long)
    assert w["X"].shape == (5 * 5, 18, 512)
    assert w["y"][:5].tolist() == [1, 2, 3, 4, 24] and w["start"][:5].tolist() == [
        10, 530, 1055, 1575, 2095]
    assert w["y"].tolist() == read_pamap2(pamap2_long, features="stats9")["y"].tolist()


def test_minmax_scale_channels_maps_each_training_channel_to_the_range():
    rng = np.random.default_rng(0)
    Xtr = rng.standard_normal((5, 3, 7)) * np.array([1, 10, 100])[:, None]
    Xtr[:, 2] = 4.0                                   # a constant channel
    Xte = rng.standard_normal((2, 3, 7)) * 1000
    tr, te = minmax_scale_channels(Xtr, Xte)
    assert tr.shape == Xtr.shape and te.shape == Xte.shape and tr.dtype == np.float32
    np.testing.assert_allclose(tr[:, :2].min(axis=(0, 2)), -1, atol=1e-6)
    np.testing.assert_allclose(tr[:, :2].max(axis=(0, 2)), 1, atol=1e-6)
    assert (tr[:, 2] == 0).all()
    mn, mx = Xtr[:, 0].min(), Xtr[:, 0].max()         # the test windows take the train fit
    np.testing.assert_allclose(te[:, 0], -1 + 2 * (Xte[:, 0] - mn) / (mx - mn), rtol=1e-5)
    assert np.abs(te[:, 0]).max() > 1                 # not clipped


@pytest.mark.parametrize("name, opts, shape", [
    ("dsads", {}, (30, 125)), ("pamap2", {"window": 100, "step": 50}, (18, 100))])
def test_raw_windows_split_by_subject_and_scale_per_channel(name, opts, shape, dsads_dir,
                                                             pamap2_dir):
    path = dsads_dir if name == "dsads" else pamap2_dir
    ds = load_dataset(name, path, features="raw", split="sorted", **opts)
    assert ds.X_train.shape[1:] == shape and ds.X_test.shape[1:] == shape
    assert ds.info["layout"] == "raw-windows" and len(ds.feature_names) == shape[0]
    assert not set(ds.users_train.tolist()) & set(ds.users_test.tolist())
    np.testing.assert_allclose(ds.X_train.min(axis=(0, 2)), -1.0, atol=1e-6)
    np.testing.assert_allclose(ds.X_train.max(axis=(0, 2)), 1.0, atol=1e-6)
    raw = load_dataset(name, path, features="raw", split="sorted", scale="none", **opts)
    tr, te = minmax_scale_channels(raw.X_train, raw.X_test)
    np.testing.assert_array_equal(ds.X_train, tr)
    np.testing.assert_array_equal(ds.X_test, te)
    if name == "pamap2":                               # PAMAP2's removals apply
        assert 24 not in ds.y_train.tolist() + ds.y_test.tolist()
        assert 3 not in ds.users_train.tolist() + ds.users_test.tolist()
    with pytest.raises(ValueError, match="feature_opts do not apply to features=raw"):
        load_dataset(name, path, features="raw", feature_opts={"ddof": 0})


def test_auto_picks_the_datasets_transformer_whose_input_is_its_window(dsads_dir, pamap2_dir):
    for name, path, model, shape in (("dsads", dsads_dir, "har_transformer_dsads", (30, 125)),
                                     ("pamap2", pamap2_dir, "har_transformer_pamap2", (18, 512)),
                                     ("hapt", dsads_dir, "har_transformer", (6, 128))):
        assert dataset_spec(name).raw_window_model == model
        cfg = resolve(None, {"dataset": name, "features": "raw", "data": str(path),
                             "threads": 1})
        assert cil_config(cfg).model == model and data_options(cfg)["features"] == "raw"
        assert read_model_file(reference_file(model)).input == shape
    cfg = resolve(None, {"dataset": "dsads", "data": str(dsads_dir), "threads": 1})
    assert cil_config(cfg).model == "fcnet"
    cfg = resolve(None, {"dataset": "dsads", "data": str(dsads_dir), "features": "raw",
                         "model": "har_transformer", "threads": 1})
    assert cil_config(cfg).model == "har_transformer"      # an explicit model is kept


@pytest.mark.parametrize("name, shape, tokens", [("har_transformer_dsads", (30, 125), 25),
                                                 ("har_transformer_pamap2", (18, 512), 16)])
def test_the_dataset_transformer_files_parse_and_build(name, shape, tokens):
    mf = read_model_file(reference_file(name))
    assert mf.name == name and mf.input == shape and mf.quantize_products == ("qk", "av")
    patch, embed = mf.plan.children[:2]
    assert patch.kind == "patches1d" and patch.out_shape == (tokens, shape[0] * shape[1] // tokens)
    assert embed.out_shape == (tokens, 64) and mf.feature_dim == 64
    cc = CILConfig.for_dataset(name.rsplit("_", 1)[1], "icarl", model=name)
    model = MODELS[name].build(cc, intsim.FP(), shape, np.random.default_rng(0))
    model.add_classes(3, np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((2,) + shape).astype(np.float32)
    assert model.forward(x).shape == (2, 3)


def _train(args):
    return CliRunner().invoke(main, ["train", *args])


@pytest.mark.parametrize("name, fixture, model, shape", [
    ("dsads", "dsads_dir", "har_transformer_dsads", [30, 125]),
    ("pamap2", "pamap2_long", "har_transformer_pamap2", [18, 512])])
def test_intsim_train_runs_on_the_raw_windows(name, fixture, model, shape, request, tmp_path):
    out = tmp_path / "run"
    r = _train(["--dataset", name, "--data", str(request.getfixturevalue(fixture)),
                "--features", "raw", "--out", str(out), *FAST])
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["run"]["in_shape"] == shape
    assert res["run"]["num_tasks"] == 2 and sorted(res["run"]["class_order"]) == [1, 2, 3, 4]
    assert f'model = "{model}"' in (out / "config.toml").read_text()


def _one_line_error(r, words):
    assert r.exit_code == 2, r.output + r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("intsim: error:"), r.stderr
    assert words in r.stderr, r.stderr


def test_refusals_are_one_line_errors(tmp_path, dsads_dir):
    out = tmp_path / "run"
    r = _train(["--dataset", "synthetic", "--features", "raw", "--out", str(out), *FAST])
    _one_line_error(r, "features=raw is read from the raw downloads of hapt, dsads, pamap2 "
                       "only, not 'synthetic'")
    (tmp_path / "dsads.csv").write_text("0\n")
    (tmp_path / "qcil" / "PAMAP2").mkdir(parents=True)
    (tmp_path / "qcil" / "PAMAP2" / "pamap.mat").write_bytes(b"")
    (tmp_path / "pamap.csv").write_text("0\n")
    (tmp_path / "hapt_combined.csv").write_text("AID,USER\n")
    for name, data, official in (("dsads", tmp_path / "dsads.csv", "DSADS"),
                                 ("hapt", tmp_path / "hapt_combined.csv", "HAPT"),
                                 ("pamap2", tmp_path / "qcil", "PAMAP2"),
                                 ("pamap2", tmp_path / "pamap.csv", "PAMAP2")):
        r = _train(["--dataset", name, "--data", str(data), "--features", "raw",
                    "--out", str(out), *FAST])
        _one_line_error(r, f"the authors' feature file holds no raw signals; for "
                           f"features=raw point --data at the official {official} download")
    assert not out.exists()
    # a folder holding an authors' file and the official layout gives the raw windows
    (dsads_dir / "dsads.csv").write_text("0\n")
    try:
        ds = load_dataset("dsads", dsads_dir, features="raw")
        assert ds.X_train.shape[1:] == (30, 125)
    finally:
        (dsads_dir / "dsads.csv").unlink()
