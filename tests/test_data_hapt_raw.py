"""--features raw: HAPT's raw accelerometer and gyroscope signals as (6, 128) windows
(the 561-feature pipeline's windows, unfiltered), split by subject, scaled per channel."""
import numpy as np
import pytest

from intsim.app.build import cil_config, data_options
from intsim.app.config import ConfigError, resolve
from intsim.data import load_dataset
from intsim.data.hapt import RAW_CHANNELS, read_hapt, read_hapt_raw_windows
from test_data_hapt import EXPS, _win, write_raw


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    return write_raw(tmp_path_factory.mktemp("hapt_raw"))


def test_windows_are_the_feature_pipelines_windows_of_raw_samples(raw_dir):
    w = read_hapt_raw_windows(raw_dir)
    exp_y = [a for _, _, segs in EXPS for a, f, l in segs for _ in range(_win(f, l))]
    exp_u = [u for _, u, segs in EXPS for a, f, l in segs for _ in range(_win(f, l))]
    assert w["X"].shape == (len(exp_y), 6, 128) and w["X"].dtype == np.float32
    assert w["y"].tolist() == exp_y and w["users"].tolist() == exp_u
    assert w["feature_names"] == list(RAW_CHANNELS)
    feats = read_hapt(raw_dir)                       # the same windows, as 561 features
    assert feats["y"].tolist() == exp_y
    assert feats["experiments"].tolist() == w["experiments"].tolist()
    e, u, segs = EXPS[0]
    acc = np.loadtxt(raw_dir / "RawData" / f"acc_exp{e:02d}_user{u:02d}.txt")
    gyro = np.loadtxt(raw_dir / "RawData" / f"gyro_exp{e:02d}_user{u:02d}.txt")
    first = segs[0][1]
    second = first + 64                              # 50 % overlap
    np.testing.assert_allclose(w["X"][0], np.c_[acc, gyro][first:first + 128].T, rtol=1e-6)
    np.testing.assert_allclose(w["X"][1], np.c_[acc, gyro][second:second + 128].T, rtol=1e-6)


def test_raw_windows_split_by_subject_and_scale_per_channel(raw_dir):
    ds = load_dataset("hapt", str(raw_dir), features="raw", split="sorted")
    assert ds.X_train.shape[1:] == (6, 128) and ds.X_test.shape[1:] == (6, 128)
    assert not set(ds.users_train.tolist()) & set(ds.users_test.tolist())
    assert 8 not in ds.y_train.tolist()              # HAPT's default removals apply
    mn, mx = ds.X_train.min(axis=(0, 2)), ds.X_train.max(axis=(0, 2))
    np.testing.assert_allclose(mn, -1.0, atol=1e-6)
    np.testing.assert_allclose(mx, 1.0, atol=1e-6)
    assert ds.info["layout"] == "raw-windows"
    with pytest.raises(FileNotFoundError, match="raw download"):
        load_dataset("hapt", None, features="raw")


def test_features_raw_is_a_checked_setting_with_its_model(raw_dir):
    cfg = resolve(None, {"features": "raw", "data": str(raw_dir), "threads": 1})
    assert cil_config(cfg).model == "har_transformer" and data_options(cfg)["features"] == "raw"
    assert "features" not in data_options(resolve(None, {"threads": 1}))
    with pytest.raises(ConfigError, match="give --data its official download"):
        resolve(None, {"features": "raw", "threads": 1})
    with pytest.raises(ConfigError, match="features=raw"):
        resolve(None, {"features": "raw", "dataset": "synthetic", "threads": 1})
    with pytest.raises(ConfigError, match="unknown features"):
        resolve(None, {"features": "spectra", "threads": 1})
