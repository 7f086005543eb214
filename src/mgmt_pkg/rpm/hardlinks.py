"""Hard links among the files of a package, kept as hard links (as fpm's dir source does).

Two packaged names are one file when their (st_dev, st_ino) match, as
mgmt_pkg.rpm.payload records them (also one file given twice: fpm links its
second copy too); names of the inode that are not packaged
(excluded, outside every SRC) do not count. The first name in sorted order
carries the content in Source0 (mgmt_pkg.rpm.tarball); each later one is a tar
hard link to it, so %install extracts one inode and rpmbuild records the group
as one (FILENLINKS, one payload copy). The choice depends on the paths only,
never on inode numbers, so the tarball and the RPM stay byte-identical.

rpm keeps one mode, owner and group per inode (it sets them once per inode on
install), and %config is a property of the content it keeps or replaces: a
group whose names were given different ones (--rpm-attr, --config-files on one
name) cannot be built as asked, and is refused naming both paths.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.rpm.payload import Entry, shown

__all__ = ["check_hard_links", "link_targets"]


def link_targets(entries: Sequence[Entry]) -> Dict[str, str]:
    """Each later name of a hard-linked file -> the first name (in sorted order)."""
    first: Dict[Tuple[int, int], str] = {}
    targets: Dict[str, str] = {}
    for entry in sorted(entries, key=lambda e: e.path):
        if entry.kind != "file" or entry.inode is None:
            continue
        if entry.inode in first:
            targets[entry.path] = first[entry.inode]
        else:
            first[entry.inode] = entry.path
    return targets


def _difference(one: Entry, other: Entry) -> Optional[str]:
    if one.mode != other.mode:
        return f"mode {one.mode:04o} and {other.mode:04o}"
    if (one.user, one.group) != (other.user, other.group):
        return f"owner {one.user}:{one.group} and {other.user}:{other.group}"
    if one.config != other.config:
        return "%config on one name only"
    return None


def check_hard_links(entries: Sequence[Entry]) -> None:
    """Refuse a hard-linked group whose names were given different attributes."""
    by_path = {entry.path: entry for entry in entries}
    for later, first in sorted(link_targets(entries).items()):
        why = _difference(by_path[first], by_path[later])
        if why is not None:
            raise InvalidInput(
                f"{shown(first)} and {shown(later)} are one file (hard links) but were "
                f"given {why}; rpm keeps one per file: give both the same --rpm-attr "
                "and --config-files, or package copies"
            )
