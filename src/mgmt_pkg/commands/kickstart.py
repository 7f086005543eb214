"""``mgmt-pkg kickstart render|check``: templates in, validated kickstarts out."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import click

from mgmt_pkg.errors import InvalidInput, MgmtPkgError
from mgmt_pkg.files import write_atomically
from mgmt_pkg.paths import check_output_file, writing

if TYPE_CHECKING:
    from mgmt_pkg.kickstart import Report

TARGET_HELP = "pykickstart version to validate for: F39, RHEL9, F17, ..."


def parse_vars(pairs: Tuple[str, ...]) -> Dict[str, str]:
    variables: Dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.isidentifier():
            raise InvalidInput(f"--var {pair!r}: expected NAME=VALUE")
        if name in variables:  # the last one winning would hide a typo or a clash
            raise InvalidInput(f"--var {name}: given twice; give each variable once")
        variables[name] = value
    return variables


def _print_findings(report) -> None:
    for finding in report.findings:
        click.echo(str(finding), err=True)


@click.group()
def kickstart() -> None:
    """Render kickstart templates and validate kickstarts with pykickstart."""


@kickstart.command()
@click.argument("template")
@click.option("--var", "pairs", multiple=True, metavar="NAME=VALUE", help="Template variable.")
@click.option("--target", default="F39", show_default=True, help=TARGET_HELP)
# A plain string: click.Path would turn "" into "." before it can be refused.
@click.option("-o", "--output", "output_value", metavar="FILE", help="Write here.")
def render(template: str, pairs: Tuple[str, ...], target: str, output_value: Optional[str]) -> None:
    """Render TEMPLATE (minimal, lvm, or a .ks.j2 file) and validate the result.

    Nothing is written when validation finds an error.
    """
    from mgmt_pkg.kickstart import KickstartInvalid, check_text, render

    variables = parse_vars(pairs)
    if output_value is None and sys.stdout is None:  # `>&-`: click would drop the text unsaid
        raise MgmtPkgError("stdout is closed: nowhere to print the kickstart; give -o FILE")
    output: Optional[Path] = None
    if output_value is not None:  # checked first: a render is wasted on a place we cannot write
        output = check_output_file("--output", output_value)
        if output.is_symlink():  # written where it points (below): that folder must take it
            check_output_file("--output", os.path.realpath(output))
    text = render(template, variables, target)
    source = f"{output or template} (rendered)"
    report = check_text(text, target, source)
    _print_findings(report)
    if not report.ok:
        raise KickstartInvalid(report)
    if output is None:
        click.echo(text, nl=False)
    else:
        with writing("--output", output):
            # Through a symlink, as the shell's ">" writes: replacing the link left
            # the file it names (the one a server serves) as it was, and gave the
            # new file a new file's mode (0644 for a kickstart made 0600).
            write_atomically(Path(os.path.realpath(output)), text)
        click.echo(f"wrote {output} ({target}, valid)", err=True)


@kickstart.command()
# Plain strings: click refusing a folder (or "" turned into ".") would stop the
# whole command with a usage error, and the other files would go unchecked.
@click.argument("files", nargs=-1, required=True)
@click.option("--target", default="F39", show_default=True, help=TARGET_HELP)
def check(files: Tuple[str, ...], target: str) -> None:
    """Validate kickstart FILES; exit 1 if any has an error (warnings are printed),
    2 if any could not be checked (missing, not text, a quote left open).

    Every file is checked, whatever the ones before it held.
    """
    from mgmt_pkg.kickstart import KickstartInvalid, check_file, check_target

    check_target(target)  # the same for every file: said once, before any
    invalid: List[Report] = []
    unchecked = 0
    for name in files:
        path = Path(name)
        try:
            if not name:
                raise InvalidInput("FILE '': the path is empty")
            report = check_file(path, target)
        except InvalidInput as error:
            if len(files) == 1:
                raise
            click.echo(f"mgmt-pkg: error: {error}", err=True)
            unchecked += 1
            continue
        _print_findings(report)
        if report.ok:
            click.echo(f"{path}: valid for {target}")
        else:
            invalid.append(report)
    if len(invalid) == 1 and not unchecked:
        raise KickstartInvalid(invalid[0])
    if invalid or unchecked:
        counts = []
        if invalid:
            counts.append(f"{len(invalid)} {'has' if len(invalid) == 1 else 'have'} errors")
        if unchecked:
            counts.append(f"{unchecked} could not be checked")
        failed = len(invalid) + unchecked
        summary = f"{failed} of {len(files)} kickstarts failed: {', '.join(counts)}"
        # A file we could not check is bad input (2), as it is when it is the only one.
        raise InvalidInput(summary) if unchecked else MgmtPkgError(summary)
