"""The ``intsim`` command line. Each sub-command lives in its own module."""
import click

from intsim import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="intsim")
def main():
    """intsim: bit-exact integer-arithmetic training simulator."""


def _register():
    from intsim.cli_data import data
    main.add_command(data)


_register()
