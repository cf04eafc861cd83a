"""The ``intsim`` command line. Each sub-command lives in its own module.

Sub-commands: ``train`` (train.py), ``audit`` / ``compare`` / ``plot``
(runs.py), ``data`` (data.py), ``sweep`` (sweep.py). Errors in user input (including click's own
usage errors, e.g. a non-integer ``--bits``) print one line
``intsim: error: ...`` on stderr and exit with code 2.
"""
import sys

import click

from intsim import __version__


class _Group(click.Group):
    """A click group whose usage errors are a single stderr line (exit 2)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
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


def _register():
    from intsim.cli.data import data
    from intsim.cli.runs import audit_cmd, compare_cmd, plot_cmd
    from intsim.cli.sweep import sweep_cmd
    from intsim.cli.train import train_cmd
    main.add_command(data)
    main.add_command(train_cmd)
    main.add_command(audit_cmd)
    main.add_command(compare_cmd)
    main.add_command(plot_cmd)
    main.add_command(sweep_cmd)


_register()
