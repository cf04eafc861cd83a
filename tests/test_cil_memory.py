"""Herding vs brute-force references, memory reduction, class means, NME."""

import numpy as np
import pytest

from intsim.cil.memory import (ExemplarMemory, class_mean, herding, l2_normalize,
                               nme_predict)


def herding_reference(f, m):
    """Plain-loop herding (PyCIL's algorithm, with deletion of picked rows)."""
    f = [list(map(float, row)) for row in f]
    n, d = len(f), len(f[0])
    mu = [sum(f[i][j] for i in range(n)) / n for j in range(d)]
    remaining = list(range(n))
    s = [0.0] * d
    out = []
    for k in range(1, min(m, n) + 1):
        best, best_i = None, None
        for i in remaining:           # first minimum wins (lowest index)
            dist = sum((mu[j] - (s[j] + f[i][j]) / k) ** 2 for j in range(d)) ** 0.5
            if best is None or dist < best:
                best, best_i = dist, i
        out.append(best_i)
        remaining.remove(best_i)
        s = [s[j] + f[best_i][j] for j in range(d)]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_herding_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(3, 25)), int(rng.integers(1, 6))
    f = l2_normalize(rng.normal(size=(n, d)))
    for m in (1, 3, n, n + 4):
        assert herding(f, m).tolist() == herding_reference(f, m)


def herding_exhaustive(f, m):
    """The exhaustive NumPy herding (every sample's exact distance at every
    step), as herding() computed it before its candidate filter."""
    f = np.asarray(f, dtype=np.float64)
    n = f.shape[0]
    m = min(int(m), n)
    mu = f.mean(axis=0)
    s = np.zeros(f.shape[1])
    taken = np.zeros(n, dtype=bool)
    out = np.empty(m, dtype=np.int64)
    for k in range(1, m + 1):
        d = ((mu - (f + s) / k) ** 2).sum(axis=1)
        d[taken] = np.inf
        i = int(np.argmin(d))
        out[k - 1] = i
        taken[i] = True
        s = s + f[i]
    return out


@pytest.mark.parametrize("n,d,m", [(1500, 64, 400), (400, 561, 200), (700, 130, 700),
                                   (50, 1, 50), (300, 9, 120)])
def test_herding_equals_exhaustive_numpy(n, d, m):
    # real sizes (CIFAR ResNet features, HAPT FCNet width 561, D past NumPy's
    # 128-element pairwise block), all m, and features crowded around the mean
    rng = np.random.default_rng(n + d)
    f = l2_normalize(np.abs(rng.normal(size=(n, d))) + 4.0 * (d > 1))
    assert herding(f, m).tolist() == herding_exhaustive(f, m).tolist()


def test_herding_near_ties_and_duplicates_equal_exhaustive():
    # samples 1e-16..1e-15 apart: the expanded form alone orders them wrongly
    # (checked: with a zero tolerance most of these fail), the exact pass must not
    rng = np.random.default_rng(11)
    for eps in (1e-16, 1e-15, 1e-14):
        base = l2_normalize(rng.normal(size=(40, 16)))
        f = np.concatenate([base, base + eps * rng.normal(size=base.shape), base[:10]])
        for perm in (np.arange(len(f)), rng.permutation(len(f))):
            assert herding(f[perm], len(f)).tolist() == \
                herding_exhaustive(f[perm], len(f)).tolist()
    raw = rng.normal(size=(200, 5)) * 1e3     # not normalised: the tolerance scales
    assert herding(raw, 80).tolist() == herding_exhaustive(raw, 80).tolist()


def test_herding_greedy_step_is_exhaustive_optimum():
    # each step's pick minimises the distance over every unpicked candidate
    rng = np.random.default_rng(7)
    f = l2_normalize(rng.normal(size=(9, 3)))
    idx = herding(f, 5)
    mu = f.mean(0)
    for k in range(1, 6):
        prev = idx[:k - 1]
        cands = [i for i in range(9) if i not in prev]
        d = {i: np.linalg.norm(mu - (f[prev].sum(0) + f[i]) / k) for i in cands}
        assert d[idx[k - 1]] == min(d.values())


def test_herding_first_pick_is_nearest_to_mean_and_no_repeats():
    rng = np.random.default_rng(3)
    f = l2_normalize(rng.normal(size=(40, 4)))
    idx = herding(f, 40)
    assert sorted(idx.tolist()) == list(range(40))
    assert idx[0] == np.argmin(np.linalg.norm(f - f.mean(0), axis=1))


def test_herding_ties_lowest_index_and_bad_input():
    f = np.ones((4, 2)) / np.sqrt(2)
    assert herding(f, 4).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        herding(np.array([[np.nan, 1.0]]), 1)
    with pytest.raises(ValueError):
        herding(np.ones(3), 1)


def test_memory_reduce_keeps_herding_prefix():
    rng = np.random.default_rng(0)
    mem = ExemplarMemory(12)
    X0, X1 = rng.normal(size=(10, 5)), rng.normal(size=(8, 5))
    m = mem.per_class(2)
    assert m == 6
    i0 = mem.add_class(0, X0, X0[:, :3], m)
    mem.add_class(1, X1, X1[:, :3], m)
    assert len(mem) == 12
    full0 = mem.exemplars[0].copy()
    np.testing.assert_array_equal(full0, X0[i0])
    mem.reduce(mem.per_class(3))
    assert len(mem.exemplars[0]) == 4
    np.testing.assert_array_equal(mem.exemplars[0], full0[:4])
    X, y = mem.data()
    assert X.shape == (8, 5) and y.tolist() == [0] * 4 + [1] * 4
    # order of a new herding with smaller m is the prefix of the larger one
    assert herding(l2_normalize(X0[:, :3]), 4).tolist() == i0[:4].tolist()
    st = mem.state_dict()
    mem2 = ExemplarMemory(1)
    mem2.load_state_dict(st)
    assert mem2.total == 12 and np.array_equal(mem2.data()[0], X)


def test_class_mean_and_nme():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(7, 4)) * 3
    mu = class_mean(f)
    ref = (f / np.linalg.norm(f, axis=1, keepdims=True)).mean(0)
    np.testing.assert_allclose(mu, ref / np.linalg.norm(ref), rtol=1e-6)
    assert abs(np.linalg.norm(mu) - 1) < 1e-7
    means = l2_normalize(rng.normal(size=(5, 4)))
    x = rng.normal(size=(30, 4))
    pred = nme_predict(x, means)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    ref_pred = [int(np.argmin([np.sum((xi - m) ** 2) for m in means])) for xi in xn]
    assert pred.tolist() == ref_pred
    # scaling a feature does not change its NME prediction
    assert nme_predict(x * 5.0, means).tolist() == ref_pred
    with pytest.raises(ValueError):
        nme_predict(x[:, :3], means)
