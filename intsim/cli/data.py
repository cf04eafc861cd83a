"""``intsim data``: build and inspect datasets."""
import click

from intsim.cli.errors import fail


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
    from intsim.data.embedded import write_hapt_npz
    from intsim.data.hapt import read_hapt

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


@data.command("info")
@click.argument("name")
@click.option("--data", "path", type=click.Path(exists=True), default=None,
              help="dataset file/folder/archive (HAPT: default the shipped file)")
def info(name, path):
    """Print what dataset NAME holds: samples, features, classes, users per split."""
    import numpy as np

    from intsim.data import load_dataset
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
