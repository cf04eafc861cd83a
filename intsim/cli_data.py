"""``intsim data``: build and inspect datasets (filled in by the data work)."""
import click


@click.group()
def data():
    """Build and inspect datasets."""
