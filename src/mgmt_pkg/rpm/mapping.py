"""The paths the command line gives: ``SRC[=DEST]`` split as fpm splits it,
DEST placed under ``--prefix``, and the checks on a path of the package given
there (``--prefix``, DEST, ``--rpm-attr``, ``--directories``): absolute, UTF-8,
no control characters, no "." or ".." segment.

Checked where they are given, before anything is walked, so that a message
blames the argument rather than each file below it (mgmt_pkg.rpm.payload).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Optional, Sequence, Tuple

from mgmt_pkg.errors import InvalidInput

__all__ = ["check_absolute", "check_segments", "destination", "normal", "split_mapping"]


def normal(path: str) -> str:
    """Absolute, without empty segments ("//" names the same path to the
    kernel). Callers refuse "." and ".." first: normpath would resolve them."""
    return posixpath.normpath("/" + path.lstrip("/")) if path.strip("/") else "/"


def check_segments(
    where: str,
    path: str,
    label: str = "",
    refused: Sequence[str] = (".", ".."),
    hint: str = "write the path it stands for",
) -> None:
    """Refuse "." and ".." segments in a path of the package: resolving them
    would package something else than the path given (/usr/share/../../etc)."""
    for segment in path.split("/"):
        if segment in refused:
            raise InvalidInput(f"{where}: {label}{path!r} has a {segment!r} segment; {hint}")


def _check_text(where: str, path: str, label: str = "") -> None:
    """A path of the package given on the command line (DEST, --prefix) as rpm
    needs names: UTF-8, no control characters. Checked where it is given, so
    the message blames it: the walk's checks would blame each file of SRC."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        as_bytes = os.fsencode(path)  # the bytes given, not Python's surrogates
        raise InvalidInput(f"{where}: {label}{as_bytes!r} is not UTF-8, which rpm needs") from None
    bad = [c for c in path if ord(c) < 0x20 or ord(c) == 0x7F]
    if bad:
        raise InvalidInput(f"{where}: {label}{path!r} contains {bad[0]!r}, which rpm refuses")


def check_absolute(where: str, path: str, label: str = "") -> None:
    """A path of the package given whole on the command line (--prefix)."""
    _check_text(where, path, label)
    if not path.startswith("/"):
        raise InvalidInput(
            f"{where}: {label}{path!r} is not an absolute path (it must start with /)"
        )
    check_segments(where, path, label)


def split_mapping(mapping: str) -> Tuple[str, str, str]:
    """SRC, "=", DEST. As fpm: an argument that exists is a SRC, "=" and all
    ("a=b.txt"); else the first "=" after an existing SRC splits, so that one
    can be mapped too ("a=b.txt=/opt/x"), else the first "="."""
    if "=" in mapping and not os.path.lexists(mapping):
        for at in (i for i, char in enumerate(mapping) if char == "="):
            if at and os.path.lexists(mapping[:at]):
                return mapping[:at], "=", mapping[at + 1 :]
        return mapping.partition("=")
    return mapping, "", ""


def destination(mapping: str, prefix: Optional[str]) -> Tuple[Path, str]:
    """(the source on disk, its path in the package) for one argument. A SRC
    ending in "/" names the directory, also through a symlink (fpm, rsync)."""
    source, equals, dest = split_mapping(mapping)
    if not source:
        raise InvalidInput(f"{mapping!r}: no SRC before '='")
    source_path = Path(source)
    # A directory as _walk sees it: a symlink is one only as "SRC/" (os.path.isdir,
    # not Path.is_dir(): that raises for a name too long or a folder we may not
    # enter; _walk's stat then says so, naming the mapping).
    is_dir = os.path.isdir(source_path) and (source.endswith("/") or not os.path.islink(source))
    if not equals:
        # fpm: a plain SRC keeps its path ("usr/bin/x" -> /usr/bin/x); "./x"
        # is that path too, but ".." would climb out of it.
        check_segments(repr(mapping), source, "SRC ", ("..",), "give SRC=DEST to say where it goes")
        dest = "/".join(part for part in source.split("/") if part != ".")
    else:
        # fpm's dir source puts a relative DEST under --prefix (or /): the same
        # here; only "." and "..", which would package another path, are refused.
        if not dest:
            raise InvalidInput(f"{mapping!r}: no DEST after '='")
        check_segments(repr(mapping), dest, "DEST ")
        _check_text(repr(mapping), dest, "DEST ")
        if dest.endswith("/") and not is_dir:
            dest += source_path.name  # "bin/tool=/usr/bin/" -> /usr/bin/tool
    if prefix:
        dest = f"{prefix}/{dest}"
    dest = normal(dest)
    if dest == "/" and not is_dir:
        raise InvalidInput(f"{mapping!r}: a file cannot be /; map it to a path below it")
    return source_path, dest
