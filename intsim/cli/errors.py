"""How every ``intsim`` command reports bad input: one line, exit code 2."""
import click


def fail(msg: str) -> None:
    """Print ``intsim: error: msg`` on stderr and exit with code 2."""
    click.echo(f"intsim: error: {msg}", err=True)
    raise click.exceptions.Exit(2)
