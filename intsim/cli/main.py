"""The ``intsim`` command line. Each sub-command lives in its own module.

Sub-commands: ``train`` (train.py), ``audit`` / ``compare`` / ``plot``
(runs.py), ``report`` (report.py), ``data`` (data.py), ``sweep`` (sweep.py). Errors in user input (including click's own
usage errors, e.g. a non-integer ``--bits``) print one line
``intsim: error: ...`` on stderr and exit with code 2.

Importing this module loads no NumPy. Invoked, the group first applies the
process setup (:func:`intsim.kernels.runtime.configure_runtime`: thread wait
policies, the Numba cache folder), and it imports its sub-commands, which load
NumPy and Numba, only when click resolves or lists them (:func:`_load_commands`,
which applies the setup first too).
"""
import sys

import click

from intsim import __version__
from intsim.kernels.runtime import configure_runtime


class _Group(click.Group):
    """A click group whose usage errors are a single stderr line (exit 2), and
    whose sub-commands are loaded after the process setup (:func:`_load_commands`)."""

    def get_command(self, ctx, cmd_name):
        _load_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx):
        _load_commands()
        return super().list_commands(ctx)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        configure_runtime()     # the sub-commands load when click resolves or lists them
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else "intsim"
            click.echo(f"intsim: error: {e.format_message()} (see '{where} --help')", err=True)
            sys.exit(2)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="intsim")
def main():
    """intsim: bit-exact integer-arithmetic training simulator."""


def _load_commands():
    """The process setup, then the sub-commands (once)."""
    if main.commands:
        return
    configure_runtime()
    # imported here, after configure_runtime(): these modules load NumPy and Numba,
    # which read the environment it sets only when they load
    from intsim.cli.data import data
    from intsim.cli.report import report_cmd
    from intsim.cli.runs import audit_cmd, compare_cmd, plot_cmd
    from intsim.cli.sweep import sweep_cmd
    from intsim.cli.train import train_cmd
    for cmd in (data, train_cmd, audit_cmd, compare_cmd, plot_cmd, report_cmd, sweep_cmd):
        main.add_command(cmd)
