"""TaskStream, iterate_batches, augment_cifar, and the shipped HAPT default."""
import numpy as np
import pytest
from click.testing import CliRunner

from intsim.cli import main
from intsim.data import Dataset, TaskStream, augment_cifar, iterate_batches, load_dataset
from intsim.data.cifar import CIFAR100_MEAN, CIFAR100_STD, normalize_images

HAPT_ORDER = [12, 11, 5, 6, 4, 7, 3, 2, 10, 9, 1]
DSADS_ORDER = [9, 19, 10, 5, 6, 8, 4, 13, 1, 3, 14, 7, 18, 15, 11, 16, 2, 12, 17]


def _ds(labels, n_per=3):
    y = np.repeat(np.asarray(labels), n_per)
    X = np.arange(y.size, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    return Dataset(X_train=X, y_train=y, X_test=X[::-1].copy(), y_test=y[::-1].copy(), name="t")


def test_paper_class_orders():
    s = TaskStream(_ds([c for c in range(1, 13) if c != 8]), 2, 2, seed=42467)
    assert s.class_order.tolist() == HAPT_ORDER and s.num_tasks == 6 and s.num_classes == 11
    s = TaskStream(_ds(range(1, 20)), 2, 2, seed=42467)
    assert s.class_order.tolist() == DSADS_ORDER and s.num_tasks == 10


def test_tasks_remap_and_cumulative_test():
    ds = _ds([c for c in range(1, 13) if c != 8])
    s = TaskStream(ds, 2, 2, seed=42467)
    seen_test = 0
    for t, task in enumerate(s):
        lo = 2 * t
        assert task.t == t and task.seen == min(lo + 2, 11)
        assert task.classes.tolist() == list(range(lo, task.seen))
        assert task.orig_classes.tolist() == HAPT_ORDER[lo:task.seen]
        assert set(task.y_train.tolist()) == set(task.classes.tolist())
        # remapped labels point back to the original ids through class_order
        assert np.array_equal(s.class_order[task.y_train],
                              ds.y_train[np.isin(ds.y_train, task.orig_classes)])
        assert task.y_test.max() == task.seen - 1 and len(task.y_test) == 3 * task.seen
        assert len(task.y_test) > seen_test
        seen_test = len(task.y_test)
    last = s.task(5)
    assert last.classes.tolist() == [10] and last.orig_classes.tolist() == [1]
    with pytest.raises(ValueError):
        s.task(6)
    s2 = TaskStream(ds, 5, 3, seed=0, class_order=list(range(1, 8)) + [9, 10, 11, 12])
    assert s2.num_tasks == 3 and s2.task(2).classes.tolist() == [8, 9, 10]
    with pytest.raises(ValueError):
        TaskStream(ds, 2, 2, seed=0, class_order=[1, 2, 3])


def test_iterate_batches():
    X = np.arange(10)[:, None]
    y = np.arange(10)
    b = list(iterate_batches(X, y, 4, shuffle=False))
    assert [len(yb) for _, yb in b] == [4, 4, 2] and b[2][1].tolist() == [8, 9]
    r1 = [yb.tolist() for _, yb in iterate_batches(X, y, 3, np.random.default_rng(5))]
    r2 = [yb.tolist() for _, yb in iterate_batches(X, y, 3, np.random.default_rng(5))]
    assert r1 == r2 and sorted(sum(r1, [])) == list(range(10)) and sum(r1, []) != list(range(10))
    for xb, yb in iterate_batches(X, y, 3, np.random.default_rng(1)):
        assert np.array_equal(xb[:, 0], yb)
    with pytest.raises(ValueError):
        next(iterate_batches(X, y, 3))


def test_augment_cifar():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 3, 32, 32)).astype(np.uint8)
    xb = normalize_images(img, CIFAR100_MEAN, CIFAR100_STD)
    a1 = augment_cifar(xb, np.random.default_rng(7))
    a2 = augment_cifar(xb, np.random.default_rng(7))
    assert a1.dtype == np.float32 and a1.shape == xb.shape and np.array_equal(a1, a2)
    # no brightness: each output is a (flipped) crop of the zero-padded image
    b = augment_cifar(xb, np.random.default_rng(3), brightness=0.0)
    g = np.random.default_rng(3)
    oy, ox = g.integers(0, 9, 64), g.integers(0, 9, 64)
    fl = g.random(64) < 0.5
    m = np.asarray(CIFAR100_MEAN, np.float32)[:, None, None]
    s = np.asarray(CIFAR100_STD, np.float32)[:, None, None]
    for i in range(0, 64, 7):  # reference: pad, slice, flip one image at a time
        p = np.pad(img[i].astype(np.float32) / 255, ((0, 0), (4, 4), (4, 4)))
        ref = p[:, oy[i]:oy[i] + 32, ox[i]:ox[i] + 32]
        if fl[i]:
            ref = ref[:, :, ::-1]
        np.testing.assert_allclose(b[i], (ref - m) / s, atol=1e-5)
    assert 10 < fl.sum() < 54
    # brightness keeps pixels in [0, 1]
    px = a1 * s + m
    assert px.min() >= -1e-5 and px.max() <= 1 + 1e-5


@pytest.fixture(scope="module")
def hapt():
    return load_dataset("hapt")


def test_embedded_hapt_paper_protocol(hapt):
    d = hapt
    assert d.X_train.shape[1] == 561 and d.X_train.dtype == np.float32
    assert len(d.feature_names) == 561
    assert d.info["train_users"] == [u for u in range(1, 25) if u != 7]
    assert d.info["test_users"] == [25, 26, 27, 29, 30]
    assert sorted(set(d.y_train.tolist())) == [c for c in range(1, 13) if c != 8]
    assert not np.isin(np.r_[d.users_train, d.users_test], [7, 28]).any()
    assert d.X_train.min() == -1 and d.X_train.max() == 1 and np.isfinite(d.X_test).all()
    assert len(d.y_train) + len(d.y_test) > 10000
    s = TaskStream(d, 2, 2, 42467)
    assert s.class_order.tolist() == HAPT_ORDER


def test_embedded_hapt_options():
    b = load_dataset("hapt", basic_only=True, split="seeded", split_seed=3)
    assert sorted(set(b.y_train.tolist())) == [1, 2, 3, 4, 5, 6]
    assert len(b.info["train_users"]) == 23 and len(b.info["test_users"]) == 5
    r = load_dataset("hapt", scale=False, drop_users=(), drop_classes=(), train_users=[1, 2])
    assert r.info["test_users"] == list(range(3, 31)) and 8 in r.y_test
    with pytest.raises(ValueError):
        load_dataset("nope")


def test_cli_info_hapt():
    res = CliRunner().invoke(main, ["data", "info", "hapt"])
    assert res.exit_code == 0, res.output
    assert "561" in res.output and "LIE_TO_STAND" in res.output and "25 26 27 29 30" in res.output


def test_learners_augment_with_their_datasets_statistics():
    """CIFAR-10 runs pad and clip with CIFAR-10's mean/std, CIFAR-100 runs with CIFAR-100's."""
    import intsim
    from intsim.cil import CILConfig, FineTune
    from intsim.data.cifar import CIFAR10_MEAN, CIFAR10_STD
    from intsim.models import FCNet
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (8, 3, 32, 32)).astype(np.uint8)
    xb = normalize_images(img, CIFAR10_MEAN, CIFAR10_STD)
    model = FCNet(4, (4,), intsim.FP(), np.random.default_rng(1))
    for name, mean, std in (("cifar10", CIFAR10_MEAN, CIFAR10_STD),
                            ("cifar100", CIFAR100_MEAN, CIFAR100_STD)):
        learner = FineTune(model, CILConfig.for_dataset(name, "finetune", model="fcnet"),
                           np.random.default_rng(2))
        got = learner._augment()(xb, np.random.default_rng(7))
        want = augment_cifar(xb, np.random.default_rng(7), mean=mean, std=std)
        np.testing.assert_array_equal(got, want)
    # the statistics matter: CIFAR-100's give other pixels (the padding value differs)
    assert not np.array_equal(augment_cifar(xb, np.random.default_rng(7)),
                              augment_cifar(xb, np.random.default_rng(7), mean=CIFAR10_MEAN,
                                            std=CIFAR10_STD))
