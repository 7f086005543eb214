"""The files of a package: fpm's ``SRC[=DEST]`` mappings, walked into entries.

``collect`` turns the command line into a sorted tuple of :class:`Entry`:
every file, symlink and directory with its path in the package, its mode,
owner and %config / %dir flags. It never follows a symlink (a link is packaged
as a link), refuses what rpm cannot package (devices, FIFOs, names with control
characters or that are not UTF-8) with the path named, and reads nothing but
metadata: the tarball (mgmt_pkg.rpm.tarball) reads the contents later. How
each argument is split and where its DEST lands is mgmt_pkg.rpm.mapping's.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import posixpath
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.rpm.mapping import check_absolute, check_segments, destination, normal, split_mapping
from mgmt_pkg.rpm.sysdirs import system_owner

__all__ = ["Attr", "Entry", "check_output_outside", "collect", "parse_attr"]

_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?\Z")


@dataclass(frozen=True)
class Entry:
    """One path in the package. ``source`` is the file to read (files only)."""

    path: str  # absolute, normalised: "/usr/share/foo/a b.txt"
    kind: str  # "file", "dir" or "symlink"
    mode: int  # permission bits, 0o7777 (ignored by rpm for symlinks)
    user: str = "root"
    group: str = "root"
    source: Optional[Path] = None
    target: Optional[str] = None  # a symlink's text
    config: bool = False
    owned: bool = False  # a directory listed as %dir
    # (st_dev, st_ino) of a file: names of one inode (hard links, or one file
    # given twice) stay hard links, as in fpm (mgmt_pkg.rpm.hardlinks).
    inode: Optional[Tuple[int, int]] = None


@dataclass(frozen=True)
class Attr:
    """--rpm-attr MODE,USER,GROUP:PATH; None where the user wrote "-"."""

    path: str
    mode: Optional[int]
    user: Optional[str]
    group: Optional[str]


def parse_attr(text: str) -> Attr:
    """fpm's ``--rpm-attr`` syntax: ``0640,root,wheel:/etc/foo`` ("-" keeps a field)."""
    fields, colon, path = text.partition(":")
    parts = fields.split(",")
    if not colon or len(parts) != 3 or not path.startswith("/"):
        raise InvalidInput(f"--rpm-attr: {text!r} is not MODE,USER,GROUP:/PATH")
    check_segments(f"--rpm-attr: {text!r}", path)
    mode, user, group = (None if part == "-" else part for part in parts)
    if mode is not None and not re.fullmatch(r"0?[0-7]{3,4}", mode):  # 644, 0644, 07777
        raise InvalidInput(f"--rpm-attr: {text!r}: mode {mode!r} is not octal (e.g. 0640)")
    for name in (user, group):
        if name is not None:
            check_owner("--rpm-attr", name)
    return Attr(normal(path), None if mode is None else int(mode, 8), user, group)


def check_owner(option: str, name: str) -> str:
    if not _USER.match(name):
        raise InvalidInput(f"{option}: {name!r} is not a user or group name")
    return name


def collect(
    mappings: Sequence[str],
    *,
    prefix: Optional[str] = None,
    exclude: Sequence[str] = (),
    config_files: Sequence[str] = (),
    directories: Sequence[str] = (),
    attrs: Sequence[Attr] = (),
    user: str = "root",
    group: str = "root",
) -> Tuple[Entry, ...]:
    """Walk each ``SRC[=DEST]`` into entries, sorted by path."""
    if not mappings:
        raise InvalidInput("give at least one SRC[=DEST] to package")
    check_owner("--rpm-user", user)
    check_owner("--rpm-group", group)
    if prefix is not None:
        check_absolute("--prefix", prefix)
    # Imported here: both modules build on this module's Entry.
    from mgmt_pkg.rpm.hardlinks import check_hard_links
    from mgmt_pkg.rpm.layout import check_layout, merged

    found: Dict[str, Entry] = {}
    moded = {attr.path for attr in attrs if attr.mode is not None}
    for mapping in mappings:
        for entry in _walk(mapping, prefix, exclude, user, group):
            if entry.path in found:
                entry = merged(mapping, found[entry.path], entry, entry.path in moded)
            found[entry.path] = entry
    if not found:
        raise InvalidInput("nothing to package: every path given was excluded")
    _add_folders(found, directories, user, group)
    _mark(found, config_files, "--config-files", lambda e: replace(e, config=True), "file")
    _mark(found, directories, "--directories", lambda e: replace(e, owned=True), "dir")
    attributed = set()
    for attr in attrs:
        if attr.path not in found:
            raise InvalidInput(f"--rpm-attr: {attr.path} is not in the package")
        if attr.path in attributed:  # which one was meant? (fpm keeps the last in silence)
            raise InvalidInput(f"--rpm-attr: {attr.path} is given twice")
        attributed.add(attr.path)
        entry = found[attr.path]
        if entry.kind == "symlink" and attr.mode is not None:  # rpmbuild drops it, warning
            keep = f"-,{attr.user or '-'},{attr.group or '-'}:{attr.path}"
            raise InvalidInput(
                f"--rpm-attr: {shown(attr.path)} is a symlink, which rpm installs as 0777 whatever "
                f"the mode; give its owner alone ({keep})"
            )
        owner = system_owner(attr.path) if entry.kind == "dir" else None
        if owner is not None:  # owned with its %attr: as --directories (_add_folders)
            raise InvalidInput(f"--rpm-attr: {attr.path} is {owner}'s; give a folder below it")
        found[attr.path] = replace(
            entry,
            mode=entry.mode if attr.mode is None else attr.mode,
            user=attr.user or entry.user,
            group=attr.group or entry.group,
            owned=entry.owned or entry.kind == "dir",  # else rpm never sees the %attr
        )
    entries = tuple(found[path] for path in sorted(found))
    check_layout(entries)
    check_hard_links(entries)
    return entries


def _walk(
    mapping: str, prefix: Optional[str], exclude: Sequence[str], user: str, group: str
) -> Iterator[Entry]:
    source, dest = destination(mapping, prefix)
    followed = split_mapping(mapping)[0].endswith("/")  # "linkdir/": the directory it leads to
    try:
        top = source.stat() if followed else source.lstat()
    except OSError as error:
        raise InvalidInput(
            f"{shown(mapping)}: cannot read {shown(source)}: {error.strerror}"
        ) from None
    if followed and not stat.S_ISDIR(top.st_mode):
        raise InvalidInput(f"{shown(mapping)}: {shown(source)}/ is not a directory")
    # "/" is kept as "" so that children are "/name", not "//name".
    stack: List[Tuple[Path, str, str, os.stat_result]] = [(source, dest.rstrip("/"), "", top)]
    while stack:
        path, in_package, relative, info = stack.pop()
        if relative and _excluded(exclude, in_package, relative):
            continue
        _check_name(path, in_package)
        kind = _kind(path, info)
        if kind != "dir":
            _check_length(path, in_package)
        # SRC itself stands for DEST, which gets the tree's contents, not its mode:
        # owned (--directories, or empty), DEST is 0755 as rpm makes a folder.
        mode = 0o755 if kind == "dir" and not relative else stat.S_IMODE(info.st_mode)
        entry = Entry(in_package or "/", kind, mode, user, group)
        if kind == "file":
            entry = replace(entry, source=path, inode=(info.st_dev, info.st_ino))
        elif kind == "symlink":
            entry = replace(entry, target=_link_text(path, in_package))
        else:
            try:
                names = sorted(os.listdir(path))
            except OSError as error:
                raise InvalidInput(f"{shown(path)}: cannot list: {error.strerror}") from None
            # An empty directory is kept, so it is owned; so is one below SRC whose
            # mode is not rpm's 0755 for the directories it makes (its mode is kept),
            # but for 0775: that is the umask 002 (Fedora's and Debian's default for
            # users), not a choice, and owned for it /usr/lib/python3.12 or
            # /etc/logrotate.d would conflict with the package that owns them.
            # Never a system one (/usr/bin, /usr/lib/systemd/system): it exists
            # already, and owning it with another mode (0700 under umask 077)
            # would conflict with the package that owns it.
            mine = system_owner(entry.path) is None
            owned = not names or (relative != "" and entry.mode not in (0o755, 0o775))
            entry = replace(entry, owned=owned and mine)
            for name in reversed(names):
                child = path / name
                try:  # a folder we may list but not enter (chmod -R 644), a path over PATH_MAX
                    found = child.lstat()
                except OSError as error:
                    raise InvalidInput(f"{shown(child)}: cannot read: {error.strerror}") from None
                stack.append(
                    (child, f"{in_package}/{name}", f"{relative}/{name}".lstrip("/"), found)
                )
        if entry.path != "/":  # "root/=/" packages what is in root, never / itself
            yield entry


def check_output_outside(
    mappings: Sequence[str],
    output_dir: str,
    *,
    prefix: Optional[str] = None,
    exclude: Sequence[str] = (),
) -> None:
    """Refuse an output folder that a tree being packaged holds (``./=/usr/share/foo``
    with the default ``-o .``): the next build would walk this one's spec, SRPM
    and RPM into its package, so one command would give another package each
    time. Refused on the first build too, before the folder exists, unless an
    --exclude leaves it out of the walk. By real paths: the walk follows no
    symlink below SRC, so any folder below the tree's real path is reached."""
    if not output_dir:
        return  # refused where the folder is made, as empty
    output = os.path.realpath(output_dir)
    for mapping in mappings:
        source, dest = destination(mapping, prefix)
        followed = split_mapping(mapping)[0].endswith("/")
        if not os.path.isdir(source) or (os.path.islink(source) and not followed):
            continue  # a file or a symlink: no folder is walked
        top = os.path.realpath(source)
        if output != top and not output.startswith(top.rstrip("/") + "/"):
            continue
        in_package, relative = dest.rstrip("/"), ""
        below = [] if output == top else output[len(top) :].strip("/").split("/")
        for name in below:  # as _walk reaches it: an excluded folder hides what it holds
            in_package, relative = f"{in_package}/{name}", f"{relative}/{name}".lstrip("/")
            if _excluded(exclude, in_package, relative):
                break
        else:
            hint = f" (or --exclude {shown(relative)})" if relative else ""
            raise InvalidInput(
                f"--output-dir {shown(output_dir)}: inside SRC {shown(mapping)}, which is "
                "packaged: the next build would package this one's spec, SRPM and RPM; give "
                f"an --output-dir outside it{hint}"
            )


def _excluded(patterns: Sequence[str], in_package: str, relative: str) -> bool:
    """fpm's --exclude: a glob matched against the path below SRC, the path in
    the package, or the bare name."""
    candidates = (relative, in_package, in_package.lstrip("/"), posixpath.basename(relative))
    return any(fnmatch.fnmatchcase(c, p) for p in patterns for c in candidates)


def _kind(path: Path, info: os.stat_result) -> str:
    if stat.S_ISLNK(info.st_mode):
        return "symlink"
    if stat.S_ISDIR(info.st_mode):
        return "dir"
    if stat.S_ISREG(info.st_mode):
        return "file"
    raise InvalidInput(
        f"{shown(path)}: not a file, directory or symlink; rpm cannot package it here"
    )


def shown(path: object) -> str:
    """A path as an error message shows it: as is if printable, else quoted
    (a newline or line separator would break the one-line message), as the
    bytes on disk if it is not UTF-8 (not Python's "\udce9" for the byte 0xe9)."""
    text = str(path)
    if text.isprintable():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return repr(os.fsencode(text))
    return repr(text)


def _check_name(path: Path, in_package: str) -> None:
    """rpm refuses control characters in names (even tab), and names are UTF-8 in rpm."""
    try:
        in_package.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{shown(path)}: the name is not UTF-8, which rpm needs") from None
    bad = [c for c in in_package if ord(c) < 0x20 or ord(c) == 0x7F]
    if bad:
        raise InvalidInput(f"{shown(path)}: the name contains {bad[0]!r}, which rpm refuses")


# rpm writes each file and symlink as NAME;%08x (9 bytes more) and renames it
# into place: a name past 246 bytes builds, then fails to install (NAME_MAX 255).
MAX_NAME_BYTES = 255 - len(";12345678")


def _check_length(path: Path, in_package: str) -> None:
    size = len(posixpath.basename(in_package).encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise InvalidInput(
            f"{shown(path)}: the name has {size} bytes; rpm installs files and symlinks "
            f"of at most {MAX_NAME_BYTES}"
        )


def _link_text(path: Path, in_package: str) -> str:
    target = os.readlink(path)
    _check_name(path, target)
    try:
        os.stat(path)
    except OSError as error:
        # rpmbuild classifies each file by what it points to: a loop fails the build.
        if error.errno == errno.ELOOP:
            raise InvalidInput(
                f"{shown(path)}: a symlink loop (-> {shown(target)}), which rpmbuild refuses"
            ) from None
    return target


def _add_folders(
    found: Dict[str, Entry], directories: Sequence[str], user: str, group: str
) -> None:
    """A ``--directories`` folder that only holds what SRC=DEST mappings put there
    (``--directories /opt/app bin/tool=/opt/app/bin/tool``, as fpm is used): it
    and each folder between it and what it holds become entries to own, 0755
    as fpm's staging folders are. Never one of the base system's (the filesystem
    package's, systemd's): rpm refuses to install two packages that own one
    folder with other modes (/usr/bin is 0555 there, /tmp 1777); see
    mgmt_pkg.rpm.sysdirs."""
    for raw in directories:
        if not raw:
            continue  # refused by _mark
        check_segments("--directories", raw)  # before normal resolves a ".."
        top = normal(raw)
        owner = system_owner(top)
        if owner is not None:  # also one a tree puts in the package: it is the same folder
            raise InvalidInput(f"--directories: {top} is {owner}'s; give a folder below it")
        if top in found:
            continue  # marked by _mark
        below = f"{top}/"
        for path in [p for p in found if p.startswith(below)]:
            folder = posixpath.dirname(path)
            while folder != posixpath.dirname(top):
                found.setdefault(folder, Entry(folder, "dir", 0o755, user, group))
                folder = posixpath.dirname(folder)


def _mark(found: Dict[str, Entry], paths: Sequence[str], option: str, change, kind: str) -> None:
    """Apply ``change`` to the entry at each path and, for a directory, to
    every entry of ``kind`` below it (fpm marks trees recursively)."""
    for raw in paths:
        if not raw:
            raise InvalidInput(f"{option}: '' is empty; give a path in the package")
        check_segments(option, raw)
        top = normal(raw)
        below = f"{top.rstrip('/')}/"
        if top == "/" and top not in found:
            raise InvalidInput(f"{option}: / is the filesystem package's; give a folder below it")
        if top not in found and not any(p.startswith(below) for p in found):
            raise InvalidInput(f"{option}: {shown(raw)} is not in the package")
        hits = [p for p in found if (p == top or p.startswith(below)) and found[p].kind == kind]
        if not hits:
            raise InvalidInput(f"{option}: {shown(raw)} holds no {kind}")
        for path in hits:
            found[path] = change(found[path])
