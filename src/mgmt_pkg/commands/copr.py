"""``mgmt-pkg copr project|build``: COPR projects and builds through the copr client."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Tuple

import click

from mgmt_pkg.copr import create_project, submit_builds, watch_builds
from mgmt_pkg.errors import InvalidInput

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

_poll_interval_option = click.option(
    "--poll-interval",
    metavar="SECONDS",
    default="10",
    show_default=True,
    help="Seconds between state checks while following.",
)
_timeout_option = click.option(
    "--timeout",
    metavar="SECONDS",
    default=None,
    help="Give up following after this many seconds (exit 1; the builds go on).",
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
@_poll_interval_option
@_timeout_option
@_config_option
@_dry_run_option
def build(
    target: str,
    srpms: Tuple[Path, ...],
    chroots: Tuple[str, ...],
    nowait: bool,
    poll_interval: str,
    timeout: Optional[str],
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
        poll_interval=seconds("--poll-interval", poll_interval, MAX_POLL_INTERVAL),
        # 0 would give up before the first look at the builds just uploaded.
        timeout=None
        if timeout is None
        else seconds("--timeout", timeout, MAX_TIMEOUT, above_zero=True),
    )


@copr.command()
@click.argument("target", metavar="OWNER/PROJECT")
@click.argument("build_ids", metavar="BUILD_ID...", nargs=-1, required=True)
@_poll_interval_option
@_timeout_option
@_config_option
def watch(
    target: str,
    build_ids: Tuple[str, ...],
    poll_interval: str,
    timeout: Optional[str],
    config_path: Optional[Path],
) -> None:
    """Follow builds submitted before to the end (after ^C, --timeout or --nowait).

    Exits 1 with the build's URL if a build fails.
    """
    ids = [_build_id(text) for text in build_ids]
    for number, text in enumerate(build_ids):
        if ids[number] in ids[:number]:  # followed and reported twice
            raise InvalidInput(f"BUILD_ID {text!r}: given more than once")
    watch_builds(
        target,
        ids,
        config_path=config_path,
        poll_interval=seconds("--poll-interval", poll_interval, MAX_POLL_INTERVAL),
        timeout=None
        if timeout is None
        else seconds("--timeout", timeout, MAX_TIMEOUT, above_zero=True),
    )


def _build_id(text: str) -> int:
    if not re.fullmatch(r"[1-9][0-9]{0,17}", text):
        raise InvalidInput(f"BUILD_ID {text!r}: not a COPR build id (a number, e.g. 7123456)")
    return int(text)


MAX_POLL_INTERVAL = 3600.0
MAX_TIMEOUT = 7 * 86400.0  # a week: COPR's longest builds end well before


def seconds(option: str, text: str, maximum: float, above_zero: bool = False) -> float:
    """A duration option: a finite decimal number of seconds, 0 (or above it) to maximum.

    Checked here rather than by click's FloatRange, which lets "nan" and
    "inf" through and answers with a usage text instead of one line.
    """
    if text.startswith("-") and re.fullmatch(r"-[0-9.]+", text[:33]):
        raise InvalidInput(f"{option}: {text[:32]!r} is negative")
    if len(text) > 32 or not re.fullmatch(r"[0-9]+(\.[0-9]*)?|\.[0-9]+", text):
        raise InvalidInput(f"{option}: {text[:32]!r} is not a number of seconds (e.g. 10 or 0.5)")
    value = float(text)
    if value > maximum:
        raise InvalidInput(f"{option}: must be at most {maximum:g} seconds")
    if above_zero and value == 0:
        raise InvalidInput(f"{option}: must be more than 0 seconds")
    return value
