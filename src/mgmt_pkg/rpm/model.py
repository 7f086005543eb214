"""The phony package: what a user asks for, checked against rpm's rules.

Every value that reaches the spec passes through here first, so the template
can trust what it renders. A value is either refused (InvalidInput naming the
option, exit 2) or one that :mod:`mgmt_pkg.rpm.spec` can escape so that rpm
reads it back unchanged. The rules are what rpm 4.18 itself accepts (or a
safe subset of it), found by building: see tests/rpm/test_roundtrip.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional, Tuple

from mgmt_pkg.rpm.dependency import parse_dependency
from mgmt_pkg.rpm.rules import (
    EPOCH_MAX,
    check_license,
    check_maintainer,
    check_name,
    check_script,
    check_text,
    check_url,
    check_verrel,
    quoted,
    refuse,
)

__all__ = [
    "ARCHITECTURES",
    "ARCH_ALIASES",
    "SCRIPTLETS",
    "SCRIPT_OPTIONS",
    "Dependency",
    "PhonyPackage",
    "Scriptlet",
]

# fpm's (and Debian's) spellings of rpm's architectures; "native" is resolved
# by the command, as it depends on the machine.
ARCH_ALIASES = {
    "all": "noarch",
    "any": "noarch",
    "amd64": "x86_64",
    "arm64": "aarch64",
    "i386": "i686",
    "armhf": "armv7hl",
    "ppc64el": "ppc64le",
}
# Architectures rpmbuild can target for a package without binaries.
ARCHITECTURES = (
    "noarch",
    "x86_64",
    "i686",
    "aarch64",
    "armv7hl",
    "ppc64le",
    "s390x",
    "riscv64",
)
SCRIPTLETS = ("pre", "post", "preun", "postun", "pretrans", "posttrans")
# section -> the fpm-style option that sets it
SCRIPT_OPTIONS = {
    "pre": "before-install",
    "post": "after-install",
    "preun": "before-remove",
    "postun": "after-remove",
    "pretrans": "rpm-pretrans",
    "posttrans": "rpm-posttrans",
}
# rpm's changelog dates are English whatever the locale
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

DEFAULT_MAINTAINER = "mgmt-pkg <mgmt-pkg@localhost.localdomain>"
DEFAULT_LICENSE = "MIT"
# rpm's own default group, "Unspecified", is reported by rpmlint as no group.
DEFAULT_CATEGORY = "Applications/System"
DEFAULT_SUMMARY = "Phony package that satisfies dependencies"
DEFAULT_CHANGELOG = "Phony package built by mgmt-pkg"
FILES_CHANGELOG = "Packaged with mgmt-pkg"  # the rpm command's (mgmt_pkg.commands.rpm)
# The entries written when none is asked for: only these may be left out silently.
_DEFAULT_CHANGELOGS = (DEFAULT_CHANGELOG, FILES_CHANGELOG)
# rpm reads a %changelog date as noon UTC of that day and drops, with an error
# it does not fail on, an entry before 1990 (build/parseChangelog.c); it keeps
# the time in 32 bits, so 2106-02-07 12:00 would wrap to 1970. So the date of
# SOURCE_DATE_EPOCH must be from 1990-01-01 to 2106-02-06.
CHANGELOG_FIRST = 631152000  # 1990-01-01 00:00 UTC
CHANGELOG_END = 4294944000  # 2106-02-07 00:00 UTC, the first day that wraps


def _changelog_entry(text: str) -> str:
    """--changelog as the body of one %changelog entry, as fpm makes it.

    Each line becomes an item ("- line") unless it already is one, so that
    "- fixed x" is not turned into "- - fixed x"; a line starting with "*"
    would start a new entry, so it too is made an item.
    """
    check_text("--changelog", text, multiline=True, items=True)
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            raise refuse(
                "--changelog", f"{quoted(text)}: line {number} is blank, which ends rpm's entry"
            )
    return "\n".join(line if line.startswith("-") else f"- {line}" for line in lines)


@dataclass(frozen=True)
class Dependency:
    """One ``name [op evr]`` relation, as in Requires/Provides/Conflicts/Obsoletes."""

    name: str
    operator: Optional[str] = None
    evr: Optional[str] = None

    @classmethod
    def parse(cls, text: str, option: str) -> Dependency:
        return cls(*parse_dependency(text, option))

    def __str__(self) -> str:
        return self.name if self.operator is None else f"{self.name} {self.operator} {self.evr}"


@dataclass(frozen=True)
class Scriptlet:
    """A shell scriptlet (%post and friends), read from a user's file."""

    section: str
    body: str

    @classmethod
    def from_text(cls, section: str, text: str, option: str) -> Scriptlet:
        return cls(section, check_script(text, option))


@dataclass(frozen=True)
class PhonyPackage:
    """Everything the spec is made from. Build with :meth:`create` to validate."""

    name: str
    version: str
    release: str = "1"
    epoch: Optional[int] = None
    arch: str = "noarch"
    summary: str = DEFAULT_SUMMARY
    description: Optional[str] = None
    license: str = DEFAULT_LICENSE
    url: Optional[str] = None
    vendor: Optional[str] = None
    maintainer: str = DEFAULT_MAINTAINER
    category: str = DEFAULT_CATEGORY
    requires: Tuple[Dependency, ...] = ()
    provides: Tuple[Dependency, ...] = ()
    conflicts: Tuple[Dependency, ...] = ()
    replaces: Tuple[Dependency, ...] = ()
    changelog: Optional[str] = f"- {DEFAULT_CHANGELOG}"  # None: no %changelog entry
    scriptlets: Tuple[Scriptlet, ...] = ()
    placeholder: bool = True
    source_date_epoch: int = field(default_factory=lambda: _midnight_utc_today())

    @classmethod
    def create(
        cls,
        name: str,
        version: str,
        release: str = "1",
        epoch: Optional[int] = None,
        arch: str = "noarch",
        summary: Optional[str] = None,
        description: Optional[str] = None,
        license: Optional[str] = None,
        url: Optional[str] = None,
        vendor: Optional[str] = None,
        maintainer: Optional[str] = None,
        category: Optional[str] = None,
        requires: Tuple[str, ...] = (),
        provides: Tuple[str, ...] = (),
        conflicts: Tuple[str, ...] = (),
        replaces: Tuple[str, ...] = (),
        changelog: Optional[str] = None,
        scriptlets: Tuple[Tuple[str, str], ...] = (),
        placeholder: bool = True,
        source_date_epoch: Optional[int] = None,
    ) -> PhonyPackage:
        """Validate raw option values; errors name the command-line option."""
        check_name(name)
        check_verrel(version, "--version")
        check_verrel(release, "--iteration")
        if epoch is not None and not 0 <= epoch <= EPOCH_MAX:
            raise refuse("--epoch", f"{epoch} is not between 0 and {EPOCH_MAX}")
        arch = ARCH_ALIASES.get(arch, arch)
        if arch not in ARCHITECTURES:
            raise refuse("--architecture", f"{arch!r} is not one of {', '.join(ARCHITECTURES)}")
        if source_date_epoch is not None and not 0 <= source_date_epoch < 2**32:
            raise refuse(
                "--source-date-epoch",
                f"{source_date_epoch} is not a Unix time from 0 to {2**32 - 1} (rpm's 32 bits)",
            )
        if source_date_epoch is None:
            source_date_epoch = _midnight_utc_today()
        if maintainer is not None:
            check_maintainer(maintainer)
        if url is not None:
            check_url(url)
        for option, value in (
            ("--summary", summary),
            ("--vendor", vendor),
            ("--category", category),
        ):
            if value is not None:
                check_text(option, value)
        # Text from a file or a heredoc ends in a newline: that ends its last line,
        # it is no blank line (two are: rpm would drop the second, so it is refused).
        if description is not None and description.endswith("\n"):
            description = description[:-1]
        if changelog is not None and changelog.endswith("\n"):
            changelog = changelog[:-1]
        if description:  # fpm builds with an empty one, and so does rpm
            check_text("--description", description, multiline=True)
            if summary is None:  # as fpm: the first line stands for the whole
                summary = description.split("\n")[0].strip()
                if not summary:
                    raise refuse(
                        "--description",
                        f"{quoted(description)}: line 1, the summary without --summary, is blank",
                    )
        asked = changelog is not None and changelog not in _DEFAULT_CHANGELOGS
        entry = _changelog_entry(changelog) if changelog is not None else f"- {DEFAULT_CHANGELOG}"
        if not CHANGELOG_FIRST <= source_date_epoch < CHANGELOG_END:
            if asked:
                raise refuse("--source-date-epoch", _unkept_changelog(source_date_epoch))
            entry = None  # rpm would drop it: build without one (reproducible builds of old trees)
        depends = [Dependency.parse(d, "--depends") for d in requires]
        sections = [section for section, _ in scriptlets]
        if any(s not in SCRIPTLETS or sections.count(s) > 1 for s in sections):
            raise ValueError(f"scriptlets must be distinct, among {SCRIPTLETS}: {sections}")
        return cls(
            name=name,
            version=version,
            release=release,
            epoch=epoch,
            arch=arch,
            summary=summary if summary is not None else DEFAULT_SUMMARY,
            description=description,
            license=check_license(license) if license is not None else DEFAULT_LICENSE,
            url=url,
            vendor=vendor,
            maintainer=maintainer or DEFAULT_MAINTAINER,
            category=category or DEFAULT_CATEGORY,
            requires=tuple(d for d in depends if d.operator != "!="),
            provides=tuple(Dependency.parse(d, "--provides") for d in provides),
            # fpm's `-d 'foo != 1.0'` is a conflict with exactly that version
            conflicts=tuple(Dependency.parse(d, "--conflicts") for d in conflicts)
            + tuple(Dependency(d.name, "=", d.evr) for d in depends if d.operator == "!="),
            replaces=tuple(Dependency.parse(d, "--replaces") for d in replaces),
            changelog=entry,
            scriptlets=tuple(
                Scriptlet.from_text(section, text, f"--{SCRIPT_OPTIONS[section]}")
                for section, text in scriptlets
            ),
            placeholder=placeholder,
            source_date_epoch=source_date_epoch,
        )

    @property
    def evr(self) -> str:
        """[epoch:]version-release, as rpm prints it."""
        prefix = f"{self.epoch}:" if self.epoch is not None else ""
        return f"{prefix}{self.version}-{self.release}"

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"

    @property
    def changelog_date(self) -> str:
        """The date line rpm wants, e.g. "Thu Nov 26 2026" (English, not locale)."""
        when = datetime.fromtimestamp(self.source_date_epoch, tz=timezone.utc)
        day = _DAYS[when.weekday()]
        return f"{day} {_MONTHS[when.month - 1]} {when.day:02d} {when.year}"

    @property
    def full_description(self) -> str:
        if self.description is not None:
            return self.description
        return (
            f"A phony package built by mgmt-pkg. It exists to satisfy dependencies on\n"
            f"{self.name} and installs no software."
        )


def _unkept_changelog(source_date_epoch: int) -> str:
    day = datetime.fromtimestamp(source_date_epoch, tz=timezone.utc).date()
    if source_date_epoch < CHANGELOG_FIRST:
        why = "is before 1990-01-01, and rpm drops a %changelog entry older than that"
    else:
        why = "is after 2106-02-06, and rpm's 32-bit %changelog time would wrap to 1970"
    return (
        f"{source_date_epoch} ({day}) {why}: give a time from 1990-01-01 to 2106-02-06 "
        "(it may come from $SOURCE_DATE_EPOCH) or no --changelog"
    )


def _midnight_utc_today() -> int:
    """SOURCE_DATE_EPOCH when none is given: the changelog's date, so that
    builds of the same inputs on the same day are byte-identical."""
    now = datetime.now(timezone.utc)
    return int(datetime(now.year, now.month, now.day, tzinfo=timezone.utc).timestamp())
