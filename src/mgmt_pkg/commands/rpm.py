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
from mgmt_pkg.paths import check_output_dir, read_input_text


def _integer(option: str, value: Optional[str], maximum: int) -> Optional[int]:
    """A numeric option (or None if not given), through the one bounded parser."""
    from mgmt_pkg.rpm.rules import parse_integer

    return None if value is None else parse_integer(option, value, maximum)


def _read_script(option: str, path: str) -> str:
    return read_input_text(Path(path), option)


def _architecture(value: str) -> str:
    """ "native" is this machine's; fpm's other aliases are the model's to map."""
    return os.uname().machine if value == "native" else value


# The options fake-rpm and rpm share, in fpm's spelling: (param_decls, attrs).
PACKAGE_OPTIONS = [
    (("-n", "--name"), dict(metavar="NAME", help="Package name (Name).")),
    (("-v", "--version", "version"), dict(metavar="VERSION", help="Package version (Version).")),
    (("--iteration",), dict(metavar="RELEASE", default="1", show_default=True, help="Release.")),
    (("--epoch",), dict(metavar="N", help="Epoch; left out unless given.")),
    (("-a", "--architecture"), dict(
        metavar="ARCH", default="noarch", show_default=True,
        help="noarch (or all), native, or an rpm architecture such as x86_64 (amd64, arm64).",
    )),
    (("-d", "--depends"), dict(
        metavar="DEP", multiple=True,
        help="Requires, e.g. 'vagrant >= 1.6.5'; 'foo != 1.0' is Conflicts: foo = 1.0.",
    )),
    (("--provides",), dict(metavar="DEP", multiple=True, help="Provides (repeatable).")),
    (("--conflicts",), dict(metavar="DEP", multiple=True, help="Conflicts (repeatable).")),
    (("--replaces",), dict(
        metavar="DEP", multiple=True, help="Obsoletes, plus the matching Provides."
    )),
    (("--license", "license_"), dict(help="SPDX license expression (default MIT).")),
    (("--url",), dict(help="Upstream URL.")),
    (("--vendor",), dict(help="Vendor.")),
    (("-m", "--maintainer"), dict(help="Packager and changelog author: 'Name <email>'.")),
    (("--category",), dict(help="Group (default Applications/System).")),
    (("--summary",), dict(help="One-line summary (default: the description's first line).")),
    (("--description",), dict(help="Description (may span lines, may be empty).")),
    (("--changelog",), dict(help="The %changelog entry; each line one item.")),
    (("--before-install",), dict(metavar="FILE", multiple=True, help="%pre scriptlet.")),
    (("--after-install",), dict(metavar="FILE", multiple=True, help="%post scriptlet.")),
    (("--before-remove",), dict(metavar="FILE", multiple=True, help="%preun scriptlet.")),
    (("--after-remove",), dict(metavar="FILE", multiple=True, help="%postun scriptlet.")),
    (("--rpm-pretrans",), dict(metavar="FILE", multiple=True, help="%pretrans scriptlet.")),
    (("--rpm-posttrans",), dict(metavar="FILE", multiple=True, help="%posttrans scriptlet.")),
    (("-o", "--output-dir"), dict(
        metavar="DIR", default=".", show_default=True, help="Where results go."
    )),
    (("--spec-only",), dict(is_flag=True, help="Write only the spec.")),
    (("--srpm-only",), dict(is_flag=True, help="Write only the spec and the SRPM.")),
    (("--source-date-epoch",), dict(
        metavar="SECONDS", envvar="SOURCE_DATE_EPOCH",
        help="Time stamp of the build and changelog; also read from $SOURCE_DATE_EPOCH "
        "(default: today, 00:00 UTC).",
    )),
    (("--copr",), dict(metavar="OWNER/PROJECT", help="Submit the SRPM to this COPR project.")),
    (("--copr-chroot",), dict(
        metavar="CHROOT", multiple=True, help="With --copr: build only for these."
    )),
    (("--copr-config",), dict(metavar="PATH", help="With --copr: the copr config file.")),
    (("--copr-nowait",), dict(is_flag=True, help="With --copr: do not follow the build.")),
]  # fmt: skip


def package_options(command):
    """Decorate ``command`` with PACKAGE_OPTIONS (in their order on --help)."""
    for declarations, attributes in reversed(PACKAGE_OPTIONS):
        command = click.option(*declarations, **attributes)(command)
    return command


def _package(options: dict, placeholder: bool, description: Optional[str] = None):
    """The validated package model from the shared options."""
    from mgmt_pkg.rpm import PhonyPackage
    from mgmt_pkg.rpm.model import SCRIPT_OPTIONS
    from mgmt_pkg.rpm.rules import EPOCH_MAX, SOURCE_DATE_EPOCH_MAX

    for required, option in (("name", "--name"), ("version", "--version")):
        if not options[required]:
            raise InvalidInput(f"{option} is required")
    if options["spec_only"] and options["srpm_only"]:
        raise InvalidInput("--spec-only and --srpm-only exclude each other")
    check_output_dir("--output-dir", options["output_dir"])
    _check_copr_options(options)
    # multiple=True only to see a second one: click keeps the last in silence.
    scripts = {
        section: options[option.replace("-", "_")] for section, option in SCRIPT_OPTIONS.items()
    }
    for section, files in scripts.items():
        if len(files) > 1:
            option = f"--{SCRIPT_OPTIONS[section]}"
            raise InvalidInput(f"{option} is given twice: one file per scriptlet")
    scriptlets: Tuple[Tuple[str, str], ...] = tuple(
        (section, _read_script(f"--{SCRIPT_OPTIONS[section]}", files[0]))
        for section, files in scripts.items()
        if files
    )
    given = options["description"]
    return PhonyPackage.create(
        name=options["name"],
        version=options["version"],
        release=options["iteration"],
        epoch=_integer("--epoch", options["epoch"], EPOCH_MAX),
        arch=_architecture(options["architecture"]),
        summary=options["summary"],
        description=given if given is not None else description,
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
        placeholder=placeholder,
        source_date_epoch=_integer(
            _source_date_epoch_option(), options["source_date_epoch"], SOURCE_DATE_EPOCH_MAX
        ),
    )


def _source_date_epoch_option() -> str:
    """How an error names the time: the variable when it came from there, not the
    option the user never typed (CI systems set SOURCE_DATE_EPOCH for every build)."""
    context = click.get_current_context(silent=True)
    source = context.get_parameter_source("source_date_epoch") if context else None
    if source is click.core.ParameterSource.ENVIRONMENT:
        return "$SOURCE_DATE_EPOCH"
    return "--source-date-epoch"


def _stage(options: dict) -> str:
    return "spec" if options["spec_only"] else "srpm" if options["srpm_only"] else "rpm"


def _finish(options: dict, result) -> None:
    """Print what was written; submit to COPR if asked."""
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


@click.command("fake-rpm")
@package_options
@click.option(
    "--no-placeholder",
    is_flag=True,
    help="Install no README (some build services then publish nothing).",
)
def fake_rpm(**options: Any) -> None:
    """Build a phony RPM and its SRPM: metadata and dependencies, no software.

    Prints the paths of what it wrote, one per line.
    """
    from mgmt_pkg.rpm import fake_rpm as build

    package = _package(options, placeholder=not options["no_placeholder"])
    _finish(options, build(package, Path(options["output_dir"]), _stage(options)))


@click.command("rpm")
@package_options
@click.argument("sources", metavar="SRC[=DEST]...", nargs=-1)
@click.option("--prefix", metavar="DIR", help="Put every DEST below DIR.")
@click.option("--exclude", metavar="PATTERN", multiple=True, help="Leave out matching paths.")
@click.option(
    "--config-files", metavar="PATH", multiple=True, help="%config(noreplace) (a file or tree)."
)
@click.option(
    "--directories", metavar="PATH", multiple=True, help="Own this directory and those below."
)
@click.option(
    "--rpm-attr", metavar="MODE,USER,GROUP:PATH", multiple=True, help="%attr of one path."
)
@click.option(
    "--rpm-autoreqprov/--no-rpm-autoreqprov",
    default=False,
    help="Add the Requires and Provides rpm finds in the files (off, as in fpm).",
)
@click.option("--rpm-autoreq", is_flag=True, help="Add the Requires rpm finds in the files.")
@click.option("--rpm-autoprov", is_flag=True, help="Add the Provides rpm finds in the files.")
@click.option("--rpm-user", metavar="USER", default="root", show_default=True, help="Owner.")
@click.option("--rpm-group", metavar="GROUP", default="root", show_default=True, help="Group.")
def rpm(**options: Any) -> None:
    """Package files and trees (fpm's dir source) as an RPM and an SRPM that rebuilds.

    SRC keeps its path; SRC=DEST puts a file or a tree's contents at DEST
    (DEST ending in / takes a file's name). Prints the paths it wrote.
    """
    from mgmt_pkg.rpm.files import FilesPackage, build_files_package
    from mgmt_pkg.rpm.model import FILES_CHANGELOG
    from mgmt_pkg.rpm.payload import check_output_outside, collect, parse_attr

    if options["summary"] is None and not options["description"]:
        options["summary"] = "Files packaged with mgmt-pkg"
    if options["changelog"] is None:
        options["changelog"] = FILES_CHANGELOG
    # rpmlint wants a description: without one, the summary stands in (as fpm's default does)
    package = _package(options, placeholder=False, description=options["summary"])
    entries = collect(
        options["sources"],
        prefix=options["prefix"],
        exclude=options["exclude"],
        config_files=options["config_files"],
        directories=options["directories"],
        attrs=[parse_attr(text) for text in options["rpm_attr"]],
        user=options["rpm_user"],
        group=options["rpm_group"],
    )
    check_output_outside(
        options["sources"],
        options["output_dir"],
        prefix=options["prefix"],
        exclude=options["exclude"],
    )
    result = build_files_package(
        FilesPackage(
            package,
            entries,
            autoreq=options["rpm_autoreqprov"] or options["rpm_autoreq"],
            autoprov=options["rpm_autoreqprov"] or options["rpm_autoprov"],
        ),
        Path(options["output_dir"]),
        _stage(options),
    )
    _finish(options, result)


def _check_copr_options(options: dict) -> None:
    """Refuse a bad --copr combination, target, chroot or config before anything is built."""
    if not options["copr"]:
        for option in ("copr_chroot", "copr_config", "copr_nowait"):
            if options[option]:
                raise InvalidInput(f"--{option.replace('_', '-')} needs --copr")
        return
    if options["spec_only"]:
        raise InvalidInput("--copr needs an SRPM: it cannot go with --spec-only")
    from mgmt_pkg.copr import check_chroots, check_target, load_config, parse_target

    try:
        parse_target(options["copr"])
    except InvalidInput as error:
        raise InvalidInput(f"--copr: {error}") from None
    check_chroots("--copr-chroot", options["copr_chroot"])
    # Now, not after the build: a missing config, a project that does not exist or
    # credentials COPR refuses are no reason to build first (and leave the output).
    config = Path(options["copr_config"]) if options["copr_config"] else None
    load_config(config)
    check_target(options["copr"], chroots=options["copr_chroot"], config_path=config)


@click.command("inspect")
@click.argument("path", metavar="FILE.rpm")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for machines.")
def inspect(path: str, as_json: bool) -> None:
    """Show an RPM's (or SRPM's) metadata, dependencies and files."""
    from mgmt_pkg.rpm.inspect import RELATIONS, read_package

    if not path:  # Path("") is ".", the current folder
        raise InvalidInput("FILE.rpm: the path is empty")
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
    for kind in (*RELATIONS, "files"):
        values = [str(v) for v in getattr(info, kind)]
        if not values and kind in RELATIONS[4:]:
            continue  # the weak kinds only when the package has some
        # values from the 11th column; "recommends:" and "supplements:" are longer
        lines.append(f"{kind + ':':<10} {values[0] if values else '(none)'}")
        lines.extend(f"{'':<10} {value}" for value in values[1:])
    click.echo("\n".join(lines))


@click.command("repo")
@click.argument("folder", metavar="DIR")
def repo(folder: str) -> None:
    """Make DIR, a folder of RPMs, into a dnf repository (createrepo_c)."""
    from mgmt_pkg.rpm.repo import make_repo

    if not folder:  # Path("") is ".": an unset $REPO made the current folder a repository
        raise InvalidInput("DIR: the path is empty")
    made = make_repo(Path(folder))
    click.echo(f"{made.repomd} ({made.packages} packages)")
