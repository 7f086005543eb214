"""Copying a source tree onto a managed directory, without following links in the target.

A link planted in the target tree (``dst/sub -> /etc``) must not carry a copy
out of it: every target entry is looked at with lstat, files are replaced
atomically (a rename replaces a link, never writes through it), and a link
where a directory belongs is refused unless ``force`` allows replacing it.
"""

import os
import stat
from typing import Any, Mapping, Optional

from mgmt.resources.atomic import atomic_write
from mgmt.resources.base import ResourceError
from mgmt.resources.filesafe import Opened, holds, read_source


def remove_tree(path: str) -> None:
    import shutil  # rarely needed: not worth every agent's start-up

    shutil.rmtree(path)


def _holds_already(dst: str, data: bytes) -> bool:
    """Whether the regular file ``dst`` (never a link) holds ``data``."""
    with Opened(dst) as there:
        if there.fd is None or there.st is None or not stat.S_ISREG(there.st.st_mode):
            return False
        return there.st.st_size == len(data) and holds(there.fd, data)


def _is_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def sync_tree(res: Any, source: str, apply: bool) -> bool:
    """Make the tree at ``res.path`` hold what ``source`` holds (extra files go only with force).

    ``res`` is the file resource: its path, params, ``say`` (each change logged
    once made, never before) and ``repr`` for errors.
    """
    ok = True
    force = res.params["force"]
    if not os.path.isdir(source):  # os.walk would find nothing, and call that fine
        raise ResourceError(repr(res), f"source {source} is not a directory (missing?)")
    for folder, dirs, files in os.walk(source):
        rel = os.path.relpath(folder, source)
        target_dir = os.path.normpath(os.path.join(res.path, rel))
        if os.path.lexists(target_dir) and not _is_dir(target_dir):
            if not force:
                message = f"{target_dir} is not a directory; set force: true to replace it"
                raise ResourceError(repr(res), message)
            ok = False
            if apply:
                os.unlink(target_dir)
            res.say(apply, f"replaced {target_dir} by a directory", f"replace {target_dir}")
        if not _is_dir(target_dir):
            ok = False
            if not apply:
                continue
            os.makedirs(target_dir, exist_ok=True)
        for name in files:
            src, dst = os.path.join(folder, name), os.path.join(target_dir, name)
            try:
                data = read_source(src)
            except ValueError as err:
                raise ResourceError(repr(res), str(err)) from None
            if _holds_already(dst, data):
                continue
            if _is_dir(dst):
                message = f"{dst} is a directory where {src} is a file"
                raise ResourceError(repr(res), message)
            ok = False
            if apply:
                atomic_write(dst, data, stat.S_IMODE(os.stat(src).st_mode))
            res.say(apply, f"copied {dst}", f"copy {dst}")
        if force and _is_dir(target_dir):
            wanted = set(dirs) | set(files)
            for extra in sorted(set(os.listdir(target_dir)) - wanted):
                ok = False
                gone = os.path.join(target_dir, extra)
                if apply:
                    remove_tree(gone) if _is_dir(gone) else os.unlink(gone)
                res.say(apply, f"removed {gone}", f"remove {gone}")
    return ok


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
