"""How the pkg kind spells a package: which names and versions it takes, and
which spellings name the same package.

dnf reads much more than a name in its arguments: ``*``, ``?`` and ``[...]``
are globs (``mgmt-test-[bc]`` installs two packages, none of them named so),
``@x`` a group or module, ``/x`` a file's owner, ``x >= 1`` a provide. A
resource manages one package, so its name may hold only what package names
and versions are made of; anything else is refused when the graph is read.

``NAME.ARCH`` is one architecture of NAME (``glibc.i686`` beside
``glibc.x86_64``), as dnf and rpm read it; a suffix that is no architecture is
part of the name (``python3.11``). The bare NAME covers every architecture.
"""

from typing import List, Optional, Tuple

from mgmt.resources.fields import FieldError, shown

# rpm's architectures (rpmrc's arch_canon and the ones Fedora and RHEL build):
# what dnf takes as the ARCH of NAME.ARCH.
# fmt: off
ARCHES = frozenset((
    "noarch", "src", "nosrc",
    "x86_64", "x86_64_v2", "x86_64_v3", "x86_64_v4", "amd64", "ia32e", "em64t",
    "i386", "i486", "i586", "i686", "athlon", "geode", "pentium3", "pentium4",
    "aarch64", "armv3l", "armv4b", "armv4l", "armv4tl", "armv5tel", "armv5tejl",
    "armv6l", "armv6hl",
    "armv7l", "armv7hl", "armv7hnl", "armv8l", "armv8hl", "armv8hnl", "armv8hcnl",
    "ppc", "ppc64", "ppc64le", "ppc64p7",
    "ppc64pseries", "ppc64iseries", "ppciseries", "ppcpseries",
    "s390", "s390x", "ia64", "riscv64", "loongarch64", "m68k",
    "alpha", "alphaev5", "alphaev56", "alphaev6", "alphaev67", "alphapca56",
    "sparc", "sparcv8", "sparcv9", "sparcv9v", "sparc64", "sparc64v", "sh3", "sh4", "sh4a",
    "mips", "mipsel", "mips64", "mips64el", "mipsr6", "mipsr6el", "mips64r6", "mips64r6el",
))
# fmt: on

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# What package names and versions are made of; ':' only in a version (the epoch).
NAME_CHARS = frozenset(_ALNUM + "-._+~^")
VERSION_CHARS = NAME_CHARS | {":"}


def check_name(field: str, value: str) -> None:
    """Refuse what is no package name to dnf and rpm (a glob, an option, a file)."""
    _check(field, value, NAME_CHARS, "package name", "- . _ + ~ ^")


# What other tools call a state (Ansible, Puppet, Salt) or a dnf action, and what this
# kind calls it: as a version each would be asked of dnf as NAME-latest, and fail only
# at run time. Checked without case, the kind's own words too ("Installed").
OTHER_STATES = {
    "absent": "uninstalled", "removed": "uninstalled", "purged": "uninstalled",
    "remove": "uninstalled", "uninstall": "uninstalled", "erase": "uninstalled",
    "present": "installed", "install": "installed", "latest": "newest", "upgrade": "newest",
    "update": "newest", "installed": "installed", "uninstalled": "uninstalled",
    "newest": "newest",
}  # fmt: skip


def check_version(field: str, value: str) -> None:
    """Refuse what is no version (``1.2``, ``1.2-3``, ``2:1.2-3``)."""
    meant = OTHER_STATES.get(value.lower())
    if meant is not None:
        raise FieldError(field, f"{shown(value)} is no state here: did you mean {shown(meant)}?")
    others = "- . _ + ~ ^ (and : for the epoch)"
    _check(field, value, VERSION_CHARS, "package name or version", others)
    epoch, colon, rest = value.rpartition(":")
    parts = rest.split("-")
    # Each of version and release starts and ends with a letter or a digit (1.0~rc1,
    # 1.0^git1 and 1.2_3+b are versions; 1.0-, 1.0-1. and ~ are not).
    ends = [part[:1] + part[-1:] for part in parts]
    if (
        (colon and not epoch.isdigit())
        or len(parts) > 2
        or not all(end and end.isalnum() for end in ends)
    ):
        raise FieldError(field, f"{shown(value)} is not a version (1.2, 1.2-3 or 2:1.2-3)")


def _check(field: str, value: str, allowed: frozenset, what: str, others: str) -> None:
    bad = next((c for c in value if c not in allowed), None)
    if bad is not None:
        raise FieldError(
            field,
            f"{shown(value)} is not a {what}: {shown(bad)} is not allowed (only letters, digits "
            f"and {others}: dnf reads other characters as patterns, files or groups)",
        )
    if not value or value.startswith("-") or value.startswith("."):
        raise FieldError(field, f"{shown(value)} is not a {what}")


def split_arch(name: str) -> Tuple[str, Optional[str]]:
    """``glibc.i686`` -> (``glibc``, ``i686``); a name without an architecture -> (name, None)."""
    base, dot, arch = name.rpartition(".")
    if dot and base and arch in ARCHES:
        return base, arch
    return name, None


def check_pinned(name: str, version: str) -> None:
    """dnf reads an architecture only after a release (NAME-VERSION-RELEASE.ARCH):
    NAME.ARCH with a version alone could not be asked for."""
    if split_arch(name)[1] is not None and "-" not in version:
        raise FieldError(
            "state",
            f"{shown(version)}: {name} names an architecture, so give the release too "
            f"(such as '{version}-1'): dnf takes NAME-VERSION-RELEASE.ARCH only",
        )


def pinned(name: str, version: str) -> str:
    """What dnf and rpm take for one version of ``name``: NAME-VERSION, and for
    NAME.ARCH the architecture last (NAME-VERSION-RELEASE.ARCH, as in a package's
    file name): NAME.ARCH-VERSION matches nothing."""
    base, arch = split_arch(name)
    return f"{base}-{version}" + (f".{arch}" if arch else "")


def identities(name: str) -> List[str]:
    """The autoedge ids of a package resource: two resources clash when they share one.

    The graph compares ids exactly, so the bare name, which covers every
    architecture, provides NAME.ARCH for each: it clashes with the bare name
    and with any NAME.ARCH, while two architectures of one name do not clash.
    """
    base, arch = split_arch(name)
    if arch is not None:
        return [f"pkg:{base}.{arch}"]
    return [f"pkg:{base}", *(f"pkg:{base}.{a}" for a in sorted(ARCHES))]
