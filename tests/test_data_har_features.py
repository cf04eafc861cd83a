"""Tests for the 561-feature HAR pipeline and the 9-statistics set."""
import numpy as np
import pytest

from intsim.data import har_features as hf
from intsim.data.stats9 import STATS9, stats9, stats9_names

NAMES = hf.feature_names_561()
IDX = {n: i for i, n in enumerate(NAMES)}


def _windows(W=3, T=128, seed=0):
    return np.random.default_rng(seed).standard_normal((W, T, 15))


def test_names_unique_count_and_uci_examples():
    assert len(NAMES) == 561 and len(set(NAMES)) == 561
    for n in ["tBodyAcc-mean()-X", "tBodyAcc-arCoeff()-Z,4", "tBodyAcc-correlation()-Y,Z",
              "tGravityAccMag-arCoeff()4", "fBodyAcc-bandsEnergy()-1,8-X",
              "fBodyGyro-bandsEnergy()-25,48-Z", "fBodyAcc-maxInds-X", "fBodyAccJerkMag-meanFreq()",
              "angle(X,gravityMean)", "angle(tBodyAccMean,gravity)"]:
        assert n in IDX, n
    # Official features.txt order: first / 41st / 201st / 266th / 503rd / 555th.
    assert NAMES[0] == "tBodyAcc-mean()-X" and NAMES[40] == "tGravityAcc-mean()-X"
    assert NAMES[200] == "tBodyAccMag-mean()" and NAMES[265] == "fBodyAcc-mean()-X"
    assert NAMES[502] == "fBodyAccMag-mean()" and NAMES[554] == "angle(tBodyAccMean,gravity)"


def test_vectorised_equals_per_window():
    w = _windows(5)
    full = hf.features_561(w)
    each = np.concatenate([hf.features_561(w[i:i + 1]) for i in range(5)])
    np.testing.assert_allclose(full, each, rtol=1e-12, atol=1e-12)
    assert full.shape == (5, 561) and np.isfinite(full).all()


def test_constant_signal_known_values():
    c = np.array([0.5, -2.0, 3.0])
    w = np.zeros((2, 128, 15))
    w[:, :, 0:3] = c          # body acc
    w[:, :, 3:6] = [0, 0, 1]  # gravity along z
    f = hf.features_561(w)
    for i, a in enumerate("XYZ"):
        assert f[0, IDX[f"tBodyAcc-mean()-{a}"]] == pytest.approx(c[i])
        assert f[0, IDX[f"tBodyAcc-std()-{a}"]] == pytest.approx(0.0, abs=1e-12)
        assert f[0, IDX[f"tBodyAcc-energy()-{a}"]] == pytest.approx(c[i] ** 2)
        assert f[0, IDX[f"tBodyAcc-iqr()-{a}"]] == pytest.approx(0.0, abs=1e-12)
        assert f[0, IDX[f"tBodyAcc-entropy()-{a}"]] == 0.0
        # spectrum of a constant: only DC (bin 0) = c / 1 (|FFT|/N)
        assert f[0, IDX[f"fBodyAcc-max()-{a}"]] == pytest.approx(abs(c[i]))
        assert f[0, IDX[f"fBodyAcc-maxInds-{a}"]] == 0
        assert f[0, IDX[f"fBodyAcc-meanFreq()-{a}"]] == pytest.approx(0.0, abs=1e-9)
        assert f[0, IDX[f"fBodyAcc-bandsEnergy()-1,8-{a}"]] == pytest.approx(c[i] ** 2)
        assert f[0, IDX[f"fBodyAcc-bandsEnergy()-9,16-{a}"]] == pytest.approx(0.0, abs=1e-12)
    assert f[0, IDX["tBodyAcc-sma()"]] == pytest.approx(np.abs(c).sum())
    assert f[0, IDX["tBodyAccMag-mean()"]] == pytest.approx(np.linalg.norm(c))
    assert f[0, IDX["tBodyAcc-correlation()-X,Y"]] == 0.0
    assert f[0, IDX["tBodyAccJerk-mean()-X"]] == 0.0
    assert f[0, IDX["angle(Z,gravityMean)"]] == pytest.approx(0.0, abs=1e-7)
    assert f[0, IDX["angle(X,gravityMean)"]] == pytest.approx(np.pi / 2)
    assert f[0, IDX["angle(tBodyGyroMean,gravityMean)"]] == pytest.approx(np.pi / 2)  # zero vector
    ang = np.arccos(c[2] / np.linalg.norm(c))
    assert f[0, IDX["angle(tBodyAccMean,gravity)"]] == pytest.approx(ang)
    assert np.isfinite(f).all()


@pytest.mark.parametrize("k", [3, 10, 25])
def test_sinusoid_maxinds_meanfreq(k):
    t = np.arange(128)
    w = np.zeros((1, 128, 15))
    w[0, :, 0] = np.sin(2 * np.pi * k * t / 128)       # body acc X: bin k exactly
    w[0, :, 9] = 2 * np.cos(2 * np.pi * k * t / 128)    # gyro X
    f = hf.features_561(w)[0]
    assert f[IDX["fBodyAcc-maxInds-X"]] == k
    assert f[IDX["fBodyAcc-meanFreq()-X"]] == pytest.approx(k, abs=1e-9)
    assert f[IDX["fBodyGyro-maxInds-X"]] == k
    assert f[IDX["fBodyAcc-max()-X"]] == pytest.approx(0.5)   # |FFT|/N of a unit sine
    assert f[IDX["tBodyAcc-energy()-X"]] == pytest.approx(0.5)
    band = next(i for i, (lo, hi) in enumerate(hf.BANDS[:8]) if lo - 1 <= k <= hi - 1)
    lo, hi = hf.BANDS[band]
    assert f[IDX[f"fBodyAcc-bandsEnergy()-{lo},{hi}-X"]] == pytest.approx(0.25)


def test_burg_recovers_ar2():
    rng = np.random.default_rng(1)
    n = 20000
    e = rng.standard_normal(n)
    x = np.zeros(n)
    for i in range(2, n):  # reference AR(2) process: x = 0.6 x[-1] - 0.3 x[-2] + e
        x[i] = 0.6 * x[i - 1] - 0.3 * x[i - 2] + e[i]
    a = hf.burg_ar(x[None], 4)[0]
    np.testing.assert_allclose(a, [-0.6, 0.3, 0.0, 0.0], atol=0.03)
    assert np.array_equal(hf.burg_ar(np.zeros((2, 3, 50)), 4), np.zeros((2, 3, 4)))


def test_burg_matches_loop_reference():
    x = np.random.default_rng(2).standard_normal((4, 64))

    def ref(s, p):  # textbook Burg, one series
        ef, eb, a = s.copy(), s.copy(), np.array([1.0])
        for _ in range(p):
            efp, ebp = ef[1:], eb[:-1]
            k = -2 * ebp @ efp / (efp @ efp + ebp @ ebp)
            ef, eb = efp + k * ebp, ebp + k * efp
            a = np.append(a, 0) + k * np.append(0, a[::-1])
        return a[1:]
    got = hf.burg_ar(x, 4)
    for i in range(4):
        np.testing.assert_allclose(got[i], ref(x[i], 4), rtol=1e-10, atol=1e-12)


def test_windows_and_prepare():
    assert hf.window_starts(10, 10 + 127).tolist() == [10]
    assert hf.window_starts(0, 126).size == 0
    assert hf.window_starts(5, 5 + 128 + 64 + 63).tolist() == [5, 69, 133]
    rng = np.random.default_rng(3)
    acc = rng.standard_normal((400, 3)) * 0.1 + [0, 0, 1]
    gyro = rng.standard_normal((400, 3))
    p = hf.prepare_signals(acc, gyro)
    assert p.shape == (400, 15) and np.isfinite(p).all()
    # gravity is the slow part: its mean is close to (0, 0, 1); body + gravity = filtered acc
    assert abs(p[:, 5].mean() - 1) < 0.05 and abs(p[:, 2].mean()) < 0.05
    w = hf.cut_windows(p, np.array([0, 64]))
    assert w.shape == (2, 128, 15) and np.array_equal(w[1], p[64:192])
    with pytest.raises(ValueError):
        hf.prepare_signals(acc[:, :2], gyro[:, :2])
    bad = acc.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        hf.prepare_signals(bad, gyro)


def test_stats9_known_values():
    w = np.zeros((2, 5, 2))
    w[0, :, 0] = [1, 2, 3, 4, 5]
    w[:, :, 1] = 7.0
    f = stats9(w)
    assert f.shape == (2, 18)
    np.testing.assert_allclose(f[0, :9], [3, np.sqrt(2.5), 1, 5, 3, 2, 4, 0, 1.7])
    np.testing.assert_allclose(f[0, 9:], [7, 0, 7, 7, 7, 7, 7, 0, 0])
    names = stats9_names(["a", "b"])
    assert names[:2] == ["a-mean", "a-std"] and names[9] == "b-mean" and len(STATS9) == 9
    with pytest.raises(ValueError):
        stats9(np.full((1, 4, 2), np.nan))
