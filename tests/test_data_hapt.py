"""HAPT readers (raw folder/zip, official 561 files), embedded file, build-hapt CLI."""
import os
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from intsim.cli import main
from intsim.data import DataFileError, load_dataset
from intsim.data.embedded import read_hapt_npz, write_hapt_npz
from intsim.data.hapt import HAPT_ACTIVITIES, read_hapt

# (exp, user, [(activity, first, last), ...]); rows per experiment = 700
EXPS = [(1, 1, [(5, 10, 300), (7, 301, 440), (1, 441, 690)]),
        (2, 2, [(4, 0, 255), (8, 256, 390), (2, 400, 699)]),
        (3, 3, [(6, 20, 400), (12, 401, 500)]),
        (4, 4, [(3, 0, 600)])]
N_ROWS = 700


def _win(first, last):
    return max((last - first + 1 - 128) // 64 + 1, 0)


def write_raw(root, exps=EXPS, n_rows=N_ROWS, seed=0):
    rng = np.random.default_rng(seed)
    raw = root / "RawData"
    raw.mkdir(parents=True)
    lines = []
    for e, u, segs in exps:
        acc = rng.standard_normal((n_rows, 3)) * 0.2 + [0.1, 0.2, 0.95]
        gyro = rng.standard_normal((n_rows, 3)) * 0.5
        np.savetxt(raw / f"acc_exp{e:02d}_user{u:02d}.txt", acc, fmt="%.9g")
        np.savetxt(raw / f"gyro_exp{e:02d}_user{u:02d}.txt", gyro, fmt="%.9g")
        lines += [f"{e} {u} {a} {f} {l}" for a, f, l in segs]
    (raw / "labels.txt").write_text("\n".join(lines) + "\n")
    (root / "activity_labels.txt").write_text(
        "\n".join(f"{k} {v}" for k, v in HAPT_ACTIVITIES.items()) + "\n")
    return root


def zip_dir(root, zpath, prefix="HAPT Data Set/"):
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        for d, _, files in os.walk(root):
            for f in sorted(files):
                p = os.path.join(d, f)
                z.write(p, prefix + os.path.relpath(p, root))
    return zpath


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    return write_raw(tmp_path_factory.mktemp("hapt"))


@pytest.fixture(scope="module")
def raw_feats(raw_dir):
    return read_hapt(raw_dir)


def test_raw_folder_windows_labels(raw_feats):
    X, y, u = raw_feats["X"], raw_feats["y"], raw_feats["users"]
    exp_y = [a for _, _, segs in EXPS for a, f, l in segs for _ in range(_win(f, l))]
    exp_u = [uu for _, uu, segs in EXPS for a, f, l in segs for _ in range(_win(f, l))]
    assert X.shape == (len(exp_y), 561) and np.isfinite(X).all()
    assert y.tolist() == exp_y and u.tolist() == exp_u
    assert raw_feats["class_names"][7] == "STAND_TO_SIT"


def test_zip_equals_folder_and_rawdata_root(raw_dir, raw_feats, tmp_path):
    z = read_hapt(zip_dir(raw_dir, tmp_path / "hapt.zip"))
    np.testing.assert_array_equal(z["X"], raw_feats["X"])
    np.testing.assert_array_equal(z["y"], raw_feats["y"])
    r = read_hapt(raw_dir / "RawData")  # RawData itself; names from the built-in table
    np.testing.assert_array_equal(r["X"], raw_feats["X"])


def _copy(raw_dir, tmp_path):
    import shutil
    dst = tmp_path / "c"
    shutil.copytree(raw_dir, dst)
    return dst


def test_truncated_raw_file(raw_dir, tmp_path):
    d = _copy(raw_dir, tmp_path)
    f = d / "RawData" / "acc_exp02_user02.txt"
    f.write_text("\n".join(f.read_text().splitlines()[:500]) + "\n")
    with pytest.raises(DataFileError, match="acc_exp02_user02.txt.*500 rows.*truncated"):
        read_hapt(d)


def test_partial_last_line_and_bad_token(raw_dir, tmp_path):
    d = _copy(raw_dir, tmp_path)
    f = d / "RawData" / "gyro_exp01_user01.txt"
    f.write_text(f.read_text() + "0.5 0.25\n")
    with pytest.raises(DataFileError, match="gyro_exp01_user01.txt"):
        read_hapt(d)
    f.write_text(f.read_text().replace("0.5 0.25\n", "0.5 abc 1\n"))
    with pytest.raises(DataFileError, match="gyro_exp01_user01.txt"):
        read_hapt(d)


def test_missing_file_and_bad_labels(raw_dir, tmp_path):
    d = _copy(raw_dir, tmp_path)
    (d / "RawData" / "gyro_exp03_user03.txt").unlink()
    with pytest.raises(FileNotFoundError, match="gyro_exp03_user03.txt"):
        read_hapt(d)
    d2 = _copy(raw_dir, tmp_path / "x")
    (d2 / "RawData" / "labels.txt").write_text("1 1 5 300 10\n")
    with pytest.raises(DataFileError, match="labels.txt"):
        read_hapt(d2)
    with pytest.raises(FileNotFoundError):
        read_hapt(tmp_path / "nope")


def test_corrupt_and_truncated_zip(raw_dir, tmp_path):
    z = zip_dir(raw_dir, tmp_path / "hapt.zip")
    data = z.read_bytes()
    (tmp_path / "trunc.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match="trunc.zip"):
        read_hapt(tmp_path / "trunc.zip")
    # flip bytes inside a member's compressed data: CRC/inflate error names the member
    with zipfile.ZipFile(z) as zz:
        info = zz.getinfo("HAPT Data Set/RawData/acc_exp01_user01.txt")
    bad = bytearray(data)
    start = info.header_offset + 30 + len(info.filename) + 200
    bad[start:start + 50] = b"\x00" * 50
    (tmp_path / "bad.zip").write_bytes(bytes(bad))
    with pytest.raises(DataFileError, match="acc_exp01_user01.txt"):
        read_hapt(tmp_path / "bad.zip")


def _write_official(root, n_tr=7, n_te=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n_tr + n_te, 561))
    y = rng.integers(1, 13, n_tr + n_te)
    s = np.r_[rng.integers(1, 4, n_tr), rng.integers(4, 6, n_te)]
    for part, sl in (("train", slice(0, n_tr)), ("test", slice(n_tr, None))):
        d = root / part.capitalize()
        d.mkdir(parents=True)
        np.savetxt(d / f"X_{part}.txt", X[sl], fmt="%.8e")
        np.savetxt(d / f"y_{part}.txt", y[sl], fmt="%d")
        np.savetxt(d / f"subject_id_{part}.txt", s[sl], fmt="%d")
    return X, y, s


def test_official_561_folder_and_zip(tmp_path):
    root = tmp_path / "off"
    X, y, s = _write_official(root)
    for src in (root, zip_dir(root, tmp_path / "off.zip")):
        f = read_hapt(src)
        np.testing.assert_allclose(f["X"], X, rtol=1e-7)
        assert f["y"].tolist() == y.tolist() and f["users"].tolist() == s.tolist()
    (root / "Test" / "y_test.txt").write_text("1\n2\n")
    with pytest.raises(DataFileError, match="y_test.txt.*2 rows"):
        read_hapt(root)


def test_npz_roundtrip_reproducible_and_error_bound(raw_feats, tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    s = write_hapt_npz(raw_feats, a)
    write_hapt_npz(raw_feats, b)
    assert a.read_bytes() == b.read_bytes()
    r = read_hapt_npz(a)
    X = raw_feats["X"]
    rg = np.where(X.max(0) > X.min(0), X.max(0) - X.min(0), 1.0)
    err = np.abs(r["X"] - X) / rg
    assert err.max() <= 0.5 / (2 ** 14 - 1) + 1e-12 and s["max_abs_error_per_range"] == err.max()
    mi = [i for i, n in enumerate(raw_feats["feature_names"]) if "maxInds" in n]
    np.testing.assert_array_equal(r["X"][:, mi], X[:, mi])  # integral columns exact
    assert r["y"].tolist() == raw_feats["y"].tolist()
    assert r["feature_names"] == raw_feats["feature_names"]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_npz_corrupt(raw_feats, tmp_path):
    a = tmp_path / "a.npz"
    write_hapt_npz(raw_feats, a)
    data = bytearray(a.read_bytes())
    with zipfile.ZipFile(a) as z:
        info = z.getinfo("features_xz.npy")
    mid = info.header_offset + 30 + len(info.filename) + 128 + info.file_size // 2
    data[mid] ^= 0xFF
    (tmp_path / "c.npz").write_bytes(bytes(data))
    with pytest.raises(DataFileError, match="c.npz"):
        read_hapt_npz(tmp_path / "c.npz")
    (tmp_path / "t.npz").write_bytes(bytes(data[:1000]))
    with pytest.raises(DataFileError, match="t.npz"):
        read_hapt_npz(tmp_path / "t.npz")


def test_cli_build_hapt_reproducible_from_zip(raw_dir, tmp_path):
    z = zip_dir(raw_dir, tmp_path / "hapt.zip")
    r = CliRunner()
    o1, o2 = tmp_path / "o1.npz", tmp_path / "o2.npz"
    res = r.invoke(main, ["data", "build-hapt", str(z), str(o1)])
    assert res.exit_code == 0, res.output
    assert r.invoke(main, ["data", "build-hapt", str(raw_dir), str(o2)]).exit_code == 0
    assert o1.read_bytes() == o2.read_bytes()
    with zipfile.ZipFile(o1) as zz:
        assert {i.date_time for i in zz.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    # the built file loads through load_dataset with the paper's removals
    d = load_dataset("hapt", o1, drop_users=(), train_frac=0.75)
    assert d.info["train_users"] == [1, 2, 3] and d.info["test_users"] == [4]
    assert 8 not in d.y_train and d.X_train.shape[1] == 561
    res = r.invoke(main, ["data", "info", "hapt", "--data", str(o1)])
    assert res.exit_code == 0 and "users" in res.output and "STANDING" in res.output
