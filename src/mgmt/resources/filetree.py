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

import os
import stat
from typing import Any, List, Mapping, Optional, Set, Tuple

from mgmt.resources.atomic import atomic_write, temp_name
from mgmt.resources.base import ResourceError
from mgmt.resources.fileremove import remove_tree
from mgmt.resources.filesafe import Opened, holds, read_source


def _holds_already(dst: str, data: bytes) -> bool:
    """Whether the regular file ``dst`` (never a link) holds ``data``."""
    with Opened(dst) as there:
        if there.fd is None or there.st is None or not stat.S_ISREG(there.st.st_mode):
            return False
        return there.st.st_size == len(data) and holds(there.fd, data)


def _is_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):  # noop: a file is where a folder above goes
        return False


def sync_tree(res: Any, source: str, apply: bool) -> bool:
    """Make the tree at ``res.path`` hold what ``source`` holds (extra files go only with force).

    ``res`` is the file resource: its path, params, ``say`` (each change logged
    once made, never before) and ``repr`` for errors.
    """
    if not os.path.isdir(source):  # os.walk would find nothing, and call that fine
        raise ResourceError(repr(res), f"source {source} is not a directory (missing?)")
    ok = True
    made: List[Tuple[str, int]] = []  # folders made and their source's modes (see below)
    try:
        for folder, dirs, files in os.walk(source):
            target_dir = os.path.normpath(os.path.join(res.path, os.path.relpath(folder, source)))
            was_there = _make_folder(res, target_dir, apply)
            ok = was_there and ok
            if apply and not was_there and folder != source:
                # The owner keeps rwx: a login other than root could not update a
                # folder made read-only (0555) at the next run.
                made.append((target_dir, stat.S_IMODE(os.lstat(folder).st_mode) | stat.S_IRWXU))
            # Under noop a folder to make is not there (or something else is, a link
            # maybe, never looked through): what it would hold is said all the same,
            # each entry missing.
            there = was_there or apply  # made by now if it was not
            links = [name for name in dirs if os.path.islink(os.path.join(folder, name))]
            for name in files + links:
                entry = os.path.join(target_dir, name)
                ok = _copy_entry(res, os.path.join(folder, name), entry, apply, there) and ok
            if res.params["force"] and there:
                ok = _remove_extra(res, target_dir, set(dirs) | set(files), apply) and ok
    finally:
        # A folder made gets its source's mode once filled, not before: one without
        # write for its owner could not be filled. (The top is the resource's: its
        # mode field rules there.)
        for target_dir, mode in reversed(made):
            os.chmod(target_dir, mode)
    return ok


def _make_folder(res: Any, target_dir: str, apply: bool) -> bool:
    """Make ``target_dir`` a folder (what else is there goes only with force);
    whether it was one."""
    if os.path.lexists(target_dir) and not _is_dir(target_dir):
        if not res.params["force"]:
            message = f"{target_dir} is not a directory; set force: true to replace it"
            raise ResourceError(repr(res), message)
        if apply:
            os.unlink(target_dir)
            os.makedirs(target_dir)
        res.say(apply, f"replaced {target_dir} by a directory", f"replace {target_dir}")
        return False
    if _is_dir(target_dir):
        return True
    if apply:
        os.makedirs(target_dir, exist_ok=True)
    res.say(apply, f"made {target_dir}", f"make {target_dir}")
    return False


def _remove_extra(res: Any, target_dir: str, wanted: Set[str], apply: bool) -> bool:
    """Remove what ``target_dir`` holds beyond ``wanted``; whether it held nothing more."""
    ok = True
    for extra in sorted(set(os.listdir(target_dir)) - wanted):
        ok = False
        gone = os.path.join(target_dir, extra)
        if apply:
            remove_tree(res, gone) if _is_dir(gone) else os.unlink(gone)
        res.say(apply, f"removed {gone}", f"remove {gone}")
    return ok


def _copy_entry(res: Any, src: str, dst: str, apply: bool, folder_there: bool) -> bool:
    """Make ``dst`` what the file or link ``src`` is; whether it was already (never,
    without ``folder_there``: its folder is yet to be made)."""
    try:
        target = os.readlink(src) if os.path.islink(src) else None
        data = None if target is not None else read_source(src, follow=False)
    except (OSError, ValueError) as err:  # gone since listed, or not a regular file
        raise ResourceError(repr(res), str(err)) from None
    if folder_there and target is None and _holds_already(dst, data):
        return True
    if folder_there and target is not None and _link_there(dst) == target:
        return True
    if folder_there and _is_dir(dst):
        what = "a file" if target is None else "a symlink"
        if not res.params["force"]:
            message = f"{dst} is a directory where {src} is {what}; set force: true to replace it"
            raise ResourceError(repr(res), message)
        if apply:
            remove_tree(res, dst)
        res.say(apply, f"removed directory {dst}", f"remove directory {dst}")
    if target is None:
        if apply:
            atomic_write(dst, data, stat.S_IMODE(os.lstat(src).st_mode))
        res.say(apply, f"copied {dst}", f"copy {dst}")
        return False
    if apply:  # made beside it, then renamed over it: never a moment without one
        temp = temp_name(dst)
        os.symlink(target, temp)
        try:
            os.rename(temp, dst)
        except OSError:
            os.unlink(temp)
            raise
    res.say(apply, f"linked {dst} to {target}", f"link {dst} to {target}")
    return False


def _link_there(path: str) -> Optional[str]:
    """Where the symlink ``path`` leads, or None if it is none (or missing)."""
    try:
        return os.readlink(path)
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
