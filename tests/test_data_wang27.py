"""Jindong Wang's 27 per-channel features (intsim.data.wang27), the DSADS/PAMAP2
readers' default pipeline, and ``intsim data build-dsads`` / ``build-pamap2``."""
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.io import loadmat

from intsim.cli import main
from intsim.data import load_dataset
from intsim.data.dsads import DSADS_SENSORS, read_dsads
from intsim.data.pamap2 import PAMAP2_COLUMNS, read_pamap2
from intsim.data.wang27 import WANG27, magnitudes, mapminmax, wang27, wang27_names
from test_data_loaders import write_dsads, write_pamap2

F = {n: i for i, n in enumerate(WANG27)}
SHAPE_UNDEF = ["shape_mean", "shape_std", "shape_skew", "shape_kurt"]


# ------------------------------------------------ obviously-correct reference
def ref27(x):
    """The 27 features of one 1-D window, written straight from the recipe
    (full numpy FFT, Python loops, Python's stable sort, Counter for the mode)."""
    x = [float(v) for v in x]
    N = len(x)
    mu = sum(x) / N
    sd = (sum((v - mu) ** 2 for v in x) / (N - 1)) ** 0.5
    cnt = Counter(x)
    top_count = max(cnt.values())
    mode = min(v for v, c in cnt.items() if c == top_count)
    mcr = sum(1 for i in range(1, N) if (x[i - 1] - mu) * (x[i] - mu) < 0)
    A = [abs(c) for c in np.fft.fft(np.array(x))]
    order = sorted(range(1, N), key=lambda k: A[k])[-5:]
    energy = sum(a * a for a in A[1:]) / (N - 1)
    M = N // 2
    P = A[1:M + 1]
    S = sum(P)
    smu = sum(m * p for m, p in zip(range(1, M + 1), P)) / S
    ssd = (sum((m - smu) ** 2 * p for m, p in zip(range(1, M + 1), P)) / S) ** 0.5
    sskew = sum(((m - smu) / ssd) ** 3 * p for m, p in zip(range(1, M + 1), P)) / S
    skurt = sum(((m - smu) / ssd) ** 4 * p for m, p in zip(range(1, M + 1), P)) / S - 3
    am = sum(P) / M
    asd = (sum((p - am) ** 2 for p in P) / M) ** 0.5
    askew = sum(((p - am) / asd) ** 3 for p in P) / M
    akurt = sum(((p - am) / asd) ** 4 for p in P) / M - 3
    return np.array([mu, sd, min(x), max(x), mode, max(x) - min(x), mcr, A[0],
                     *[A[k] for k in order], *[k + 1 for k in order], energy,
                     smu, ssd, sskew, skurt, am, asd, askew, akurt])


def _fold(pos, N):
    """MATLAB peak position -> frequency bin min(k, N-k) (mirror pairs fold together)."""
    k = np.asarray(pos, dtype=np.int64) - 1
    return np.minimum(k, N - k)


def _check_against_ref(x, got):
    """got: wang27 row (27,) of window x (1-D); compare with ref27 (1e-9 relative
    to each value, or to the spectrum's largest magnitude for spectral values)."""
    want = ref27(x)
    N = len(x)
    amax = max(1.0, float(np.abs(want[7:13]).max()))
    spectral = {"dc", "peak1", "peak2", "peak3", "peak4", "peak5", "amp_mean", "amp_std"}
    for i, name in enumerate(WANG27):
        if name.startswith("peakpos"):
            continue
        scale = amax if name in spectral else amax ** 2 if name == "energy" else abs(want[i])
        assert abs(got[i] - want[i]) <= 1e-9 * max(1.0, scale), (name, got[i], want[i])
    # positions: equal frequencies slot by slot (the order inside a mirror pair is
    # defined here but rounding-dependent in the full-FFT reference)
    np.testing.assert_array_equal(_fold(got[13:18], N), _fold(want[13:18], N))


# ------------------------------------------------------------- the features
@pytest.mark.parametrize("N", [125, 64, 37, 512])
def test_random_windows_match_reference(N):
    rng = np.random.default_rng(N)
    x = rng.standard_normal((4, N, 3)) * [1.0, 5.0, 0.2] + [0.0, 9.81, -3.0]
    x[1, :, 2] = np.round(x[1, :, 2], 1)           # repeated values: a real mode
    f = wang27(x).reshape(4, 3, 27)
    for w in range(4):
        for c in range(3):
            _check_against_ref(x[w, :, c], f[w, c])


@pytest.mark.parametrize("N,k,amp,off", [(125, 7, 1.0, 0.0), (125, 20, 2.5, 9.81),
                                         (512, 13, 0.3, -1.0)])
def test_sine_known_frequency(N, k, amp, off):
    t = np.arange(N)
    phi = 0.3
    x = off + amp * np.sin(2 * np.pi * k * t / N + phi)
    f = wang27(x[None, :, None])[0]
    assert f[F["mean"]] == pytest.approx(off, abs=1e-12)
    assert f[F["std"]] == pytest.approx(amp * np.sqrt(N / 2 / (N - 1)), rel=1e-9)
    assert f[F["range"]] == pytest.approx(f[F["max"]] - f[F["min"]])
    # zero crossings of sin(phase) for phase in (phi, 2 pi k (N-1)/N + phi)
    crossings = int(np.floor((2 * np.pi * k * (N - 1) / N + phi) / np.pi))
    assert f[F["mcr"]] == crossings
    assert f[F["dc"]] == pytest.approx(N * abs(off), abs=1e-9)
    # the two largest peaks: bins k and N-k, |FFT| = amp N / 2; exact mirror tie, bin k first
    assert f[F["peak4"]] == f[F["peak5"]] == pytest.approx(amp * N / 2, rel=1e-12)
    assert (f[F["peakpos4"]], f[F["peakpos5"]]) == (k + 1, N - k + 1)
    assert f[F["peak3"]] < 1e-9 * N
    assert f[F["energy"]] == pytest.approx(2 * (amp * N / 2) ** 2 / (N - 1), rel=1e-9)
    assert f[F["shape_mean"]] == pytest.approx(k, abs=1e-9)
    assert f[F["shape_std"]] < 1e-4
    assert f[F["amp_mean"]] == pytest.approx(amp * N / 2 / (N // 2), rel=1e-9)
    # peaks="half": bins 1..N//2 only, so the 2 largest are two distinct frequencies
    y = x + 0.5 * amp * np.cos(2 * np.pi * 3 * t / N)
    h = wang27(y[None, :, None], peaks="half")[0]
    assert (h[F["peakpos4"]], h[F["peakpos5"]]) == (4, k + 1)
    assert h[F["peak4"]] == pytest.approx(amp * N / 4, rel=1e-9)


@pytest.mark.parametrize("N", [125, 128])
def test_constant_window(N):
    c = -2.75
    f = wang27(np.full((1, N, 1), c))[0]
    g = wang27(np.full((1, N, 1), c), undefined=np.nan)[0]
    exp = {"mean": c, "std": 0.0, "min": c, "max": c, "mode": c, "range": 0.0, "mcr": 0,
           "dc": N * abs(c), "energy": 0.0, "amp_mean": 0.0, "amp_std": 0.0}
    for name, v in exp.items():
        assert f[F[name]] == pytest.approx(v, abs=1e-12), name
    assert (f[8:13] == 0).all()
    assert f[13:18].tolist() == [N - 4, N - 3, N - 2, N - 1, N]     # MATLAB sort of zeros
    for name in SHAPE_UNDEF + ["amp_skew", "amp_kurt"]:
        assert f[F[name]] == 0.0 and np.isnan(g[F[name]]), name
    assert np.isfinite(np.delete(g, [F[n] for n in SHAPE_UNDEF + ["amp_skew", "amp_kurt"]])).all()


@pytest.mark.parametrize("N", [125, 100])
def test_ramp(N):
    t = np.arange(N, dtype=np.float64)
    x = 3.0 + 2.0 * t
    f = wang27(x[None, :, None])[0]
    assert f[F["mean"]] == 3.0 + (N - 1)
    assert f[F["std"]] == pytest.approx(2.0 * np.sqrt(N * (N + 1) / 12), rel=1e-12)
    assert f[F["mode"]] == 3.0                        # all distinct: the smallest
    assert f[F["range"]] == 2.0 * (N - 1)
    # odd N: the middle sample equals the mean, so neither neighbouring product is < 0
    assert f[F["mcr"]] == (0 if N % 2 else 1)
    assert f[F["dc"]] == pytest.approx(abs(x.sum()))
    _check_against_ref(x, f)


def test_mode_ties_and_decimals():
    w = np.array([[3, 1, 3, 1, 2, 7, 8], [2, 2, 5, 5, 5, 9, 0], [4, 3, 2, 1, 0, -1, -2],
                  [0.11, 0.52, 0.31, 0.29, 0.3, 0.1, 0.5]], dtype=np.float64)
    f = wang27(w[:, :, None]).reshape(4, 27)
    assert f[:, F["mode"]].tolist() == [1, 5, -2, 0.1]
    r = wang27(w[:, :, None], mode_decimals=1).reshape(4, 27)
    assert r[3, F["mode"]] == 0.3                     # 0.31, 0.29, 0.3 -> 0.3 three times
    rng = np.random.default_rng(5)
    ints = rng.integers(-3, 4, (50, 20)).astype(np.float64)
    got = wang27(ints[:, :, None])[:, F["mode"]]
    for row, g in zip(ints, got):
        cnt = Counter(row.tolist())
        top = max(cnt.values())
        assert g == min(v for v, c in cnt.items() if c == top)


def test_options_ddof_and_fft_norm():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 64, 2))
    a = wang27(x)
    b = wang27(x, ddof=0, fft_norm="forward")
    np.testing.assert_allclose(b[:, F["std"]], x[:, :, 0].std(axis=1))
    n = 64
    for name in ("dc", "peak1", "peak5", "amp_mean", "amp_std"):
        np.testing.assert_allclose(b[:, F[name]], a[:, F[name]] / n, rtol=1e-12)
    np.testing.assert_allclose(b[:, F["energy"]], a[:, F["energy"]] / n ** 2, rtol=1e-12)
    for name in ("shape_mean", "shape_skew", "amp_kurt", "peakpos3", "mcr", "mode"):
        np.testing.assert_allclose(b[:, F[name]], a[:, F[name]], rtol=1e-9)
    with pytest.raises(ValueError, match="peaks"):
        wang27(x, peaks="both")
    with pytest.raises(ValueError, match="NaN"):
        wang27(np.full((1, 10, 1), np.nan))
    with pytest.raises(ValueError, match="peak bins"):
        wang27(np.zeros((1, 5, 1)))


def test_vectorised_equals_per_window_loop_bit_for_bit():
    rng = np.random.default_rng(11)
    for N in (125, 512, 37):
        x = (rng.standard_normal((17, N, 5)) * rng.uniform(0.1, 20, (17, 1, 5))
             + rng.uniform(-10, 10, (17, 1, 5)))
        x[2, :, 1] = 4.25                               # constant channel
        x[4, :, 3] = np.round(x[4, :, 3])               # ties for the mode
        for opts in ({}, {"peaks": "half", "mode_decimals": 1, "ddof": 0}):
            full = wang27(x, **opts)
            per_window = np.concatenate([wang27(x[i:i + 1], **opts) for i in range(17)])
            per_channel = np.stack([np.concatenate([wang27(x[i:i + 1, :, j:j + 1], **opts)[0]
                                                    for j in range(5)]) for i in range(17)])
            assert full.tobytes() == per_window.tobytes() == per_channel.tobytes()
            assert np.isfinite(full).all()
            # channel-major: channel j's 27 values are columns 27 j .. 27 j + 26
            assert full[:, 27:54].tobytes() == wang27(x[:, :, 1:2], **opts).tobytes()


def test_magnitudes_names_mapminmax():
    x = np.array([[3.0, 4.0, 0.0, 1.0, 2.0, 2.0]])
    np.testing.assert_array_equal(magnitudes(x), [[5.0, 3.0]])
    with pytest.raises(ValueError):
        magnitudes(np.zeros((2, 4)))
    names = wang27_names(DSADS_SENSORS)
    assert len(names) == 405 == len(set(names))
    assert names[:2] == ["T_acc-mean", "T_acc-std"] and names[81] == "RA_acc-mean"
    assert names[13] == "T_acc-peakpos1" and names[404] == "LL_mag-amp_kurt"
    X = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, -4.0], [2.0, 5.0, 8.0]])
    Y = mapminmax(X)
    np.testing.assert_allclose(Y[:, 0], [-1, 1, 0])
    assert (Y[:, 1] == -1).all()                      # constant column -> lo (MATLAB)
    np.testing.assert_allclose(Y[:, 2], [2 * (2 + 4) / 12 - 1, -1, 1])
    rng = np.random.default_rng(0)
    Z = mapminmax(rng.standard_normal((200, 30)) * 1e3 + 7)
    assert Z.min() == -1 and Z.max() == 1
    assert (Z.min(axis=0) == -1).all() and (Z.max(axis=0) == 1).all()


# ------------------------------------------------------------- the readers
def test_read_dsads_default_is_wang27(tmp_path):
    write_dsads(tmp_path)
    f = read_dsads(tmp_path)
    assert f["X"].shape == (30, 405) and f["feature_names"][0] == "T_acc-mean"
    assert f["segment"].tolist() == [1, 2] * 15
    x = np.loadtxt(tmp_path / "data/a02/p3/s02.txt", delimiter=",")
    row = 10 + 2 * 2 + 1
    # sensor blocks T_acc, RA_gyro, LL_mag <- raw columns 0-2, 12-14, 42-44
    for blk, cols in ((0, slice(0, 3)), (4, slice(12, 15)), (14, slice(42, 45))):
        mag = np.sqrt((x[:, cols] ** 2).sum(axis=1))
        _check_against_ref(mag, f["X"][row, 27 * blk:27 * blk + 27])
    s9 = read_dsads(tmp_path, features="stats9")
    assert s9["X"].shape == (30, 405) and s9["feature_names"][0] == "T_xacc-mean"
    with pytest.raises(ValueError, match="features"):
        read_dsads(tmp_path, features="stats10")
    h = read_dsads(tmp_path, feature_opts={"peaks": "half"})
    assert (h["X"][:, 13:18] <= 63).all()
    d = load_dataset("dsads", tmp_path)           # what `intsim train --data RAW` uses
    assert d.feature_names[0] == "T_acc-mean" and d.X_train.shape[1] == 405


def _pamap_window(path, start, window, fill=True):
    """Rows start..start+window-1 of a subject file's 9 sensor magnitudes."""
    arr = np.loadtxt(path)
    sig = arr[:, PAMAP2_COLUMNS]
    if fill:
        t = np.arange(len(sig))
        for j in range(sig.shape[1]):
            bad = np.isnan(sig[:, j])
            if bad.any():
                sig[bad, j] = np.interp(t[bad], t[~bad], sig[~bad, j])
    else:
        sig = sig[~np.isnan(sig).any(axis=1)]
    w = sig[start:start + window]
    return np.sqrt(w[:, 0::3] ** 2 + w[:, 1::3] ** 2 + w[:, 2::3] ** 2)


def test_read_pamap2_default_is_wang27(tmp_path):
    write_pamap2(tmp_path)
    f = read_pamap2(tmp_path, window=100, step=50)
    assert f["X"].shape == (54, 243) and np.isfinite(f["X"]).all()
    assert f["feature_names"][0] == "hand_acc16-mean"
    assert f["feature_names"][242] == "ankle_mag-amp_kurt"
    assert f["y"][:9].tolist() == [1] * 5 + [4] * 3 + [24] and f["start"][:2].tolist() == [50, 100]
    # window 1 of subject 1 (rows 100..199) holds the interpolated gap at rows 100..102
    mags = _pamap_window(tmp_path / "Protocol/subject101.dat", 100, 100)
    for s in (0, 4, 8):
        _check_against_ref(mags[:, s], f["X"][1, 27 * s:27 * s + 27])
    d = read_pamap2(tmp_path, window=100, step=50, nan="drop")
    # dropping rows 100..102 leaves a 297-row run of activity 1: 4 windows, not 5
    assert d["X"].shape == (48, 243) and d["y"][:8].tolist() == [1] * 4 + [4] * 3 + [24]
    assert d["start"][:2].tolist() == [50, 100]
    mags = _pamap_window(tmp_path / "Protocol/subject101.dat", 100, 100, fill=False)
    _check_against_ref(mags[:, 0], d["X"][1, :27])
    assert not np.array_equal(d["X"][1, :27], f["X"][1, :27])
    s9 = read_pamap2(tmp_path, window=100, step=50, features="stats9")
    assert s9["X"].shape == (54, 243) and s9["feature_names"][0] == "hand_acc16x-mean"
    with pytest.raises(ValueError, match="nan"):
        read_pamap2(tmp_path, nan="zero")
    ds = load_dataset("pamap2", tmp_path, window=100, step=50)
    assert ds.feature_names[0] == "hand_acc16-mean" and ds.X_train.shape[1] == 243


# ------------------------------------------------------------- the commands
def _run(args):
    return CliRunner().invoke(main, ["data", *args])


def test_build_dsads_csv_and_mat(tmp_path):
    raw = write_dsads(tmp_path / "raw", acts=(1, 2, 19), subjects=(1, 2, 8), segs=(1, 2, 60))
    r = _run(["build-dsads", str(raw), str(tmp_path / "dsads.csv")])
    assert r.exit_code == 0, r.output + r.stderr
    assert "segments 27/27" in r.stderr and "wrote" in r.stdout and "27 rows x 408" in r.stdout
    r = _run(["build-dsads", str(raw), str(tmp_path / "dsads.mat")])
    assert r.exit_code == 0, r.stderr
    csv = np.loadtxt(tmp_path / "dsads.csv", delimiter=",")
    first = (tmp_path / "dsads.csv").read_text().splitlines()[0].split(",")
    assert len(first) == 408 and first[-3:] == ["1", "1", "1"]      # no header, integer tails
    mat = loadmat(tmp_path / "dsads.mat")["data_dsads"]
    assert mat.shape == csv.shape == (27, 408) and mat.dtype == np.float64
    assert mat.tobytes() == csv.tobytes()                           # the CSV holds the same doubles
    X = mat[:, :405]
    assert X.min() >= -1 and X.max() <= 1
    assert (X.min(axis=0) == -1).all()
    np.testing.assert_array_equal(mat[:, 405], [1, 2, 60] * 9)        # activity sequence
    np.testing.assert_array_equal(mat[:, 406], np.repeat([1, 2, 19], 9))
    np.testing.assert_array_equal(mat[:, 407], np.tile(np.repeat([1, 2, 8], 3), 3))
    np.testing.assert_array_equal(X, mapminmax(read_dsads(raw)["X"]))
    # QCIL's reading: drop column 405, then label = 405, subject = 406, 405 features
    q = np.delete(csv, 405, axis=1)
    assert q.shape[1] - 2 == 405 and set(q[:, 405]) == {1, 2, 19} and set(q[:, 406]) == {1, 2, 8}


def test_build_pamap2_csv_and_mat(tmp_path):
    raw = write_pamap2(tmp_path / "raw", subjects=(1, 3, 9))
    out = tmp_path / "pamap.mat"
    r = _run(["build-pamap2", str(raw), str(out), "--window", "100", "--step", "50"])
    assert r.exit_code == 0, r.output + r.stderr
    assert "subjects 3/3" in r.stderr and "27 rows x 245" in r.stdout
    mat = loadmat(out)["data_pamap"]
    assert mat.shape == (27, 245)
    assert mat[:, :243].min() == -1 and mat[:, :243].max() <= 1
    np.testing.assert_array_equal(mat[:, 243], [1] * 5 + [4] * 3 + [24] * 1 + [1] * 5 + [4] * 3
                                  + [24] + [1] * 5 + [4] * 3 + [24])
    np.testing.assert_array_equal(mat[:, 244], np.repeat([1, 3, 9], 9))
    r = _run(["build-pamap2", str(raw), str(tmp_path / "pamap.csv"), "--window", "100",
              "--step", "50", "--nan", "drop"])
    assert r.exit_code == 0, r.stderr
    csv = np.loadtxt(tmp_path / "pamap.csv", delimiter=",")
    assert csv.shape == (24, 245) and np.abs(csv[:, :243]).max() <= 1   # 4 windows of label 1
    np.testing.assert_array_equal(csv[:, 244], np.repeat([1, 3, 9], 8))


@pytest.mark.parametrize("cmd,args,words", [
    ("build-dsads", ["OUT.txt"], "must end in .mat or .csv"),
    ("build-pamap2", ["OUT.npz"], "must end in .mat or .csv"),
    ("build-pamap2", ["OUT.mat"], "no labelled run holds a full 512-sample window"),
    ("build-dsads", ["nodir/OUT.csv"], "cannot write"),
    ("build-dsads", ["EMPTY", "OUT.csv"], "no DSADS segment files"),
    ("build-pamap2", ["EMPTY", "OUT.csv"], "no PAMAP2"),
])
def test_build_errors_one_line(tmp_path, cmd, args, words):
    write_dsads(tmp_path / "ds", acts=(1,), subjects=(1,), segs=(1,))
    write_pamap2(tmp_path / "pm", subjects=(1,))
    (tmp_path / "EMPTY").mkdir()
    raw = [] if args[0] == "EMPTY" else [str(tmp_path / ("ds" if cmd == "build-dsads" else "pm"))]
    full = raw + [str(tmp_path / a) for a in args]
    r = _run([cmd, *full])
    assert r.exit_code == 2, r.output + r.stderr
    err = [ln for ln in r.stderr.splitlines() if not ln.startswith("  ")]   # progress lines
    assert len(err) == 1 and err[0].startswith("intsim: error:") and words in err[0]
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "OUT.csv").exists()


def test_data_info_on_raw_dsads(tmp_path):
    raw = write_dsads(tmp_path / "raw")
    r = CliRunner().invoke(main, ["data", "info", "dsads", "--data", str(raw)])
    assert r.exit_code == 0, r.stderr
    assert "features per sample: 405" in r.stdout


def test_train_on_raw_dsads_uses_405_wang27_features(tmp_path):
    import json
    raw = write_dsads(tmp_path / "raw")
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--dataset", "dsads", "--data", str(raw), "--arith",
                                  "fp", "--epochs", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output + r.stderr
    assert json.loads((out / "results.json").read_text())["run"]["in_shape"] == [405]
