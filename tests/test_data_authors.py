"""The authors' HAR files (dsads.csv/.mat, pamap.mat/.csv, hapt_combined.csv), the
subject split options (paper / sorted / seeded, scale none / train-minmax), their
defaults per schedule, and an end-to-end paper-schedule run on a tiny
hapt_combined.csv."""
import json
import math
import random

import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner

from intsim.app import jobs as ex
from intsim.app.config import ConfigError, data_defaults, resolve
from intsim.app.sweep import make_run
from intsim.cli import main
from intsim.cli.train import OPTIONS
from intsim.data import DataFileError, har_dataset, load_dataset
from intsim.data.authors import find_authors_file, read_authors
from intsim.data.common import SCALES, SPLITS, subject_split

HAPT_USERS = [u for u in range(1, 31) if u not in (7, 28)]


# ------------------------------------------------------------ file writers

def matrix(name, subjects, labels, per=2, seed=0):
    """The authors' numeric matrix: features in [-1, 1], then (DSADS) the activity
    sequence, then label and subject; ``per`` rows per (subject, label), subjects
    in the given order (file order), labels inside each subject."""
    nfeat = {"dsads": 405, "pamap2": 243}[name]
    rng = np.random.default_rng(seed)
    rows = []
    for s in subjects:
        for a in labels:
            for k in range(per):
                seq = [k + 1] if name == "dsads" else []
                rows.append(np.r_[rng.uniform(-1, 1, nfeat), seq, a, s])
    return np.array(rows)


def write_csv(path, arr):
    np.savetxt(path, arr, delimiter=",", fmt="%.17g")
    return str(path)


def write_mat(path, var, arr):
    scipy.io.savemat(path, {var: arr})
    return str(path)


def hapt_table(subjects, labels=(1, 2, 3, 4), per=2, seed=0):
    """(header, rows) of a hapt_combined.csv: USER first, 561 features, AID last
    (QCIL selects the columns by name, so their position must not matter)."""
    rng = np.random.default_rng(seed)
    header = ["USER"] + [f"f{i}" for i in range(561)] + ["AID"]
    rows = []
    for s in subjects:
        for a in labels:
            for _ in range(per):
                rows.append([s, *rng.uniform(-1, 1, 561), a])
    return header, np.array(rows)


def write_hapt(path, subjects, labels=(1, 2, 3, 4), per=2, seed=0, header=None, rows=None):
    h, r = hapt_table(subjects, labels, per, seed)
    header = h if header is None else header
    rows = r if rows is None else rows
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    return str(path)


# ------------------------------------------------------------ loading

def test_dsads_csv_and_mat(tmp_path):
    arr = matrix("dsads", range(1, 9), (1, 2, 3))
    c = write_csv(tmp_path / "dsads.csv", arr)
    m = write_mat(tmp_path / "dsads.mat", "data_dsads", arr)
    f = read_authors("dsads", c)
    assert f["X"].shape == (arr.shape[0], 405) and f["layout"] == "authors" and f["origin"] == c
    np.testing.assert_array_equal(f["X"], arr[:, :405])        # column 405 dropped
    assert f["y"].tolist() == arr[:, 406].astype(int).tolist()
    assert f["users"].tolist() == arr[:, 407].astype(int).tolist()
    assert len(set(f["feature_names"])) == 405 and f["class_names"][19] == "playing basketball"
    g = read_authors("dsads", m)
    for k in ("X", "y", "users"):
        np.testing.assert_array_equal(f[k], g[k])
    d = load_dataset("dsads", c, split="sorted", scale="none")
    assert d.info["layout"] == "authors" and d.info["origin"] == c and d.info["scale"] == "none"
    assert d.info["train_users"] == [1, 2, 3, 4, 5, 6, 7] and d.info["test_users"] == [8]
    np.testing.assert_array_equal(d.X_train, arr[arr[:, 407] <= 7, :405].astype(np.float32))
    assert d.X_train.dtype == np.float32 and not d.info["scaled"]
    s = load_dataset("dsads", m, split="sorted")        # train-minmax by default
    assert s.info["scaled"] and s.X_train.min() == -1 and s.X_train.max() == 1


def test_pamap_mat_and_csv_with_removals(tmp_path):
    arr = matrix("pamap2", range(1, 10), (1, 2, 3, 24))
    m = write_mat(tmp_path / "pamap.mat", "data_pamap", arr)
    c = write_csv(tmp_path / "pamap.csv", arr)
    for p in (m, c):
        d = load_dataset("pamap2", p, split="sorted", scale="none")
        assert d.X_train.shape[1] == 243 and d.info["layout"] == "authors"
        # the paper's removals: subjects 3, 4, 9 and class 24
        assert d.info["train_users"] == [1, 2, 5, 6, 7] and d.info["test_users"] == [8]
        assert sorted(set(d.y_train.tolist())) == [1, 2, 3] and 24 not in d.y_test
        keep = ~np.isin(arr[:, 244], (3, 4, 9)) & (arr[:, 243] != 24) & (arr[:, 244] <= 7)
        np.testing.assert_array_equal(d.X_train, arr[keep, :243].astype(np.float32))


def test_hapt_combined_by_column_name_with_removals(tmp_path):
    p = write_hapt(tmp_path / "hapt_combined.csv", range(1, 31), labels=(1, 2, 8))
    f = read_authors("hapt", p)
    header, rows = hapt_table(range(1, 31), (1, 2, 8))
    np.testing.assert_array_equal(f["X"], rows[:, 1:562])
    assert f["feature_names"] == [f"f{i}" for i in range(561)]
    assert f["y"].tolist() == rows[:, 562].astype(int).tolist()
    d = load_dataset("hapt", p, split="sorted", scale="none")
    assert 7 not in d.info["train_users"] + d.info["test_users"]
    assert 28 not in d.info["train_users"] + d.info["test_users"]
    assert 8 not in d.y_train and 8 not in d.y_test
    assert d.info["test_users"] == [25, 26, 27, 29, 30] and d.info["layout"] == "authors"


def test_auto_detection_from_a_file_or_folder(tmp_path):
    arr = matrix("dsads", (1, 2), (1, 2))
    (tmp_path / "a").mkdir()
    write_csv(tmp_path / "a" / "dsads.csv", arr)
    (tmp_path / "b" / "generated").mkdir(parents=True)     # QCIL's ../Data/DSADS/generated/
    write_mat(tmp_path / "b" / "generated" / "dsads.mat", "data_dsads", arr)
    (tmp_path / "c").mkdir()
    write_mat(tmp_path / "c" / "pamap.mat", "data_pamap", matrix("pamap2", (1, 2), (1, 2)))
    (tmp_path / "d").mkdir()
    write_hapt(tmp_path / "d" / "hapt_combined.csv", (1, 2))
    assert find_authors_file("dsads", tmp_path / "a") == str(tmp_path / "a" / "dsads.csv")
    assert find_authors_file("dsads", tmp_path / "b").endswith("generated/dsads.mat")
    assert find_authors_file("pamap2", tmp_path / "c").endswith("pamap.mat")
    assert find_authors_file("hapt", tmp_path / "d").endswith("hapt_combined.csv")
    # any file name with the dataset's extensions; not other datasets' files in a folder
    assert find_authors_file("dsads", tmp_path / "c") is None
    assert find_authors_file("hapt", tmp_path / "c" / "pamap.mat") is None
    assert find_authors_file("dsads", tmp_path / "nowhere") is None
    assert find_authors_file("cifar10", tmp_path / "a") is None
    for name, folder in (("dsads", "a"), ("dsads", "b"), ("pamap2", "c"), ("hapt", "d")):
        d = load_dataset(name, tmp_path / folder, split="sorted", scale="none")
        assert d.info["layout"] == "authors", (name, folder)
    # an official layout is still read as before
    with pytest.raises(FileNotFoundError, match="no DSADS segment files"):
        load_dataset("dsads", tmp_path / "c")


def _one_line_error(exc_type, fn, *words):
    with pytest.raises(exc_type) as ei:
        fn()
    msg = str(ei.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


def test_errors_name_the_file(tmp_path):
    good = matrix("dsads", (1, 2), (1, 2))
    p = write_csv(tmp_path / "dsads.csv", good[:, :407])
    _one_line_error(DataFileError, lambda: read_authors("dsads", p), p, "407", "408")
    p = write_mat(tmp_path / "dsads.mat", "data_dsads", good[:, :400])
    _one_line_error(DataFileError, lambda: read_authors("dsads", p), p, "400", "408")
    p = write_mat(tmp_path / "x.mat", "data_pamap", good)
    _one_line_error(DataFileError, lambda: read_authors("dsads", p), p, "data_dsads", "data_pamap")
    bad = good.copy()
    bad[3, 17] = np.nan
    p = write_csv(tmp_path / "nan.csv", bad)
    _one_line_error(DataFileError, lambda: read_authors("dsads", p), p, "NaN")
    p = write_mat(tmp_path / "nan.mat", "data_dsads", bad)
    _one_line_error(DataFileError, lambda: read_authors("dsads", p), p, "NaN")
    bad = good.copy()
    bad[0, 406] = 1.5
    p = write_csv(tmp_path / "lab.csv", bad)
    _one_line_error(DataFileError, lambda: read_authors("dsads", p), p, "label")
    p = tmp_path / "junk.mat"
    p.write_bytes(b"not a mat file at all")
    _one_line_error(DataFileError, lambda: read_authors("dsads", str(p)), str(p), ".mat")
    pam = matrix("pamap2", (1, 2), (1, 2))
    p = write_csv(tmp_path / "pamap.csv", np.c_[pam, pam[:, :1]])
    _one_line_error(DataFileError, lambda: read_authors("pamap2", p), p, "246", "245")

    header, rows = hapt_table((1, 2))
    for drop in ("AID", "USER"):
        keep = [i for i, h in enumerate(header) if h != drop]
        p = write_hapt(tmp_path / f"no_{drop}.csv", (1, 2), header=[header[i] for i in keep],
                       rows=rows[:, keep])
        _one_line_error(DataFileError, lambda: read_authors("hapt", p), p, f"no {drop}")
    p = write_hapt(tmp_path / "short.csv", (1, 2), header=header[:-2] + ["AID"],
                   rows=np.c_[rows[:, :-2], rows[:, -1]])
    _one_line_error(DataFileError, lambda: read_authors("hapt", p), p, "560 feature columns")
    p = write_hapt(tmp_path / "index.csv", (1, 2), header=[""] + header,
                   rows=np.c_[np.arange(len(rows)), rows])
    _one_line_error(DataFileError, lambda: read_authors("hapt", p), p, "562", "index=False")
    r = rows.copy()
    r[1, 5] = np.nan
    p = write_hapt(tmp_path / "nan_hapt.csv", (1, 2), rows=r)
    _one_line_error(DataFileError, lambda: read_authors("hapt", p), p, "NaN", "f4")
    p = tmp_path / "empty.csv"
    p.write_text("")
    _one_line_error(DataFileError, lambda: read_authors("hapt", str(p)), str(p), "empty")
    p = write_hapt(tmp_path / "header_only.csv", (1,), rows=rows[:0])
    _one_line_error(DataFileError, lambda: read_authors("hapt", p), p, "no data rows")


def test_cli_bad_file_is_one_line_exit_2(tmp_path):
    good = matrix("dsads", (1, 2), (1, 2))
    p = write_csv(tmp_path / "dsads.csv", good[:, :407])
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--dataset", "dsads", "--data", p, "--out", str(out)])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("intsim: error: ") and p in lines[0]
    assert not out.exists()


# ------------------------------------------------------------ the paper split

def _paper(order, seed, frac=0.8):
    tr = random.Random(seed).sample(list(order), math.ceil(len(order) * frac))
    return sorted(tr), sorted(set(order) - set(tr))


@pytest.mark.parametrize("seed", [0, 1, 7, 1993, 1994, 42467, 2 ** 32 - 1])
def test_paper_split_is_python_random_sample_in_file_order(seed):
    rng = np.random.default_rng(seed % 1000)
    for n in (1, 5, 6, 8, 10, 28, 30):
        order = [int(u) for u in rng.permutation(np.arange(1, 41))[:n]]  # file order, not sorted
        users = np.repeat(order, 3)
        tr, te = subject_split(users, 0.8, mode="paper", seed=seed)
        assert (tr.tolist(), te.tolist()) == _paper(order, seed)
        # order of first appearance counts, not the order of later rows
        users2 = np.r_[users, users[::-1]]
        assert subject_split(users2, 0.8, mode="paper", seed=seed)[0].tolist() == tr.tolist()


# authors-har-data.md table 1.3 (ascending subject order in the files)
WORKED = {1994: ([5], [1], [2, 3, 8, 18, 25]), 1379: ([1], [1], [3, 5, 11, 15, 25]),
          1234: ([2], [2], [5, 8, 10, 21, 29]), 42467: ([1], [2], [4, 9, 17, 22, 24]),
          1993: ([2], [8], [3, 11, 23, 25, 27])}


@pytest.mark.parametrize("seed", sorted(WORKED))
def test_paper_split_worked_values(seed):
    """The doc's worked test subjects, through har_dataset's removals."""
    for name, subjects, classes, want in (("dsads", range(1, 9), (1, 2), WORKED[seed][0]),
                                          ("pamap2", range(1, 10), (1, 24), WORKED[seed][1]),
                                          ("hapt", range(1, 31), (1, 8), WORKED[seed][2])):
        u = np.repeat(np.array(list(subjects)), len(classes))
        y = np.tile(np.array(classes), len(subjects))
        feats = {"X": np.zeros((u.size, 3)), "y": y, "users": u, "feature_names": ["a", "b", "c"],
                 "class_names": {}}
        d = har_dataset(name, feats, split="paper", split_seed=seed, scale="none")
        assert d.info["test_users"] == want, name
        assert d.info["split"] == "paper" and d.info["split_seed"] == seed


def test_paper_split_of_a_hapt_combined_file(tmp_path):
    """HAPT seed 42467 -> test subjects [4, 9, 17, 22, 24] from a file in ascending order;
    a file listing its subjects in another order gives random.sample of that order."""
    p = write_hapt(tmp_path / "hapt_combined.csv", range(1, 31), labels=(1, 2), per=1)
    d = load_dataset("hapt", p, split="paper", split_seed=42467, scale="none")
    assert d.info["test_users"] == [4, 9, 17, 22, 24]
    assert d.info["subject_order"] == HAPT_USERS
    assert sorted(set(d.users_test.tolist())) == [4, 9, 17, 22, 24]
    order = list(range(30, 0, -1))
    p = write_hapt(tmp_path / "desc.csv", order, labels=(1, 2), per=1)
    d = load_dataset("hapt", p, split="paper", split_seed=42467, scale="none")
    kept = [u for u in order if u not in (7, 28)]
    assert d.info["subject_order"] == kept
    assert (d.info["train_users"], d.info["test_users"]) == _paper(kept, 42467)


def test_sorted_and_seeded_are_unchanged():
    u = np.repeat(np.arange(1, 11), 2)
    assert subject_split(u, mode="sorted")[1].tolist() == [9, 10]
    perm = np.random.default_rng(5).permutation(np.arange(1, 11))
    assert subject_split(u, mode="seeded", seed=5)[1].tolist() == sorted(perm[8:].tolist())
    with pytest.raises(ValueError, match="paper, sorted, seeded"):
        subject_split(u, mode="random")
    feats = {"X": np.zeros((20, 1)), "y": np.ones(20, int), "users": u, "feature_names": ["a"],
             "class_names": {}}
    with pytest.raises(ValueError, match="scale"):
        har_dataset("dsads", feats, scale="zscore")
    assert har_dataset("dsads", feats, scale=False).info["scale"] == "none"


# ------------------------------------------------------------ settings and defaults

def test_defaults_per_schedule(tmp_path):
    c = write_csv(tmp_path / "dsads.csv", matrix("dsads", (1, 2), (1, 2)))
    official = tmp_path / "official"
    official.mkdir()

    def sc(**over):
        cfg = resolve(None, {"threads": 1, **over})
        return cfg.split, cfg.scale
    assert sc() == ("sorted", "train-minmax")                        # short, embedded HAPT
    assert sc(schedule="paper") == ("paper", "train-minmax")         # paper, official layout
    assert sc(dataset="dsads", data=c) == ("sorted", "train-minmax")
    assert sc(dataset="dsads", data=c, schedule="paper") == ("paper", "none")
    assert sc(dataset="dsads", data=str(tmp_path), schedule="paper") == ("paper", "none")
    assert sc(dataset="dsads", data=str(official), schedule="paper") == ("paper", "train-minmax")
    assert sc(dataset="dsads", data=c, schedule="paper", split="seeded", scale="train-minmax") \
        == ("seeded", "train-minmax")
    assert sc(dataset="synthetic", schedule="paper") == ("sorted", "train-minmax")
    assert data_defaults("cifar100", "paper", str(tmp_path)) == {"split": "sorted",
                                                                "scale": "train-minmax"}
    with pytest.raises(ConfigError, match="split=paper applies to the HAR datasets only"):
        resolve(None, {"dataset": "synthetic", "split": "paper", "threads": 1})
    with pytest.raises(ConfigError, match="unknown split"):
        resolve(None, {"split": "random", "threads": 1})
    toml = tmp_path / "c.toml"
    toml.write_text('schedule = "paper"\nsplit = "seeded"\nscale = "none"\n')
    cfg = resolve(toml, {"threads": 1})
    assert (cfg.split, cfg.scale) == ("seeded", "none")
    assert resolve(toml, {"threads": 1, "split": "sorted"}).split == "sorted"


def test_a_config_file_without_split_takes_the_schedule_default(tmp_path):
    """split/scale not given: the schedule's (the paper schedule's HAR split is the
    authors'), whether or not the file sits in a run folder."""
    text = 'dataset = "hapt"\nschedule = "paper"\nthreads = 1\n'
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(text)
    (run / "log.jsonl").write_text("")
    assert resolve(run / "config.toml").split == "paper"
    (run / "config.toml").write_text(text + 'split = "sorted"\n')
    assert resolve(run / "config.toml").split == "sorted"


def test_cli_choices_and_sweep_runs():
    opts = {o.name: o for o in (f(lambda: None).__click_params__[0] for f in OPTIONS)}
    assert tuple(opts["split"].type.choices) == SPLITS
    assert tuple(opts["scale"].type.choices) == SCALES
    base = {"dataset": "hapt", "method": "icarl", "arith": "fp", "seed": 42467,
            "schedule": "paper", "epochs": 10}
    old = make_run({**base, "split": "sorted", "scale": "train-minmax"})
    new = make_run(base)
    assert new.resolved.split == "paper" and old.resolved.split == "sorted"
    assert new.key != old.key
    # the old split is RunConfig's default: it is not part of the key or the cache check
    assert "split" not in ex.settings(old.resolved.to_dict())
    assert "split" not in old.settings() and new.settings()["split"] == "paper"
    with pytest.raises(ConfigError, match="spilt"):
        make_run({**base, "spilt": "paper"})


# ------------------------------------------------------------ end to end

def test_train_paper_schedule_on_a_hapt_combined_csv(tmp_path):
    subjects = [1, 2, 3, 5, 6, 7, 8]          # 7 is dropped: 6 subjects -> 5 train / 1 test
    p = write_hapt(tmp_path / "hapt_combined.csv", subjects, labels=(1, 2, 3, 4), per=3)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--dataset", "hapt", "--data", p, "--schedule", "paper",
                                  "--epochs", "1", "--hidden", "16", "--batch-size", "32",
                                  "--memory", "12", "--seed", "1993", "--threads", "1",
                                  "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output + r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["config"]["split"] == "paper"
    assert res["config"]["scale"] == "none"
    train, test = _paper([1, 2, 3, 5, 6, 8], 1993)
    info = res["run"]["data_info"]
    assert (info["train_users"], info["test_users"]) == (train, test)
    assert info["split"] == "paper" and info["split_seed"] == 1993 and info["scale"] == "none"
    assert info["layout"] == "authors" and info["origin"] == p
    assert res["run"]["n_test"] == 3 * 4 * len(test)
    assert 'split = "paper"' in (out / "config.toml").read_text()
