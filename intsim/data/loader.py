"""The registered datasets' loaders, HAR subject splits and scaling.

HAR protocol (docs/paper.md section 9), all exposed as options:
  - removals: HAPT drops users 7, 28 and class 8; PAMAP2 drops users 3, 4, 9
    and class 24; DSADS keeps everything (options drop_users, drop_classes;
    keep_classes keeps only the listed classes, e.g. HAPT basic_only=True
    keeps activities 1..6 for a UCI-HAR-style check);
  - split by subject: n_train = ceil(train_frac * n_subjects), train_frac 0.8;
    split="sorted" (default) gives the n_train smallest user ids to training,
    split="seeded" a np.random.default_rng(split_seed) permutation of the ids,
    split="paper" the released code's random.Random(split_seed).sample of the
    subjects in file order (common.subject_split; docs/data.md);
    train_users=[...] sets the training subjects explicitly. For HAPT the
    sorted split trains on users 1-6, 8-24 and tests on 25, 26, 27, 29, 30;
    split="within-subject" instead holds out samples: of each subject's windows
    of each class, the first ceil(train_frac * n) in file order train and the
    rest test (common.within_subject_split; the domain-incremental scenario);
  - scale="train-minmax" (default; True) min-max scales each feature to
    [-1, 1] with the training subjects' min/max, test values not clipped;
    scale="none" (False) keeps the values as read. Raw windows (N, C, L)
    (features="raw") scale per channel (common.minmax_scale_channels).
Layouts: the official downloads (folder or zip), and the authors' files
(intsim.data.authors: dsads.csv/.mat, pamap.mat/.csv, hapt_combined.csv),
auto-detected when the path is such a file or a folder holding one.
Images: cifar100/cifar10 give normalised float32 NCHW by default (docs/paper.md
sec 11 mean/std; normalize=False keeps uint8); mnist/fashion-mnist give float32
in [0, 1] (normalize=False keeps uint8).
"""
from __future__ import annotations

import os

import numpy as np

from .authors import find_authors_file, read_authors
from .cifar import (CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD, normalize_images,
                    read_cifar)
from .common import (SCALES, Dataset, first_appearance, minmax_scale, minmax_scale_channels,
                     subject_split, within_subject_split)
from .dsads import read_dsads, read_dsads_raw_windows
from .embedded import read_hapt_npz
from .hapt import read_hapt, read_hapt_raw_windows
from .idx import FASHION_CLASSES, MNIST_CLASSES, read_mnist_like
from .pamap2 import read_pamap2, read_pamap2_raw_windows
from .registry import DATASETS, DatasetSpec, dataset_spec, register_dataset
from .synthetic import synthetic_dataset

__all__ = ["DATASETS", "HAR_DEFAULTS", "load_dataset", "har_dataset"]

#: what a HAR sample is: "vector" (the dataset's feature vector: HAPT-561, ...) or "raw"
#: (a window of the raw accelerometer and gyroscope signals, (channels, samples): HAPT
#: (6, 128), DSADS (30, 125), PAMAP2 (18, 512); the datasets with a raw_window_model)
HAR_FEATURES = ("vector", "raw")

HAR_DEFAULTS = {"hapt": {"drop_users": (7, 28), "drop_classes": (8,)},
                "dsads": {"drop_users": (), "drop_classes": ()},
                "pamap2": {"drop_users": (3, 4, 9), "drop_classes": (24,)}}


def har_dataset(name: str, feats: dict, *, drop_users=None, drop_classes=None,
                keep_classes=None, train_frac: float = 0.8, split: str = "sorted",
                split_seed: int = 0, train_users=None, scale="train-minmax") -> Dataset:
    """Apply removals, the subject split and scaling to HAR features.

    feats: dict with X (N, F), y (N,), users (N,) in file order, feature_names,
    class_names, and optionally origin, layout (recorded in info).
    drop_users / drop_classes default to HAR_DEFAULTS[name].
    split: "sorted" | "seeded" | "paper" (common.subject_split, seed split_seed), or
        "within-subject" (common.within_subject_split: every subject trains and tests).
    scale: "train-minmax" | "none" (True / False are accepted for these).
    info records the subjects of each split (train_users, test_users, sorted),
    the subjects in file order (subject_order), split, split_seed, scale,
    origin and layout.
    """
    if isinstance(scale, bool):
        scale = "train-minmax" if scale else "none"
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    dflt = HAR_DEFAULTS.get(name, {"drop_users": (), "drop_classes": ()})
    drop_users = dflt["drop_users"] if drop_users is None else drop_users
    drop_classes = dflt["drop_classes"] if drop_classes is None else drop_classes
    X, y, u = np.asarray(feats["X"]), np.asarray(feats["y"], np.int64), np.asarray(feats["users"], np.int64)
    keep = ~np.isin(u, np.asarray(drop_users, np.int64)) & ~np.isin(y, np.asarray(drop_classes, np.int64))
    if keep_classes is not None:
        keep &= np.isin(y, np.asarray(keep_classes, np.int64))
    X, y, u = X[keep], y[keep], u[keep]
    if not y.size:
        raise ValueError(f"{name}: no samples left after the removals")
    if split == "within-subject" and train_users is None:
        tr = within_subject_split(y, u, train_frac)
        tr_ids, te_ids = np.unique(u[tr]), np.unique(u[~tr])
    else:
        tr_ids, te_ids = subject_split(u, train_frac, mode=split, seed=split_seed,
                                       train_users=train_users)
        tr = np.isin(u, tr_ids)
    Xtr, Xte = X[tr], X[~tr]
    if scale == "train-minmax" and X.ndim == 3:
        Xtr, Xte = minmax_scale_channels(Xtr, Xte)
    elif scale == "train-minmax":
        Xtr, Xte = minmax_scale(Xtr, Xte)
    else:
        Xtr, Xte = Xtr.astype(np.float32), Xte.astype(np.float32)
    classes = np.unique(y)
    names = {int(c): feats["class_names"].get(int(c), str(c)) for c in classes}
    info = {"train_users": tr_ids.tolist(), "test_users": te_ids.tolist(),
            "drop_users": list(drop_users), "drop_classes": list(drop_classes),
            "subject_order": first_appearance(u),
            "scaled": scale != "none", "scale": scale,
            "split": split if train_users is None else "explicit",
            "split_seed": int(split_seed) if train_users is None and split in ("paper", "seeded")
            else None,
            "origin": feats.get("origin", ""), "layout": feats.get("layout", "")}
    return Dataset(X_train=Xtr, y_train=y[tr], X_test=Xte, y_test=y[~tr],
                   users_train=u[tr], users_test=u[~tr],
                   feature_names=list(feats["feature_names"]), name=name,
                   class_names=names, info=info)


#: what the official download must hold for features=raw (for error messages)
_RAW_DOWNLOADS = {"hapt": "a folder or zip holding RawData/",
                  "dsads": "a folder or zip holding data/aAA/pP/sSS.txt",
                  "pamap2": "a folder or zip holding Protocol/subject1XX.dat"}


def _raw_windows(name: str, path, read, **ro) -> dict:
    """The raw windows ``read(path, **ro)`` of dataset ``name``'s official download
    (X (N, channels, samples)), layout "raw-windows". The authors' feature files hold
    no signals: ``path`` being one, or a folder holding one but no official layout,
    is a one-line ValueError that says where --data must point."""
    found = find_authors_file(name, path)
    refusal = (f"{found}: the authors' feature file holds no raw signals; for features=raw "
               f"point --data at the official {name.upper()} download ({_RAW_DOWNLOADS[name]})")
    if found is not None and os.path.isfile(os.fspath(path)):
        raise ValueError(refusal)
    try:
        feats = read(path, **ro)
    except FileNotFoundError:
        if found is None:
            raise
        raise ValueError(refusal) from None
    feats.setdefault("origin", os.fspath(path))
    feats["layout"] = "raw-windows"
    return feats


def _hapt_raw_windows(path):
    if path is None or os.fspath(path).endswith(".npz"):
        raise FileNotFoundError(f"features=raw reads the HAPT raw download (--data FOLDER or "
                                f"zip with RawData/), not {path or 'the embedded features'}")
    return _raw_windows("hapt", path, read_hapt_raw_windows)


def _hapt_features(path, source="auto"):
    if path is None:
        feats = read_hapt_npz()
        feats["layout"] = "embedded"
        return feats
    if os.fspath(path).endswith(".npz"):
        feats = read_hapt_npz(path)
        feats["layout"] = "npz"
        return feats
    if source == "authors" or source == "auto":
        found = find_authors_file("hapt", path)
        if found is not None:
            return read_authors("hapt", found)
        if source == "authors":
            raise FileNotFoundError(f"{path}: no hapt_combined.csv (the authors' HAPT file)")
    feats = read_hapt(path, source=source)
    feats["layout"] = str(feats.get("origin", "")).split(":", 1)[0]   # raw | official561
    return feats


def load_dataset(name: str, path=None, **opts) -> Dataset:
    """Load a registered dataset by name (see DATASETS) from path (folder / archive).

    hapt: path None -> the shipped hapt561.npz; a .npz from `intsim data
    build-hapt`; the authors' hapt_combined.csv (or a folder holding it); or a
    raw/official HAPT folder or zip (option source = "auto" | "raw" | "561" |
    "authors"). dsads / pamap2: the official download, or the authors'
    dsads.csv/.mat, pamap.mat/.csv (or a folder holding one). Extra HAPT
    options: basic_only=True keeps activities 1..6. HAR option features="raw":
    windows of the raw signals of the official download instead of feature
    vectors (HAPT (6, 128) from RawData/, DSADS (30, 125) segments, PAMAP2
    (18, window) windows; docs/data.md); the authors' files refuse it. HAR
    options: see har_dataset. Official downloads only: dsads options features
    ("vector" or "wang27", the default, "stats9" or "raw"), feature_opts;
    pamap2 options window, step, features, feature_opts (not with "raw"), nan.
    Images: normalize (bool). Unknown options raise TypeError.
    """
    spec = dataset_spec(name)
    if path is None and not spec.builtin:
        raise ValueError(f"{spec.name} needs --data PATH: {spec.source}")
    return spec.load(path, **opts)


# ------------------------------------------------------------- the datasets

def _load_hapt(path, **opts):
    source = opts.pop("source", "auto")
    features = opts.pop("features", "vector")
    if opts.pop("basic_only", False):
        opts.setdefault("keep_classes", (1, 2, 3, 4, 5, 6))
    if features not in HAR_FEATURES:
        raise ValueError(f"features must be one of {', '.join(HAR_FEATURES)}, got {features!r}")
    if features == "raw":
        return har_dataset("hapt", _hapt_raw_windows(path), **opts)
    return har_dataset("hapt", _hapt_features(path, source), **opts)


#: options of the official-download readers (feature pipeline, PAMAP2 windows)
_RAW_OPTS = {"dsads": ("features", "feature_opts"),
             "pamap2": ("window", "step", "features", "feature_opts", "nan")}


def _raw_opts(name, opts, found):
    """Pop the reader options of ``name`` from opts; an error if they are given for
    the authors' file ``found`` (its features and windows are fixed)."""
    ro = {k: opts.pop(k) for k in _RAW_OPTS[name] if k in opts}
    if found is not None and ro:
        raise ValueError(f"{found}: options {sorted(ro)} do not apply to the authors' "
                         f"file (its features and windows are fixed)")
    return ro


def _load_official_har(name, path, opts, read_vectors, read_windows):
    """DSADS / PAMAP2: the authors' file or the official download (feature vectors,
    reader options _RAW_OPTS[name]), or with features="raw" the official download's
    raw windows (read_windows; the reader options but feature_opts apply)."""
    features = opts.get("features", "vector")
    if features == "raw":
        ro = {k: opts.pop(k) for k in _RAW_OPTS[name] if k in opts}
        del ro["features"]
        if "feature_opts" in ro:
            raise ValueError("feature_opts do not apply to features=raw (a window holds the "
                             "signals, no features)")
        return har_dataset(name, _raw_windows(name, path, read_windows, **ro), **opts)
    if features == "vector":            # the reader's default feature pipeline
        opts.pop("features", None)
    found = find_authors_file(name, path)
    ro = _raw_opts(name, opts, found)
    if found is not None:
        return har_dataset(name, read_authors(name, found), **opts)
    feats = read_vectors(path, **ro)
    feats["origin"] = os.fspath(path)
    feats["layout"] = "official"
    return har_dataset(name, feats, **opts)


def _load_dsads(path, **opts):
    return _load_official_har("dsads", path, opts, read_dsads, read_dsads_raw_windows)


def _load_pamap2(path, **opts):
    return _load_official_har("pamap2", path, opts, read_pamap2, read_pamap2_raw_windows)


def _images(name, d, path, normalize, f):
    return Dataset(X_train=f(d["X_train"]), y_train=d["y_train"], X_test=f(d["X_test"]),
                   y_test=d["y_test"], name=name, class_names=d["class_names"],
                   info={"origin": os.fspath(path), "normalized": bool(normalize)})


def _cifar_loader(name):
    def load(path, normalize=True, **opts):
        if opts:
            raise TypeError(f"unknown options for {name}: {sorted(opts)}")
        spec = dataset_spec(name)
        d = read_cifar(path, name)
        f = (lambda x: normalize_images(x, spec.mean, spec.std)) if normalize else (lambda x: x)
        return _images(name, d, path, normalize, f)
    return load


def _mnist_loader(name):
    def load(path, normalize=True, **opts):
        if opts:
            raise TypeError(f"unknown options for {name}: {sorted(opts)}")
        d = read_mnist_like(path)
        d["class_names"] = dict(MNIST_CLASSES if name == "mnist" else FASHION_CLASSES)
        f = (lambda x: x.astype(np.float32) / np.float32(255)) if normalize else (lambda x: x)
        return _images(name, d, path, normalize, f)
    return load


def _load_synthetic(path, **opts):
    if opts:
        raise TypeError(f"unknown options for synthetic: {sorted(opts)}")
    return synthetic_dataset()


register_dataset(DatasetSpec(
    "hapt", _load_hapt, kind="har", builtin=True, schedule="har",
    raw_window_model="har_transformer",
    source="the HAPT download (folder or zip), a .npz from `intsim data build-hapt` or the "
           "authors' hapt_combined.csv",
    description="UCI HAPT, 561 features (the HAPT-561 copy ships with intsim)"))
register_dataset(DatasetSpec(
    "dsads", _load_dsads, kind="har", schedule="har",
    raw_window_model="har_transformer_dsads",
    source="the DSADS download (folder or zip) or the authors' dsads.csv / dsads.mat",
    description="UCI Daily and Sports Activities"))
register_dataset(DatasetSpec(
    "pamap2", _load_pamap2, kind="har", schedule="har",
    raw_window_model="har_transformer_pamap2",
    source="the PAMAP2 download (folder or zip) or the authors' pamap.mat / pamap.csv",
    description="UCI PAMAP2 Physical Activity"))
register_dataset(DatasetSpec(
    "cifar100", _cifar_loader("cifar100"), kind="image", schedule="image",
    source="the python-version tar.gz or folder", mean=CIFAR100_MEAN, std=CIFAR100_STD,
    description="CIFAR-100 (docs/paper.md sec 11 statistics)"))
register_dataset(DatasetSpec(
    "cifar10", _cifar_loader("cifar10"), kind="image", schedule="image",
    cil_overrides={"init_classes": 2, "inc_classes": 2},
    source="the python-version tar.gz or folder", mean=CIFAR10_MEAN, std=CIFAR10_STD,
    description="CIFAR-10, 2 classes a task"))
register_dataset(DatasetSpec(
    "mnist", _mnist_loader("mnist"), kind="image", schedule="har", default_model="fcnet",
    source="the folder with the IDX files", description="MNIST digits (FC net, HAR schedule)"))
register_dataset(DatasetSpec(
    "fashion-mnist", _mnist_loader("fashion-mnist"), kind="image", schedule="har",
    default_model="fcnet", source="the folder with the IDX files",
    description="Fashion-MNIST (FC net, HAR schedule)"))
register_dataset(DatasetSpec(
    "synthetic", _load_synthetic, kind="vector", builtin=True, takes_data=False,
    schedule="har",
    source="nothing (generated)", description="6 Gaussian blobs, 24 features: smoke runs and tests"))
