"""``mgmt-pkg copr project|build``: COPR projects and builds through the copr client."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import click

from mgmt_pkg.copr import create_project, submit_builds

_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="copr client config (default ~/.config/copr).",
)
_dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Check everything locally and print what would be sent."
)


@click.group()
def copr() -> None:
    """Create COPR projects and build SRPMs in them."""


@copr.command()
@click.argument("target", metavar="OWNER/PROJECT")
@click.option(
    "--chroot",
    "chroots",
    multiple=True,
    required=True,
    help="A chroot to enable, e.g. fedora-rawhide-x86_64 (repeatable).",
)
@click.option("--description", default=None, help="The project's description.")
@click.option("--exist-ok", is_flag=True, help="Succeed if the project already exists.")
@_config_option
@_dry_run_option
def project(
    target: str,
    chroots: Tuple[str, ...],
    description: Optional[str],
    exist_ok: bool,
    config_path: Optional[Path],
    dry_run: bool,
) -> None:
    """Create a COPR project with its chroots.

    OWNER/PROJECT names it; an owner written @name is a group.
    """
    create_project(
        target,
        chroots,
        config_path=config_path,
        description=description,
        exist_ok=exist_ok,
        dry_run=dry_run,
    )


@copr.command()
@click.argument("target", metavar="OWNER/PROJECT")
@click.argument(
    "srpms", metavar="SRPM...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option("--chroot", "chroots", multiple=True, help="Build only in this chroot (repeatable).")
@click.option("--nowait", is_flag=True, help="Submit and return; do not follow the builds.")
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds between state checks while following.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="Give up following after this many seconds (exit 1; the builds go on).",
)
@_config_option
@_dry_run_option
def build(
    target: str,
    srpms: Tuple[Path, ...],
    chroots: Tuple[str, ...],
    nowait: bool,
    poll_interval: float,
    timeout: Optional[float],
    config_path: Optional[Path],
    dry_run: bool,
) -> None:
    """Upload SRPMs and follow the builds to the end.

    Each SRPM becomes a build in OWNER/PROJECT. Exits 1 with the build's URL
    if a build fails.
    """
    submit_builds(
        target,
        srpms,
        chroots=chroots,
        config_path=config_path,
        wait=not nowait,
        dry_run=dry_run,
        poll_interval=poll_interval,
        timeout=timeout,
    )
