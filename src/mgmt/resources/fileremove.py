"""Removing a directory tree: the file kind's one way to do it, behind one guard.

A tree goes three ways: ``state: absent`` with ``recurse``, ``force`` replacing a
directory by a file (or, in a copied tree, by what the source has there), and a
tree copy with ``force`` removing what its source lacks. Each goes through
:func:`remove_tree`, which refuses, as ``rm --preserve-root`` does but wider:

- ``/``, always, whatever the fields say;
- the top-level directories of the file-system hierarchy and the home
  directory, unless the resource's own path names it (not a link leading
  there) and it sets both ``recurse: true`` (a tree may go) and
  ``force: true`` (even that one).

The same check runs when the graph is read (:func:`refuse_protected`, on the
path as named and as this host resolves it) and again right before the
removal, on where the path leads then: the folder above is opened and asked
where it really is, so a parent swapped for a link to ``/`` meanwhile is seen.
The removal itself works through descriptors (never following a link, even
one swapped in while it runs) and is written for Python 3.6, whose
shutil.rmtree takes no dir_fd.
"""

import contextlib
import errno
import os
import pwd
import stat
from typing import Any, List, Mapping, Optional, Set, Tuple

from mgmt.resources.base import ResourceError

# The top-level directories of the file-system hierarchy (FHS 3.0) and "/".
# /lib* is every /lib variant the host has (lib, lib64, lib32, libx32).
SYSTEM_DIRS = (
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32",
    "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp",
    "/usr", "/var",
)  # fmt: skip

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# How the kernel writes a space, tab, newline and backslash in a mount point (\\134 last).
_ESCAPES = ((b"\\040", b" "), (b"\\011", b"\t"), (b"\\012", b"\n"), (b"\\134", b"\\"))

Refusal = Tuple[str, str]  # (the field to point at, the message)


def protected_paths() -> Set[str]:
    """Paths no tree removal takes without ``recurse`` and ``force``, as the host resolves them.

    Both the listed name and what it resolves to (``/lib`` -> ``/usr/lib`` on a
    merged-/usr host), every ``/lib*`` the host has, and the home directory of
    the user the agent runs as (from the password database and ``$HOME``).
    """
    names = set(SYSTEM_DIRS)
    with contextlib.suppress(OSError):
        names.update("/" + entry for entry in os.listdir("/") if entry.startswith("lib"))
    for home in (os.environ.get("HOME"), _passwd_home()):
        if home and home.startswith("/"):
            names.add(os.path.normpath(home))
    out = set(names)
    for name in names:
        with contextlib.suppress(OSError):  # an unreadable link: its name still counts
            out.add(os.path.realpath(name))
    return out


def _passwd_home() -> Optional[str]:
    try:
        return pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        return None


def may_remove_tree(params: Mapping[str, Any], is_dir: bool) -> bool:
    """Whether a file resource with ``params`` can remove a directory tree at its path
    (``is_dir``: the path ends in /, a directory is wanted there)."""
    if params.get("state") == "absent":
        return bool(params.get("recurse"))
    if not params.get("force"):
        return False
    # force replaces a directory by a file, or removes what a copied source lacks;
    # a directory wanted without a source only replaces a file or a link by one.
    return not is_dir or params.get("source") is not None


def refusal(named: str, real: str, params: Mapping[str, Any], own: bool) -> Optional[Refusal]:
    """Why removing the tree ``named`` (which leads to ``real``) is refused, or None.
    ``own``: it is the resource's own path, where its fields may allow a protected one."""
    if "/" in (named, real):
        shown = "/" if named == "/" else f"{named}, which leads to /,"
        return "path", f"refusing to remove {shown}: never allowed, not even with force: true"
    protected = protected_paths()
    if named not in protected and real not in protected:
        return None
    # The opt-in is for the path the graph names: it never covers a system
    # directory reached under another name (a link on the way, maybe swapped in
    # while the agent runs).
    if own and named in protected and params.get("recurse") and params.get("force"):
        return None
    shown = named if named == real else f"{named} (which is {real})"
    if not own or named not in protected:
        return "path", (
            f"refusing to remove {shown}: a top-level system directory or the home, "
            "removed only when the path names it (with recurse: true and force: true)"
        )
    field = "force" if params.get("recurse") else "recurse"
    return (
        field,
        f"refusing to remove {shown} recursively: a top-level system directory or the home "
        "directory (set recurse: true and force: true to allow it)",
    )


def refuse_protected(path: str, params: Mapping[str, Any], is_dir: bool) -> Optional[Refusal]:
    """At graph load: why this resource's path may never lose its tree, or None."""
    if not may_remove_tree(params, is_dir):
        return None
    named = os.path.normpath(path)
    try:
        real = os.path.realpath(named)
    except OSError as err:  # a link on the way this user cannot read (EACCES)
        return "path", f"cannot tell where {path} leads: {err.strerror or err}"
    return refusal(named, real, params, own=True)


def remove_tree(res: Any, path: str, dir_fd: Optional[int] = None) -> None:
    """Remove the directory tree at ``path`` for the file resource ``res``, once the
    guard agrees on where the path leads now; ResourceError if it does not.
    ``dir_fd``: the folder holding it, already open (a copied tree's, see
    mgmt.resources.filetree); ``path`` then names it for the guard and messages."""
    named = os.path.normpath(path)
    folder, name = os.path.split(named)
    if not name:
        raise ResourceError(repr(res), refusal("/", "/", res.params, False)[1])
    if dir_fd is None:
        parent = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # links followed
    else:
        parent = dir_fd
    try:
        real = os.path.join(_where(parent, folder), name)
        refused = refusal(named, real, res.params, own=named == res.path)
        if refused:
            raise ResourceError(repr(res), refused[1])
        mounted = mounts_in(real)
        if mounted:  # rm -r would empty that file system, then fail at its mount point
            message = f"refusing to remove {named}: {mounted[0]} is mounted inside it"
            raise ResourceError(repr(res), message + " (unmount it first)")
        _remove_at(parent, name)
    finally:
        if dir_fd is None:
            os.close(parent)


def mounts_in(real: str) -> List[str]:
    """The mount points at ``real`` or inside it, as this agent's mount namespace
    has them (/proc/self/mountinfo: a bind mount of the tree's own file system
    too, which st_dev would not tell); none when that cannot be read."""
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    inside = real.rstrip("/") + "/"
    found = []
    for line in lines:
        fields = line.split(b" ")
        if len(fields) > 4:
            point = fields[4]
            for escaped, char in _ESCAPES:
                point = point.replace(escaped, char)
            point = os.fsdecode(point)
            if point == real or point.startswith(inside):
                found.append(point)
    return sorted(found)


def _where(fd: int, folder: str) -> str:
    """Where the open folder ``fd`` really is: what the kernel says, else realpath."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(folder)


def _remove_at(parent: int, name: str) -> None:
    """rm -r of ``name`` in the open folder ``parent``, never following a link."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):  # a link or a file (swapped in): itself
            os.unlink(name, dir_fd=parent)
            return
        raise
    try:
        for entry in os.listdir(fd):
            if stat.S_ISDIR(os.lstat(entry, dir_fd=fd).st_mode):
                _remove_at(fd, entry)
            else:
                os.unlink(entry, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)
