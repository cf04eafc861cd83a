"""DSADS, PAMAP2, CIFAR and IDX readers on small files in the official formats."""
import gzip
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from intsim.data import DataFileError, load_dataset
from intsim.data.cifar import read_cifar, safe_unpickle
from intsim.data.dsads import read_dsads
from intsim.data.idx import read_idx
from intsim.data.pamap2 import read_pamap2


# ------------------------------------------------------------------ DSADS
def write_dsads(root, acts=(1, 2, 3), subjects=(1, 2, 3, 4, 5), segs=(1, 2), seed=0):
    rng = np.random.default_rng(seed)
    for a in acts:
        for p in subjects:
            d = root / "data" / f"a{a:02d}" / f"p{p}"
            d.mkdir(parents=True)
            for s in segs:
                x = rng.standard_normal((125, 45)) + a
                np.savetxt(d / f"s{s:02d}.txt", x, fmt="%.6f", delimiter=",")
    return root


def test_dsads_read_and_split(tmp_path):
    write_dsads(tmp_path)
    f = read_dsads(tmp_path, features="stats9")   # the column checks below are stats9's
    assert f["X"].shape == (30, 405) and len(set(f["feature_names"])) == 405
    assert f["y"].tolist() == [a for a in (1, 2, 3) for _ in range(10)]
    x = np.loadtxt(tmp_path / "data/a02/p3/s02.txt", delimiter=",")
    row = 10 + 2 * 2 + 1
    assert f["X"][row, 0] == pytest.approx(x[:, 0].mean())       # T_xacc-mean
    assert f["X"][row, 9 + 3] == pytest.approx(x[:, 1].max())    # T_yacc-max
    d = load_dataset("dsads", tmp_path)
    assert d.info["train_users"] == [1, 2, 3, 4] and d.info["test_users"] == [5]
    assert d.X_train.min() == -1 and d.X_train.max() == 1 and d.X_train.dtype == np.float32
    # the reader's feature pipeline is a loader option (wang27 by default)
    d9 = load_dataset("dsads", tmp_path, features="stats9", split="sorted", scale="none")
    f27 = read_dsads(tmp_path)
    d27 = load_dataset("dsads", tmp_path, split="sorted", scale="none")
    np.testing.assert_allclose(d9.X_train, f["X"][f["users"] <= 4].astype(np.float32))
    np.testing.assert_allclose(d27.X_train, f27["X"][f27["users"] <= 4].astype(np.float32))
    with pytest.raises(ValueError, match="features"):
        load_dataset("dsads", tmp_path, features="stats10")


def test_dsads_bad_files(tmp_path):
    write_dsads(tmp_path, acts=(1,), subjects=(1,), segs=(1, 2))
    f = tmp_path / "data/a01/p1/s02.txt"
    f.write_text("\n".join(f.read_text().splitlines()[:100]) + "\n")
    with pytest.raises(DataFileError, match="s02.txt.*100 rows"):
        read_dsads(tmp_path)
    f.write_text("1,2,3\n")
    with pytest.raises(DataFileError, match="s02.txt.*columns"):
        read_dsads(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_dsads(tmp_path / "data" / "a01" / "p1" / "zzz")


# ------------------------------------------------------------------ PAMAP2
def write_pamap2(root, subjects=(1, 2, 3, 5, 6, 7), seed=0, runs=None):
    """Protocol/subject1XX.dat files; runs: [(activity, rows)] of each file in order
    (default: 50 transient, 300 of 1, 20 transient, 200 of 4, 130 of 24)."""
    rng = np.random.default_rng(seed)
    d = root / "Protocol"
    d.mkdir(parents=True)
    runs = runs or [(0, 50), (1, 300), (0, 20), (4, 200), (24, 130)]
    for s in subjects:
        acts = np.concatenate([np.full(n, a, dtype=float) for a, n in runs])
        n = acts.size
        x = rng.standard_normal((n, 54))
        x[:, 0] = np.arange(n) / 100
        x[:, 1] = acts
        x[::11, 2] = np.nan           # heart rate mostly missing
        x[100:103, 4] = np.nan        # a gap in hand acc16 x
        np.savetxt(d / f"subject1{s:02d}.dat", x, fmt="%.6g")
    return root


def test_pamap2_read_windows_nan(tmp_path):
    write_pamap2(tmp_path)
    f = read_pamap2(tmp_path, window=100, step=50)
    # per subject: activity 1 run of 300 -> 5 windows, 4 run of 200 -> 3, 24 run of 130 -> 1
    assert f["X"].shape == (6 * 9, 243) and np.isfinite(f["X"]).all()
    assert f["y"][:9].tolist() == [1] * 5 + [4] * 3 + [24]
    assert sorted(set(f["users"].tolist())) == [1, 2, 3, 5, 6, 7]
    d = load_dataset("pamap2", tmp_path, window=100, step=50)
    assert 24 not in d.y_train and 24 not in d.y_test
    assert d.info["train_users"] == [1, 2, 5, 6] and d.info["test_users"] == [7]


def test_pamap2_bad(tmp_path):
    write_pamap2(tmp_path, subjects=(1,))
    f = tmp_path / "Protocol/subject101.dat"
    lines = f.read_text().splitlines()
    f.write_text("\n".join(lines[:-1] + [lines[-1][:20]]) + "\n")
    with pytest.raises(DataFileError, match="subject101.dat"):
        read_pamap2(tmp_path)
    x = np.loadtxt(io.StringIO("\n".join(lines)))
    x[:, 4] = np.nan
    np.savetxt(f, x, fmt="%.6g")
    with pytest.raises(DataFileError, match="subject101.dat.*hand_acc16x"):
        read_pamap2(tmp_path, window=100, step=50)


# ------------------------------------------------------------------ CIFAR
def _pk(obj):
    return pickle.dumps(obj, protocol=2)


def write_cifar100(root, n_tr=6, n_te=4, seed=0, as_tar=True):
    rng = np.random.default_rng(seed)
    files = {}
    data = {}
    for part, n in (("train", n_tr), ("test", n_te)):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = rng.integers(0, 100, n).tolist()
        data[part] = (x, y)
        files[part] = _pk({b"filenames": [b"a.png"] * n, b"batch_label": b"x", b"fine_labels": y,
                           b"coarse_labels": [0] * n, b"data": x})
    files["meta"] = _pk({b"fine_label_names": [f"c{i}".encode() for i in range(100)],
                         b"coarse_label_names": [b"x"] * 20})
    if as_tar:
        p = root / "cifar-100-python.tar.gz"
        with tarfile.open(p, "w:gz") as t:
            for k, v in files.items():
                ti = tarfile.TarInfo(f"cifar-100-python/{k}")
                ti.size = len(v)
                t.addfile(ti, io.BytesIO(v))
        return p, data
    d = root / "cifar-100-python"
    d.mkdir()
    for k, v in files.items():
        (d / k).write_bytes(v)
    return root, data


def test_cifar100_tar_and_folder(tmp_path):
    p, data = write_cifar100(tmp_path)
    c = read_cifar(p)
    assert c["X_train"].shape == (6, 3, 32, 32) and c["X_train"].dtype == np.uint8
    np.testing.assert_array_equal(c["X_train"].reshape(6, -1), data["train"][0])
    assert c["y_test"].tolist() == data["test"][1] and c["class_names"][5] == "c5"
    q, _ = write_cifar100(tmp_path / "f" if (tmp_path / "f").mkdir() is None else None,
                          as_tar=False)
    np.testing.assert_array_equal(read_cifar(q)["X_test"], c["X_test"])
    d = load_dataset("cifar100", p)
    assert d.X_train.dtype == np.float32
    r = (d.X_train[0, 1] * 0.2565 + 0.4867) * 255
    np.testing.assert_allclose(r, c["X_train"][0, 1], atol=1e-3)


def test_cifar10_folder(tmp_path):
    rng = np.random.default_rng(1)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for k in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (d / k).write_bytes(_pk({b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8),
                                 b"labels": rng.integers(0, 10, 2).tolist()}))
    (d / "batches.meta").write_bytes(_pk({b"label_names": [b"airplane"] + [b"x"] * 9}))
    c = read_cifar(tmp_path, "cifar10")
    assert c["X_train"].shape == (10, 3, 32, 32) and c["class_names"][0] == "airplane"


def test_cifar_rejects_malicious_and_corrupt(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    with pytest.raises(DataFileError, match="not allowed"):
        safe_unpickle(pickle.dumps({b"data": Evil()}), "evil")
    p, _ = write_cifar100(tmp_path)
    raw = p.read_bytes()
    (tmp_path / "t.tar.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFileError, match="t.tar.gz"):
        read_cifar(tmp_path / "t.tar.gz")
    (tmp_path / "r.tar.gz").write_bytes(gzip.compress(os.urandom(3000)))   # not a tar inside
    with pytest.raises(DataFileError) as e:
        read_cifar(tmp_path / "r.tar.gz")
    assert "not a readable tar archive" in str(e.value) and "\n" not in str(e.value)
    d = tmp_path / "bad"
    d.mkdir()
    (d / "train").write_bytes(_pk({b"data": np.zeros((2, 100), np.uint8), b"fine_labels": [0, 1]}))
    with pytest.raises(DataFileError, match="train.*3072"):
        read_cifar(d)
    (d / "train").write_bytes(b"\x80\x02}q\x00")  # truncated pickle
    with pytest.raises(DataFileError, match="train"):
        read_cifar(d)


# ------------------------------------------------------------------ IDX
def _idx(arr):
    hdr = bytes([0, 0, 8, arr.ndim]) + np.array(arr.shape, ">u4").tobytes()
    return hdr + arr.astype(np.uint8).tobytes()


def write_mnist(root, gz=True, n=5, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for stem in ("train", "t10k"):
        x = rng.integers(0, 256, (n, 28, 28))
        y = rng.integers(0, 10, n)
        out[stem] = (x, y)
        for kind, a in ((f"{stem}-images-idx3-ubyte", x), (f"{stem}-labels-idx1-ubyte", y)):
            b = _idx(a)
            if gz:
                (root / (kind + ".gz")).write_bytes(gzip.compress(b, mtime=0))
            else:
                (root / kind).write_bytes(b)
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_mnist(tmp_path, gz):
    data = write_mnist(tmp_path, gz)
    d = load_dataset("fashion-mnist", tmp_path)
    assert d.X_train.shape == (5, 1, 28, 28) and d.X_train.dtype == np.float32
    np.testing.assert_allclose(d.X_train[:, 0] * 255, data["train"][0], atol=1e-4)
    assert d.y_test.tolist() == data["t10k"][1].tolist() and d.class_names[9] == "Ankle boot"
    u = load_dataset("mnist", tmp_path, normalize=False)
    assert u.X_test.dtype == np.uint8


def test_idx_corrupt(tmp_path):
    b = _idx(np.zeros((3, 4, 4)))
    (tmp_path / "a").write_bytes(b[:-5])
    with pytest.raises(DataFileError, match="truncated"):
        read_idx(tmp_path / "a")
    (tmp_path / "b").write_bytes(b"\x00\x00\x0d\x01" + b[4:])
    with pytest.raises(DataFileError, match="type"):
        read_idx(tmp_path / "b")
    g = gzip.compress(b, mtime=0)
    (tmp_path / "c.gz").write_bytes(g[:-10])
    with pytest.raises(DataFileError, match="c.gz.*gzip"):
        read_idx(tmp_path / "c.gz")
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        write_mnist(tmp_path / "m" if (tmp_path / "m").mkdir() is None else None)
        os.remove(tmp_path / "m" / "t10k-images-idx3-ubyte.gz")
        load_dataset("mnist", tmp_path / "m")
