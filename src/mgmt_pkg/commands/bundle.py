"""``mgmt-pkg bundle``: build the agent's single-file zipapp."""

from __future__ import annotations

import click

from mgmt_pkg.bundle import SHEBANG, build_bundle, describe


@click.command()
@click.option(
    "-o",
    "--output",
    # A plain string: click.Path would turn "" into "." before it can be refused.
    default="dist/mgmt",
    show_default=True,
    help="Where to write the bundle (missing folders are made).",
)
@click.option(
    "--compile-pyc/--no-compile-pyc",
    default=False,
    show_default=True,
    help="Compile all bytecode on first extraction (slower first run; see bench/bundle.py).",
)
@click.option(
    "--python",
    default=SHEBANG,
    show_default=True,
    help="The bundle's shebang: an absolute path (and one argument), "
    "or a command name run through /usr/bin/env.",
)
@click.option(
    "--pip-arg",
    "pip_args",
    multiple=True,
    metavar="ARG",
    help="Extra argument for pip (repeatable), e.g. --pip-arg=--find-links=wheels/.",
)
def bundle(output: str, compile_pyc: bool, python: str, pip_args: tuple) -> None:
    """Build the agent's single-file bundle.

    A reproducible shiv zipapp of src/mgmt with PyYAML (its pure-Python half,
    pinned to the last release for Python 3.6). Prints the path, size and sha256.
    """
    info = build_bundle(output, compile_pyc=compile_pyc, python=python, pip_args=pip_args)
    click.echo(describe(info))
