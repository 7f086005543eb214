"""Checks on the package's paths as a whole, once every SRC is walked.

Each one refuses (exit 2, naming the paths) what rpmbuild or rpm would fail on
later, with a message about tar or cpio, or would build without a word:

- a file or symlink where the system has a directory (``bin/tool=/usr/bin``,
  the trailing slash forgotten): rpm fails to install it over /usr/bin;
- a path below a file or symlink of the package (two mappings, or one into a
  tree's symlink): %install's tar fails on it, or writes where the link points;
- a path two SRCs give, but for a folder (trees mapped to one DEST; ``merged``);
- nothing but folders it does not own (system folders, mgmt_pkg.rpm.sysdirs,
  or folders whose files were all excluded): an RPM without a file.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Dict, Sequence

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.rpm.payload import Entry, shown
from mgmt_pkg.rpm.sysdirs import system_folder, system_owner

__all__ = ["check_layout", "merged"]

# The filesystem package's symlinks among the folders of mgmt_pkg.rpm.sysdirs (Fedora's).
_SYSTEM_LINKS = frozenset(
    ("/bin", "/sbin", "/lib", "/lib64", "/usr/tmp", "/var/lock", "/var/mail", "/var/run")
)


def check_layout(entries: Sequence[Entry]) -> None:
    """Refuse a layout rpm cannot build or install; ``entries`` sorted by path."""
    by_path = {entry.path: entry for entry in entries}
    for entry in entries:
        # Not the filesystem package's own symlinks (/bin -> usr/bin on merged-/usr
        # systems), which a package of a whole tree may hold as the same link.
        linked = entry.kind == "symlink" and entry.path in _SYSTEM_LINKS
        owner = None if entry.kind == "dir" or linked else system_folder(entry.path)
        if owner is not None:
            raise InvalidInput(
                f"{shown(entry.path)} is a directory of {owner}, not a {entry.kind}: to "
                f"put the {entry.kind} in it, end DEST with '/' ({shown(entry.path)}/)"
            )
        _check_parent(entry.path, by_path)
    if all(entry.kind == "dir" and not entry.owned for entry in entries):
        mine = [entry.path for entry in entries if system_owner(entry.path) is None]
        if mine:  # not empty on disk (else it would be owned)
            raise InvalidInput(
                f"nothing to package: {shown(mine[0])} holds no file, symlink or folder "
                "to own (did --exclude leave out every file in it?)"
            )
        raise InvalidInput(
            f"nothing to package: only empty system folders ({shown(entries[-1].path)}), "
            "which the package leaves to the packages that own them"
        )


def _check_parent(path: str, by_path: Dict[str, Entry]) -> None:
    folder = posixpath.dirname(path)
    while folder != "/":
        parent = by_path.get(folder)
        if parent is not None and parent.kind == "dir":
            return  # its own parents are checked with it
        if parent is not None:
            why = (
                "map it below the directory the symlink points to"
                if parent.kind == "symlink"
                else "a path cannot be both a file and a directory"
            )
            raise InvalidInput(
                f"{shown(path)} is below {shown(folder)}, a {parent.kind} in the "
                f"package, not a directory: {why}"
            )
        folder = posixpath.dirname(folder)


def merged(mapping: str, old: Entry, new: Entry, moded: bool) -> Entry:
    """A path that two SRCs give: only folders (trees mapped to one DEST) merge.
    A folder owned for its mode keeps it whichever SRC comes first; two such
    modes are refused unless --rpm-attr gives the folder its mode."""
    if old.kind != "dir" or new.kind != "dir":
        raise InvalidInput(f"{shown(mapping)}: {shown(new.path)} is already given by another SRC")
    modes = sorted({e.mode for e in (old, new) if e.owned and e.mode != 0o755})
    if len(modes) > 1 and not moded:
        raise InvalidInput(
            f"{shown(mapping)}: {shown(new.path)} is a folder of mode {modes[0]:04o} in one SRC "
            f"and {modes[1]:04o} in another: give it one with --rpm-attr MODE,-,-:{shown(new.path)}"
        )
    return replace(new, mode=modes[0] if modes else new.mode, owned=old.owned or new.owned)
