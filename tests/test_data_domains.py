"""Domain-incremental data (intsim.data.domains): the within-subject hold-out of
activity data, the seeded split of subjects into tasks, and permuted inputs."""
import numpy as np
import pytest

from intsim.data import Dataset, PermutedDomains, SubjectDomains, first_per_class, har_dataset
from intsim.data.common import subject_split, within_subject_split


def test_within_subject_split_holds_out_the_last_windows_of_each_subject_and_class():
    users = np.array([1, 1, 1, 1, 1, 2, 2, 1, 2, 2, 2, 2])
    y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0])
    train = within_subject_split(y, users)
    # (1, 0): 5 windows -> ceil(4.0) = 4 train, the 5th tests; (2, 1) and (1, 1): 2 and
    # 1 windows all train; (2, 0): 4 windows -> ceil(3.2) = 4 train
    assert train.tolist() == [True] * 4 + [False] + [True] * 7
    assert within_subject_split(y, users, 0.5).tolist() == \
        [True] * 3 + [False, False] + [True, False, True, True, True, False, False]
    with pytest.raises(ValueError, match="not subjects"):
        subject_split(users, mode="within-subject")


def _feats(n_users=6, classes=(1, 2, 3), per=10, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(1, n_users + 1), len(classes) * per)
    y = np.tile(np.repeat(np.asarray(classes), per), n_users)
    X = rng.normal(size=(len(y), dim)) + u[:, None]
    return {"X": X, "y": y, "users": u, "feature_names": [f"f{i}" for i in range(dim)],
            "class_names": {}}


def test_har_dataset_within_subject_every_subject_trains_and_tests():
    ds = har_dataset("har", _feats(), split="within-subject", drop_users=(),
                     drop_classes=())
    assert len(ds.y_train) == 6 * 3 * 8 and len(ds.y_test) == 6 * 3 * 2
    assert np.unique(ds.users_train).tolist() == np.unique(ds.users_test).tolist() == [1, 2, 3, 4, 5, 6]
    assert ds.info["split"] == "within-subject" and ds.info["split_seed"] is None
    # scaled with the training rows only: those span [-1, 1] exactly
    assert ds.X_train.min() == -1.0 and ds.X_train.max() == 1.0


def _subject_data(n_users=6, seed=0):
    return har_dataset("har", _feats(n_users, seed=seed), split="within-subject",
                       drop_users=(), drop_classes=())


def test_subject_domains_split_is_seeded_and_deterministic():
    ds = _subject_data()
    state = np.random.get_state()[1].copy()
    a = SubjectDomains(ds, 4, seed=7)
    assert np.array_equal(np.random.get_state()[1], state)        # no global randomness
    b = SubjectDomains(ds, 4, seed=7)
    assert [g.tolist() for g in a.subjects] == [g.tolist() for g in b.subjects]
    # the documented rule: a default_rng(seed) permutation of the sorted ids, cut by
    # np.array_split (sizes 2, 2, 1, 1)
    perm = np.random.default_rng(7).permutation(np.arange(1, 7))
    assert [g.tolist() for g in a.subjects] == [sorted(g.tolist()) for g in np.array_split(perm, 4)]
    assert [len(g) for g in a.subjects] == [2, 2, 1, 1]
    assert sorted(np.concatenate(a.subjects).tolist()) == [1, 2, 3, 4, 5, 6]
    others = {tuple(map(tuple, SubjectDomains(ds, 4, seed=s).subjects)) for s in range(8)}
    assert len(others) > 1                                        # the seed matters
    assert a.describe() == {"kind": "subjects", "subjects": [g.tolist() for g in a.subjects]}


def test_subject_domain_tasks_train_on_their_subjects_and_test_on_every_task_so_far():
    ds = _subject_data()
    s = SubjectDomains(ds, 3, seed=1)
    seen = []
    for t in range(3):
        task = s.task(t)
        assert task.seen == 3 and task.classes.tolist() == [0, 1, 2]
        assert len(task.y_train) == len(s.subjects[t]) * 3 * 8
        rows = np.isin(ds.users_train, s.subjects[t])
        np.testing.assert_array_equal(task.X_train, ds.X_train[rows])
        np.testing.assert_array_equal(task.y_train, ds.y_train[rows] - 1)   # labels 1..3 -> 0..2
        seen.append(np.isin(ds.users_test, s.subjects[t]).sum())
        assert len(task.y_test) == sum(seen)
        assert np.bincount(task.test_task).tolist() == seen
        assert task.class_task is None


def test_subject_domains_refuse_what_they_cannot_split():
    ds = _subject_data(n_users=3)
    with pytest.raises(ValueError, match="4 tasks need at least as many subjects, the data has 3"):
        SubjectDomains(ds, 4, seed=0)
    held_out = har_dataset("har", _feats(), split="sorted", drop_users=(), drop_classes=())
    with pytest.raises(ValueError, match=r"test subjects \[6\] do not train"):
        SubjectDomains(held_out, 2, seed=0)
    f = _feats()
    keep = ~((f["users"] == 2) & (f["y"] == 3))                  # subject 2 never does class 3
    f = {**f, "X": f["X"][keep], "y": f["y"][keep], "users": f["users"][keep]}
    ds = har_dataset("har", f, split="within-subject", drop_users=(), drop_classes=())
    with pytest.raises(ValueError, match=r"subjects 2\) has no training samples of class\(es\) \[3\]"):
        SubjectDomains(ds, 6, seed=0)


def test_per_class_per_subject_keeps_every_subject():
    ds = _subject_data()
    sub = first_per_class(ds, 2, per_subject=True)
    assert len(sub.y_train) == 6 * 3 * 2
    assert np.unique(sub.users_train).tolist() == [1, 2, 3, 4, 5, 6]
    assert len(first_per_class(ds, 2).y_train) == 3 * 2           # the default: per class only


@pytest.mark.parametrize("shape", [(12,), (2, 3, 4)])
def test_permuted_domains_permute_the_positions_of_every_task(shape):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10,) + shape).astype(np.float32)
    Xt = rng.normal(size=(4,) + shape).astype(np.float32)
    ds = Dataset(X, np.repeat([5, 7], 5), Xt, np.array([5, 7, 7, 5]), name="toy")
    p = PermutedDomains(ds, 3, seed=11)
    P = 12                                  # 12 features, or 3 x 4 pixels per channel
    g = np.random.default_rng(11)
    expect = [g.permutation(P) for _ in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(p.permutations, expect))
    task = p.task(2)
    flat = X.reshape(10, -1, P) if len(shape) > 1 else X[:, None, :]
    got = task.X_train.reshape(10, -1, P) if len(shape) > 1 else task.X_train[:, None, :]
    np.testing.assert_array_equal(got, flat[:, :, expect[2]])     # same for every channel
    assert task.y_train.tolist() == [0] * 5 + [1] * 5 and task.seen == 2
    assert task.test_task.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    np.testing.assert_array_equal(task.X_test[:4], p.task(0).X_test)
    again = PermutedDomains(ds, 3, seed=11).task(2)
    np.testing.assert_array_equal(again.X_test, task.X_test)
    assert p.describe() == {"kind": "permuted", "positions": P}
