"""``mgmt-pkg fake-rpm``, ``inspect`` and ``repo``: parse, call mgmt_pkg.rpm, print.

Values are taken as strings and converted here, so that every bad option
becomes one InvalidInput line naming it (exit 2) rather than click's usage text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Tuple

import click

from mgmt_pkg.errors import InvalidInput


def _integer(option: str, value: Optional[str]) -> Optional[int]:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        raise InvalidInput(f"{option}: {value!r} is not a non-negative integer")
    return int(value)


def _read_script(option: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{option}: cannot read {path}: {error}") from None


def _architecture(value: str) -> str:
    """fpm's spellings: "all" is noarch, "native" is this machine's."""
    if value == "all":
        return "noarch"
    if value == "native":
        return os.uname().machine
    return value


@click.command("fake-rpm")
@click.option("-n", "--name", metavar="NAME", help="Package name (Name).")
@click.option("-v", "--version", "version", metavar="VERSION", help="Package version (Version).")
@click.option("--iteration", metavar="RELEASE", default="1", show_default=True, help="Release.")
@click.option("--epoch", metavar="N", help="Epoch; left out unless given.")
@click.option(
    "-a",
    "--architecture",
    metavar="ARCH",
    default="noarch",
    show_default=True,
    help="noarch (or all), native, or an rpm architecture such as x86_64.",
)
@click.option(
    "-d", "--depends", metavar="DEP", multiple=True, help="Requires, e.g. 'vagrant >= 1.6.5'."
)
@click.option("--provides", metavar="DEP", multiple=True, help="Provides (repeatable).")
@click.option("--conflicts", metavar="DEP", multiple=True, help="Conflicts (repeatable).")
@click.option(
    "--replaces", metavar="DEP", multiple=True, help="Obsoletes, plus the matching Provides."
)
@click.option("--license", "license_", help="SPDX license expression (default MIT).")
@click.option("--url", help="Upstream URL.")
@click.option("--vendor", help="Vendor.")
@click.option("-m", "--maintainer", help="Packager and changelog author: 'Name <email>'.")
@click.option("--category", help="Group (default Applications/System).")
@click.option("--summary", help="One-line summary.")
@click.option("--description", help="Description (may span lines).")
@click.option("--changelog", help="Text of the %changelog entry.")
@click.option("--before-install", metavar="FILE", help="%pre scriptlet.")
@click.option("--after-install", metavar="FILE", help="%post scriptlet.")
@click.option("--before-remove", metavar="FILE", help="%preun scriptlet.")
@click.option("--after-remove", metavar="FILE", help="%postun scriptlet.")
@click.option("--rpm-pretrans", metavar="FILE", help="%pretrans scriptlet.")
@click.option("--rpm-posttrans", metavar="FILE", help="%posttrans scriptlet.")
@click.option(
    "-o", "--output-dir", metavar="DIR", default=".", show_default=True, help="Where results go."
)
@click.option("--spec-only", is_flag=True, help="Write only the spec.")
@click.option("--srpm-only", is_flag=True, help="Write only the spec and the SRPM.")
@click.option(
    "--source-date-epoch",
    metavar="SECONDS",
    envvar="SOURCE_DATE_EPOCH",
    help="Time stamp of the build and changelog; also read from $SOURCE_DATE_EPOCH "
    "(default: today, 00:00 UTC).",
)
@click.option(
    "--no-placeholder",
    is_flag=True,
    help="Install no README (some build services then publish nothing).",
)
@click.option("--copr", metavar="OWNER/PROJECT", help="Submit the SRPM to this COPR project.")
@click.option(
    "--copr-chroot", metavar="CHROOT", multiple=True, help="With --copr: build only for these."
)
@click.option("--copr-config", metavar="PATH", help="With --copr: the copr config file.")
@click.option("--copr-nowait", is_flag=True, help="With --copr: do not follow the build.")
def fake_rpm(**options: Any) -> None:
    """Build a phony RPM and its SRPM: metadata and dependencies, no software.

    Prints the paths of what it wrote, one per line.
    """
    from mgmt_pkg.rpm import PhonyPackage
    from mgmt_pkg.rpm import fake_rpm as build
    from mgmt_pkg.rpm.model import SCRIPT_OPTIONS

    for required, option in (("name", "--name"), ("version", "--version")):
        if not options[required]:
            raise InvalidInput(f"{option} is required")
    if options["spec_only"] and options["srpm_only"]:
        raise InvalidInput("--spec-only and --srpm-only exclude each other")
    _check_copr_options(options)
    scriptlets: Tuple[Tuple[str, str], ...] = tuple(
        (section, _read_script(f"--{option}", options[option.replace("-", "_")]))
        for section, option in SCRIPT_OPTIONS.items()
        if options[option.replace("-", "_")] is not None
    )
    package = PhonyPackage.create(
        name=options["name"],
        version=options["version"],
        release=options["iteration"],
        epoch=_integer("--epoch", options["epoch"]),
        arch=_architecture(options["architecture"]),
        summary=options["summary"],
        description=options["description"],
        license=options["license_"],
        url=options["url"],
        vendor=options["vendor"],
        maintainer=options["maintainer"],
        category=options["category"],
        requires=options["depends"],
        provides=options["provides"],
        conflicts=options["conflicts"],
        replaces=options["replaces"],
        changelog=options["changelog"],
        scriptlets=scriptlets,
        placeholder=not options["no_placeholder"],
        source_date_epoch=_integer("--source-date-epoch", options["source_date_epoch"]),
    )
    stage = "spec" if options["spec_only"] else "srpm" if options["srpm_only"] else "rpm"
    result = build(package, Path(options["output_dir"]), stage)
    for path in result.paths:
        click.echo(str(path))
    if options["copr"]:
        from mgmt_pkg.copr import submit_srpm

        submit_srpm(
            options["copr"],
            result.srpm,
            chroots=options["copr_chroot"],
            config_path=Path(options["copr_config"]) if options["copr_config"] else None,
            wait=not options["copr_nowait"],
        )


def _check_copr_options(options: dict) -> None:
    """Refuse a bad --copr combination before anything is built."""
    if not options["copr"]:
        for option in ("copr_chroot", "copr_config", "copr_nowait"):
            if options[option]:
                raise InvalidInput(f"--{option.replace('_', '-')} needs --copr")
        return
    if options["spec_only"]:
        raise InvalidInput("--copr needs an SRPM: it cannot go with --spec-only")
    from mgmt_pkg.copr import parse_target

    try:
        parse_target(options["copr"])
    except InvalidInput as error:
        raise InvalidInput(f"--copr: {error}") from None


@click.command("inspect")
@click.argument("path", metavar="FILE.rpm")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for machines.")
def inspect(path: str, as_json: bool) -> None:
    """Show an RPM's (or SRPM's) metadata, dependencies and files."""
    from mgmt_pkg.rpm.inspect import read_package

    info = read_package(Path(path))
    if as_json:
        import json  # here, not at the top: fake-rpm, in this module too, never needs it

        click.echo(json.dumps(info.to_json(), indent=2, sort_keys=True))
        return
    lines = [
        f"name:      {info.name}",
        f"evr:       {info.evr}",
        f"epoch:     {info.epoch if info.epoch is not None else '(none)'}",
        f"version:   {info.version}",
        f"release:   {info.release}",
        f"arch:      {info.arch}{' (source package)' if info.source else ''}",
        f"summary:   {info.summary}",
        f"license:   {info.license}",
    ]
    for kind in ("requires", "provides", "conflicts", "obsoletes", "files"):
        values = [str(v) for v in getattr(info, kind)]
        lines.append(f"{kind + ':':<10} {values[0] if values else '(none)'}")
        lines.extend(f"{'':<10} {value}" for value in values[1:])
    click.echo("\n".join(lines))


@click.command("repo")
@click.argument("folder", metavar="DIR")
def repo(folder: str) -> None:
    """Make DIR, a folder of RPMs, into a dnf repository (createrepo_c)."""
    from mgmt_pkg.rpm.repo import make_repo

    made = make_repo(Path(folder))
    click.echo(f"{made.repomd} ({made.packages} packages)")
