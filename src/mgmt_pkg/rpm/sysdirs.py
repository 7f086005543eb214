"""Directories the base system's packages own, which a package of files must not own.

rpm installs two packages that own one directory only if both give it the
same mode, owner and group: a package that owns /usr/bin as 0755 (or /usr as
0750, as a tree made under umask 027 gives it) conflicts with the filesystem
package, and one that owns
/usr/lib/systemd/system with another mode conflicts with systemd. Such a
directory exists on every system anyway, so mgmt_pkg.rpm.payload never owns
one of them: not by its mode, not for being empty, and --directories refuses
it. The lists are Fedora's (filesystem, systemd); the rule for the first two
levels (/opt, /usr/share, /var/lib, ...) catches the other distributions' too.
"""

from __future__ import annotations

import re
from typing import Optional, Pattern, Sequence, Tuple

__all__ = ["system_folder", "system_owner"]

# Below the first two levels.
_FILESYSTEM = (
    "/etc/X11", "/etc/X11/*", "/etc/xdg", "/etc/xdg/*", "/etc/opt", "/etc/pki", "/etc/pm",
    "/etc/skel", "/etc/sysconfig", "/etc/bash_completion.d",
    "/usr/lib/debug", "/usr/lib/debug/*", "/usr/lib/games", "/usr/lib/locale",
    "/usr/lib/modules", "/usr/lib/sysimage", "/usr/lib64/games", "/usr/lib64/pm-utils",
    "/usr/local/bin", "/usr/local/etc", "/usr/local/games", "/usr/local/include",
    "/usr/local/lib", "/usr/local/lib64", "/usr/local/libexec", "/usr/local/sbin",
    "/usr/local/share", "/usr/local/share/applications", "/usr/local/share/info",
    "/usr/local/share/man", "/usr/local/share/man/man*", "/usr/local/src",
    "/usr/share/aclocal", "/usr/share/appdata", "/usr/share/applications",
    "/usr/share/augeas", "/usr/share/augeas/*", "/usr/share/backgrounds",
    "/usr/share/bash-completion", "/usr/share/bash-completion/*",
    "/usr/share/desktop-directories", "/usr/share/dict", "/usr/share/doc", "/usr/share/empty",
    "/usr/share/fish", "/usr/share/fish/*", "/usr/share/games", "/usr/share/gnome",
    "/usr/share/help", "/usr/share/icons", "/usr/share/idl", "/usr/share/info",
    "/usr/share/licenses", "/usr/share/locale", "/usr/share/locale/*",
    "/usr/share/locale/*/LC_MESSAGES", "/usr/share/man", "/usr/share/man/man*",
    "/usr/share/man/*/man*", "/usr/share/metainfo", "/usr/share/mime-info",
    "/usr/share/misc", "/usr/share/omf", "/usr/share/pixmaps", "/usr/share/sounds",
    "/usr/share/themes", "/usr/share/wayland-sessions", "/usr/share/X11",
    "/usr/share/xsessions", "/usr/share/zsh", "/usr/share/zsh/*",
    "/usr/src/debug", "/usr/src/kernels",
    "/var/lib/games", "/var/lib/misc", "/var/lib/rpm-state", "/var/spool/mail",
)  # fmt: skip
# Where packages put their units and drop-ins: systemd's.
_SYSTEMD = (
    "/etc/systemd", "/etc/systemd/*", "/etc/tmpfiles.d", "/etc/sysctl.d",
    "/etc/modules-load.d", "/etc/udev", "/etc/udev/rules.d",
    "/usr/lib/systemd", "/usr/lib/systemd/*", "/usr/lib/tmpfiles.d", "/usr/lib/sysusers.d",
    "/usr/lib/sysctl.d", "/usr/lib/modules-load.d", "/usr/lib/environment.d",
    "/usr/lib/udev", "/usr/lib/udev/rules.d",
)  # fmt: skip


def _compiled(patterns: Sequence[str]) -> Pattern[str]:
    """One regular expression for all ``patterns``: called for every path of a
    package, one match each (fnmatch per pattern took 4 s for 100,000 files).
    Their "*" stands for one component, never a "/"."""
    return re.compile("|".join(re.escape(p).replace(r"\*", "[^/]*") for p in patterns))


# The first two levels (/usr/bin, /var/lib, /etc) are all the filesystem package's.
_OWNERS = (
    ("the filesystem package", _compiled(("/*", "/usr/*", "/var/*", *_FILESYSTEM))),
    ("systemd", _compiled(_SYSTEMD)),
)


# The folders of the first two levels themselves (Fedora's filesystem package,
# with Debian's lib32 and libx32 and the names other distributions add).
_TOP_FOLDERS = tuple(
    f"{parent}/{name}"
    for parent, names in (
        ("", "afs bin boot dev etc home lib lib32 lib64 libx32 media mnt opt proc root run "
             "sbin srv sys tmp usr var"),
        ("/usr", "bin games include lib lib32 lib64 libexec libx32 local sbin share src tmp"),
        ("/var", "adm backups cache crash db empty ftp games gopher kerberos lib local lock "
                 "log mail nis opt preserve run spool tmp yp"),
    )
    for name in names.split()
)  # fmt: skip

# Where the base system has a folder on every system, for mgmt_pkg.rpm.layout's
# check of files: a file or symlink there (bin/tool=/usr/bin) fails to install.
# The patterns above are folders those packages own *if they exist*, which is
# enough to leave a folder unowned; but their "*" also matches files users
# package (/README.app, /etc/X11/xorg.conf, /etc/systemd/zram-generator.conf,
# /usr/share/bash-completion/bash_completion), so only these of them count here.
_FOLDERS = (
    ("the filesystem package", _compiled((
        *_TOP_FOLDERS, *(p for p in _FILESYSTEM if "*" not in p),
        "/usr/share/man/man*", "/usr/share/man/*/man*", "/usr/local/share/man/man*",
        "/usr/share/locale/*/LC_MESSAGES",
    ))),
    ("systemd", _compiled((
        *(p for p in _SYSTEMD if "*" not in p),
        "/etc/systemd/system", "/etc/systemd/user", "/etc/systemd/network",
        "/usr/lib/systemd/system", "/usr/lib/systemd/user", "/usr/lib/systemd/network",
        "/usr/lib/systemd/system-generators", "/usr/lib/systemd/user-generators",
        "/usr/lib/systemd/system-preset", "/usr/lib/systemd/user-preset",
        "/usr/lib/systemd/system-shutdown", "/usr/lib/systemd/system-sleep",
    ))),
)  # fmt: skip


def system_folder(path: str) -> Optional[str]:
    """Which base package has a folder at ``path`` (absolute, normalised) on every
    system, where a file or symlink cannot be installed, or None."""
    return _first_owner(_FOLDERS, path)


def system_owner(path: str) -> Optional[str]:
    """Which base package owns directory ``path`` (absolute, normalised), e.g.
    "the filesystem package", or None for a directory of the package's own."""
    return _first_owner(_OWNERS, path)


def _first_owner(owners: Sequence[Tuple[str, Pattern[str]]], path: str) -> Optional[str]:
    if path == "/":
        return "the filesystem package"
    return next((owner for owner, pattern in owners if pattern.fullmatch(path)), None)
