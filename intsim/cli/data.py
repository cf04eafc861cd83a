"""``intsim data``: build and inspect datasets."""
import os

import click
import numpy as np

from intsim.cli.errors import fail
from intsim.data import load_dataset
from intsim.data.dsads import read_dsads
from intsim.data.embedded import write_hapt_npz
from intsim.data.hapt import read_hapt
from intsim.data.pamap2 import read_pamap2
from intsim.data.wang27 import authors_dsads, authors_pamap, write_authors_file


@click.group()
def data():
    """Build and inspect datasets."""


@data.command("build-hapt")
@click.argument("raw", type=click.Path(exists=True))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--bits", default=14, show_default=True, help="quantization bits per feature")
def build_hapt(raw, out, bits):
    """Compute HAPT-561 features from RAW (HAPT folder or official zip) into OUT (.npz).

    OUT holds the unscaled features of every window of every user with its
    label, user and experiment; the same input gives the same bytes.
    """

    def progress(i, n):
        if i == n or i % 10 == 0:
            click.echo(f"  experiments {i}/{n}", err=True)
    try:
        feats = read_hapt(raw, source="raw", progress=progress)
        s = write_hapt_npz(feats, out, bits=bits)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write {e.filename or out}: {e.strerror or e}")
    click.echo(f"wrote {out}: {s['windows']} windows x 561 features, {s['bytes']} bytes, "
               f"{bits}-bit quantization, max error {s['max_abs_error_per_range']:.3g} "
               f"of each feature's range")


def _progress(what, every):
    def progress(i, n):
        if i == n or i % every == 0:
            click.echo(f"  {what} {i}/{n}", err=True)
    return progress


def _check_out(out):
    if os.path.splitext(out)[1].lower() not in (".mat", ".csv"):
        fail(f"{out}: output must end in .mat or .csv")


def _write(arr, out, var, n_int):
    try:
        write_authors_file(arr, out, var, n_int)
    except OSError as e:
        fail(f"cannot write {e.filename or out}: {e.strerror or e}")


@data.command("build-dsads")
@click.argument("raw", type=click.Path(exists=True))
@click.argument("out", type=click.Path(dir_okay=False))
def build_dsads(raw, out):
    """Compute the authors' DSADS feature file from RAW (official folder or zip) into OUT.

    One row per 5-s segment: Jindong Wang's 27 features of the 15 sensor
    magnitudes (units T, RA, LA, RL, LL x acc, gyro, mag) = 405 columns, each
    scaled to [-1, 1] over all rows, then activity sequence (segment 1..60),
    label (1..19) and subject (1..8): 408 columns. OUT.csv: comma-separated,
    no header; OUT.mat: the matrix as MATLAB variable data_dsads.
    """
    _build_file(out, "data_dsads", 3,
                lambda: authors_dsads(read_dsads(raw, features="wang27",
                                                 progress=_progress("segments", 500))),
                "405 features in [-1, 1], activity sequence, label, subject")


def _build_file(out, var, int_cols, compute, what):
    """Compute the array (one-line errors), write OUT (.csv or .mat variable var), report."""
    _check_out(out)
    try:
        arr = compute()
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    click.echo(f"  writing {out}", err=True)
    _write(arr, out, var, int_cols)
    click.echo(f"wrote {out}: {arr.shape[0]} rows x {arr.shape[1]} columns ({what})")


@data.command("build-pamap2")
@click.argument("raw", type=click.Path(exists=True))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--window", default=512, show_default=True, type=click.IntRange(6),
              help="samples per window (100 Hz)")
@click.option("--step", default=256, show_default=True, type=click.IntRange(1),
              help="samples between window starts")
@click.option("--nan", "nan", default="interpolate", show_default=True,
              type=click.Choice(["interpolate", "drop"]),
              help="missing IMU samples: interpolate them, or drop their rows")
def build_pamap2(raw, out, window, step, nan):
    """Compute the authors' PAMAP2 feature file from RAW (official folder or zip) into OUT.

    Windows inside each labelled run of Protocol/subject1XX.dat: Jindong Wang's
    27 features of the 9 sensor magnitudes (IMUs hand, chest, ankle x acc16,
    gyro, mag) = 243 columns, each scaled to [-1, 1] over all rows, then label
    (activityID) and subject (1..9): 245 columns. OUT.csv: comma-separated, no
    header; OUT.mat: the matrix as MATLAB variable data_pamap. Every subject
    and activity is kept (the paper's loader drops subjects 3, 4, 9 and 24).
    """
    _build_file(out, "data_pamap", 2,
                lambda: authors_pamap(read_pamap2(raw, window=window, step=step,
                                                  features="wang27", nan=nan,
                                                  progress=_progress("subjects", 1))),
                "243 features in [-1, 1], label, subject")


@data.command("info")
@click.argument("name")
@click.option("--data", "path", type=click.Path(exists=True), default=None,
              help="dataset file/folder/archive (HAPT: default the shipped file)")
def info(name, path):
    """Print what dataset NAME holds: samples, features, classes, users per split."""
    try:
        d = load_dataset(name, path)
    except (ValueError, FileNotFoundError, TypeError) as e:
        fail(str(e))
    click.echo(f"dataset {d.name}  ({d.info.get('origin', path)})")
    feat = d.X_train.shape[1:]
    click.echo(f"features per sample: {feat[0] if len(feat) == 1 else 'x'.join(map(str, feat))}"
               f"  dtype {d.X_train.dtype}")
    for part, X, y, u in (("train", d.X_train, d.y_train, d.users_train),
                          ("test", d.X_test, d.y_test, d.users_test)):
        cls, cnt = np.unique(y, return_counts=True)
        click.echo(f"{part}: {len(X)} samples, {cls.size} classes")
        if u is not None:
            click.echo(f"  users ({np.unique(u).size}): {' '.join(map(str, np.unique(u)))}")
        if cls.size <= 30:
            for c, k in zip(cls, cnt):
                click.echo(f"  {c:>3} {d.class_names.get(int(c), '?'):<28} {k}")
