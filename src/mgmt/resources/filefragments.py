"""A file made of fragments (mgmt's ``fragments``): other files, joined in order.

Each fragment is an absolute path: a file, read whole (through a link: the
graph names it, as a ``source``), or, ending in ``/``, a directory whose files
are joined in the order of their names; its folders are left out, and so are
its links, as a copied tree's links are never read through. The whole is held
to the size a ``source`` may have. A part of FileRes.
"""

import os
import stat
from typing import Any, List, Mapping, Optional

from mgmt.resources.base import FieldError
from mgmt.resources.fields import shown
from mgmt.resources.filepath import check_one_line, check_path_length, clean_path
from mgmt.resources.filesafe import MAX_SOURCE, read_source

__all__ = ["check_fragments", "clean_fragments", "read_fragments"]


def check_fragments(params: Mapping[str, Any]) -> None:
    """The checks of ``fragments`` across fields (FileRes.validate)."""
    fragments = params.get("fragments")
    if fragments is None:
        return
    if not fragments:
        raise FieldError("fragments", "an empty list (leave it out to leave the content alone)")
    for key in ("content", "source"):
        if params.get(key) is not None:
            raise FieldError(
                "fragments", f"give one of content, source and fragments, not {key} too"
            )
    if params.get("state") == "absent":
        raise FieldError("fragments", "a file that is absent is made of nothing")
    for fragment in fragments:
        if not isinstance(fragment, str):
            raise FieldError("fragments", f"each must be a path, got {shown(fragment)}")
        check_one_line("fragments", fragment)
        check_path_length("fragments", fragment)
        if not fragment.startswith("/"):
            raise FieldError("fragments", f"{shown(fragment)} must be an absolute path")


def clean_fragments(path: str, is_dir: bool, fragments: Optional[List[str]]) -> Optional[List[str]]:
    """The fragments with one leading slash each (as a source), checked against the
    file's own ``path``; FieldError for a directory, or a file inside a fragment
    folder (it would be made of itself, growing at each check)."""
    if fragments is None:
        return None
    if is_dir:
        raise FieldError("fragments", f"{path}/ is a directory (it ends in /): no fragments")
    cleaned = []
    for fragment in fragments:
        folder = fragment.endswith("/")
        fragment = clean_path(fragment).rstrip("/") or "/"
        if fragment == path or (folder and os.path.dirname(path) == fragment):
            raise FieldError("fragments", f"{path} would be made of itself ({fragment})")
        cleaned.append(fragment.rstrip("/") + "/" if folder else fragment)
    return cleaned


def read_fragments(fragments: List[str]) -> bytes:
    """The fragments joined; ValueError saying which one cannot be read, or that
    together they are over the size a source may have."""
    parts: List[bytes] = []
    size = 0
    for fragment in fragments:
        for one in _files(fragment) if fragment.endswith("/") else [fragment]:
            try:
                data = read_source(one)
            except OSError as err:
                raise ValueError(f"fragment {one}: {err.strerror or err}") from None
            except ValueError as err:
                raise ValueError(str(err).replace("source ", "fragment ", 1)) from None
            size += len(data)
            if size > MAX_SOURCE:
                raise ValueError(f"the fragments are over the file kind's limit of {MAX_SOURCE}")
            parts.append(data)
    return b"".join(parts)


def _files(folder: str) -> List[str]:
    """The regular files of a fragment folder, by name (not below it, not its links)."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as err:
        raise ValueError(f"fragment folder {folder}: {err.strerror or err}") from None
    found = []
    for name in names:
        path = os.path.join(folder, name)
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                found.append(path)
        except FileNotFoundError:  # gone since it was listed
            continue
    return found
