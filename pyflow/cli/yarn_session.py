"""The ``yarn-session`` command. YARN deployment through Skein is not in this release: the
command says so and exits non-zero, rather than pretending to start a session."""

from __future__ import annotations

import sys

import click


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def cli(args: tuple[str, ...]) -> None:
    """Start or attach to a pyflow session on YARN (not available in this release)."""
    click.echo("Error: yarn-session is not available in this release of pyflow: YARN deployment "
               "through Skein comes in a later release.", err=True)
    click.echo("Hint: run jobs on the embedded local cluster with `pyflow run job.py`.", err=True)
    sys.exit(2)


def main() -> None:
    cli(prog_name="yarn-session")


if __name__ == "__main__":
    main()
