"""Copying a source tree onto a managed directory, without following links on either side.

A link planted in the target tree (``dst/sub -> /etc``) must not carry a copy
out of it: every target entry is looked at with lstat, files are replaced
atomically (a rename replaces a link, never writes through it), and a link
where a directory belongs is refused unless ``force`` allows replacing it.

A link inside the source tree is copied as a link (as ``cp -a`` and ``rsync -a``
do), never read through: whoever may write the source must not make the agent
copy what the link leads to (``src/x -> /etc/shadow``). Folders are made with
the source's modes, as files are written with theirs, but for the owner's rwx.
"""

import errno
import os
import stat
from typing import Any, List, Mapping, Optional, Set, Tuple

from mgmt.log import one_line
from mgmt.resources.atomic import atomic_write, temp_name
from mgmt.resources.base import ResourceError
from mgmt.resources.filediff import MAX_COMPARED, content_diff
from mgmt.resources.fileremove import remove_tree
from mgmt.resources.filesafe import holds, read_source

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _lstat_at(folder: int, name: str) -> Optional[os.stat_result]:
    try:
        return os.lstat(name, dir_fd=folder)
    except FileNotFoundError:
        return None


def _walk_to(top: Optional[int], parts: List[str]) -> Optional[int]:
    """A new descriptor on the folder ``parts`` below the open folder ``top``, each
    step opened without following a link; None where a step is missing or is not
    a folder (a link, a file: never looked through), or ``top`` is None."""
    if top is None:
        return None
    fd = os.dup(top)
    for part in parts:
        try:
            step = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as err:
            if err.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                os.close(fd)
                raise
            step = None
        os.close(fd)
        if step is None:
            return None
        fd = step
    return fd


def _swapped(res: Any, path: str) -> ResourceError:
    return ResourceError(repr(res), f"{path} changed to a link or a file while being copied")


def sync_tree(res: Any, source: str, apply: bool) -> bool:
    """Make the tree at ``res.path`` hold what ``source`` holds (extra files go only with force).

    ``res`` is the file resource: its path, params, ``say`` (each change logged
    once made, never before) and ``repr`` for errors. The target tree is worked
    on through descriptors of its folders, each opened without following a link
    (mkdir, writes, renames, removals and chmod relative to them): a folder
    swapped for a link while the copy runs is never written or chmod-ed through.
    """
    if not os.path.isdir(source):  # os.walk would find nothing, and call that fine
        raise ResourceError(repr(res), f"source {source} is not a directory (missing?)")
    top: Optional[int] = None
    try:
        top = os.open(res.path, _DIR_FLAGS)
    except OSError as err:
        if not apply and err.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            pass  # noop: a folder yet to make (or to replace); what it would hold is said
        elif err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _swapped(res, res.path) from None
        else:
            raise
    ok = True
    made: List[Tuple[List[str], int]] = []  # folders made and their source's modes (see below)
    try:
        for folder, dirs, files in os.walk(source):
            rel = os.path.relpath(folder, source)
            parts = [] if rel == "." else rel.split(os.sep)
            target_dir = os.path.normpath(os.path.join(res.path, rel))
            was_there = True
            if parts:
                parent = _walk_to(top, parts[:-1])
                if parent is None and apply:
                    raise _swapped(res, os.path.dirname(target_dir))
                try:
                    was_there = _make_folder(res, parent, parts[-1], target_dir, apply)
                finally:
                    if parent is not None:
                        os.close(parent)
            ok = was_there and ok
            if apply and not was_there:
                # The owner keeps rwx: a login other than root could not update a
                # folder made read-only (0555) at the next run.
                made.append((parts, stat.S_IMODE(os.lstat(folder).st_mode) | stat.S_IRWXU))
            # Under noop a folder to make is not there (or something else is, a link
            # maybe, never looked through): what it would hold is said all the same,
            # each entry missing.
            here = _walk_to(top, parts) if apply or was_there else None
            if here is None and apply:
                raise _swapped(res, target_dir)
            try:
                links = [name for name in dirs if os.path.islink(os.path.join(folder, name))]
                for name in files + links:
                    entry = os.path.join(target_dir, name)
                    src = os.path.join(folder, name)
                    ok = _copy_entry(res, src, here, entry, apply) and ok
                if res.params["force"] and here is not None:
                    wanted = set(dirs) | set(files)
                    ok = _remove_extra(res, here, target_dir, wanted, apply) and ok
            finally:
                if here is not None:
                    os.close(here)
    finally:
        # A folder made gets its source's mode once filled, not before: one without
        # write for its owner could not be filled. (The top is the resource's: its
        # mode field rules there.) Reached again without following links.
        for parts, mode in reversed(made):
            fd = _walk_to(top, parts)
            if fd is not None:
                try:
                    os.fchmod(fd, mode)
                finally:
                    os.close(fd)
        if top is not None:
            os.close(top)
    return ok


def _make_folder(res: Any, parent: Optional[int], name: str, target_dir: str, apply: bool) -> bool:
    """Make ``name`` in the open folder ``parent`` (None: not there yet, under noop)
    a folder (what else is there goes only with force); whether it was one."""
    st = None if parent is None else _lstat_at(parent, name)
    if st is not None and stat.S_ISDIR(st.st_mode):
        return True
    if st is not None:
        if not res.params["force"]:
            message = f"{target_dir} is not a directory; set force: true to replace it"
            raise ResourceError(repr(res), message)
        res.note("type", "directory", _kind(st), path=target_dir)
        if apply:
            os.unlink(name, dir_fd=parent)  # a link goes, never its target
            os.mkdir(name, 0o700, dir_fd=parent)
        res.say(apply, f"replaced {target_dir} by a directory", f"replace {target_dir}")
        return False
    res.note("state", "exists", "absent", path=target_dir)
    if apply:
        # 0700 while it is filled; its source's mode once it is (see sync_tree).
        os.mkdir(name, 0o700, dir_fd=parent)
    res.say(apply, f"made {target_dir}", f"make {target_dir}")
    return False


def _remove_extra(res: Any, here: int, target_dir: str, wanted: Set[str], apply: bool) -> bool:
    """Remove what the open folder ``here`` holds beyond ``wanted``; whether it held
    nothing more."""
    ok = True
    for extra in sorted(set(os.listdir(here)) - wanted):
        ok = False
        gone = os.path.join(target_dir, extra)
        res.note("state", "absent", "exists", path=gone)
        if apply:
            st = _lstat_at(here, extra)
            if st is not None and stat.S_ISDIR(st.st_mode):
                remove_tree(res, gone, dir_fd=here)
            elif st is not None:
                os.unlink(extra, dir_fd=here)
        res.say(apply, f"removed {gone}", f"remove {gone}")
    return ok


def _holds_already(here: int, name: str, data: bytes) -> bool:
    """Whether the regular file ``name`` in the open folder ``here`` (never a link)
    holds ``data``."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=here)
    except OSError:  # missing, a link (ELOOP), a FIFO (ENXIO)
        return False
    try:
        st = os.fstat(fd)
        return stat.S_ISREG(st.st_mode) and st.st_size == len(data) and holds(fd, data)
    finally:
        os.close(fd)


def _copy_entry(res: Any, src: str, here: Optional[int], dst: str, apply: bool) -> bool:
    """Make ``dst`` (named in the open folder ``here``) what the file or link ``src``
    is; whether it was already (never when ``here`` is None: its folder is yet to
    be made)."""
    name = os.path.basename(dst)
    try:
        target = os.readlink(src) if os.path.islink(src) else None
        data = None if target is not None else read_source(src, follow=False)
    except (OSError, ValueError) as err:  # gone since listed, or not a regular file
        raise ResourceError(repr(res), str(err)) from None
    st = None
    if here is not None:
        if target is None and _holds_already(here, name, data):
            return True
        if target is not None and _link_there(here, name) == target:
            return True
        st = _lstat_at(here, name)
        if st is not None and stat.S_ISDIR(st.st_mode):
            what = "a file" if target is None else "a symlink"
            if not res.params["force"]:
                message = (
                    f"{dst} is a directory where {src} is {what}; set force: true to replace it"
                )
                raise ResourceError(repr(res), message)
            res.note("type", "file" if target is None else "symlink", "directory", path=dst)
            if apply:
                remove_tree(res, dst, dir_fd=here)
            res.say(apply, f"removed directory {dst}", f"remove directory {dst}")
            st = None
    if target is None:
        _note_content(res, here, name, dst, st, data, apply)
        if apply:
            _write_at(here, name, dst, data, stat.S_IMODE(os.lstat(src).st_mode))
        res.say(apply, f"copied {dst}", f"copy {dst}")
        return False
    was = _link_there(here, name) if st is not None and stat.S_ISLNK(st.st_mode) else None
    res.note("link", target, was, path=dst)
    if apply:  # made beside it, then renamed over it: never a moment without one
        temp = os.path.basename(temp_name(dst))
        os.symlink(target, temp, dir_fd=here)
        try:
            os.rename(temp, name, src_dir_fd=here, dst_dir_fd=here)
        except OSError:
            os.unlink(temp, dir_fd=here)
            raise
    res.say(apply, f"linked {dst} to {target}", f"link {dst} to {target}")
    return False


def _kind(st: os.stat_result) -> str:
    return "symlink" if stat.S_ISLNK(st.st_mode) else "file"


def _note_content(
    res: Any,
    here: Optional[int],
    name: str,
    dst: str,
    st: Optional[os.stat_result],
    data: bytes,
    apply: bool,
) -> None:
    """Note the file ``dst`` (``name`` in the open folder ``here``) as a single file's
    content is: by size, and under noop with a diff from what it holds (or from
    nothing), which the log shows for a file that is there."""
    regular = st is not None and stat.S_ISREG(st.st_mode)
    actual = f"{st.st_size} bytes" if regular and st is not None else None
    if apply:
        res.note("content", f"{len(data)} bytes", actual, path=dst)
        return
    old = b""
    if regular and here is not None:
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=here)
        except OSError:  # gone or swapped since it was looked at: a diff from nothing
            fd = None
        if fd is not None:
            try:
                old = os.pread(fd, MAX_COMPARED + 1, 0)
            finally:
                os.close(fd)
    # Its name on one line: the diff's header must not break where the name does.
    shown = one_line(dst)
    diff = content_diff(shown, old, data, st.st_size if regular and st is not None else 0)
    res.note("content", f"{len(data)} bytes", actual, diff, path=dst)
    if regular:  # a file to make is one "would copy" line: a tree may hold thousands
        res.init.log.info("content would change:\n%s", diff.rstrip("\n"))


def _write_at(here: Optional[int], name: str, dst: str, data: bytes, mode: int) -> None:
    """atomic_write of ``name`` in the open folder ``here``: its /proc/self/fd name leads
    to that very folder, whatever was renamed or swapped for a link since it was
    opened (the kernel does not look the folder's path up again)."""
    if here is None:
        raise OSError(errno.ENOENT, "folder not made", dst)
    try:
        atomic_write(f"/proc/self/fd/{here}/{name}", data, mode)
    except OSError as err:  # named as the graph names it, not by descriptor
        raise OSError(err.errno, err.strerror, dst) from None


def _link_there(here: int, name: str) -> Optional[str]:
    """Where the symlink ``name`` in the open folder ``here`` leads, or None if it is none."""
    try:
        return os.readlink(name, dir_fd=here)
    except OSError:
        return None


def copy_problem(path: str, source: str, force: bool) -> Optional[str]:
    """Why a tree cannot be copied from ``source`` to ``path`` (normalized), if so:
    into itself it would copy its own copies without end; with force, a source
    inside the tree would be removed as what the source lacks."""
    source = os.path.normpath(source)
    if path == source or path.startswith(source.rstrip("/") + "/"):
        return f"{source} holds {path}: the copy would copy itself without end"
    if force and source.startswith(path.rstrip("/") + "/"):
        return f"{source} is inside {path}: force would remove it as extra"
    return None


def real_copy_problem(path: str, source: str, force: bool) -> Optional[str]:
    """copy_problem on where ``path`` and ``source`` lead now: a link on the way
    (``path: /srv/link/copy/`` with ``link -> source``) hides a copy into itself
    from the names, and it copied its own copies without end."""
    real_path, real_source = os.path.realpath(path), os.path.realpath(source)
    if (real_path, real_source) == (os.path.normpath(path), os.path.normpath(source)):
        return None  # no link on the way: the names alone were checked
    problem = copy_problem(real_path, real_source, force)
    return problem and f"{problem} (through a symlink: {path} leads to {real_path})"


def source_problem(path: str, params: Mapping[str, Any]) -> Optional[str]:
    """Why ``source`` can never be copied to ``path`` as this host has it, if so (a
    tree to a file or a file to a tree), for FileRes.check_here: the run would fail
    at each check, a folder made first. A source not there (yet) is no problem."""
    source = params.get("source")
    if not source or params.get("state") == "absent":
        return None
    try:
        folder = stat.S_ISDIR(os.stat(source).st_mode)  # followed: the graph names it
    except OSError:  # missing, or not ours to look at: the run says why
        return None
    if not folder and path.endswith("/"):
        why = f"path {path} ends in /, where a tree is copied (drop the / to copy one file)"
        return f"{source} is not a directory, but {why}"
    if not folder and params.get("recurse"):
        why = "recurse: true copies a tree (leave it out to copy one file)"
        return f"{source} is not a directory, but {why}"
    if folder and not (path.endswith("/") or params.get("recurse")):
        return f"{source} is a directory, but path {path} is a file: end it with / to copy the tree"
    if folder:
        return real_copy_problem(path, source, bool(params.get("force")))
    return None


def tree_cover(path: str, params: Mapping[str, Any]) -> Optional[str]:
    """What a file resource at ``path`` covers (Resource.covers): a tree removed with
    recurse, or copied from a source (a path ending in / or recurse)."""
    tree = params.get("recurse") or path.endswith("/")
    removed = params.get("state") == "absent" and params.get("recurse")
    if not (removed or (tree and params.get("source") is not None)):
        return None
    return "file:" + os.path.normpath(path)


def tree_fights(
    cover: str, params: Mapping[str, Any], ident: str, other: Mapping[str, Any], here: bool
) -> bool:
    """Resource.fights for the file kind. A removal fights what is to exist below
    it. A copy fights what its source holds (it writes that; known on the host
    only) and, with force (it removes what its source lacks), what is to exist
    with content of its own; a resource that only wants its path to exist agrees."""
    if params.get("state") == "absent":
        return other.get("state") != "absent"
    absent = other.get("state") == "absent"
    wants = any(other.get(k) is not None for k in ("content", "source", "mode", "owner", "group"))
    if not (absent or wants):
        return False
    relative = os.path.relpath(ident[len("file:") :], cover[len("file:") :])
    held = here and os.path.lexists(os.path.join(params["source"], relative))
    return held if absent else held or bool(params.get("force"))
