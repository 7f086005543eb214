"""Resources that would fight: two of them managing the same thing.

Two file resources with one path, one writing "one" and the other "two",
never converge: each write is an event for the other (30,000 writes in 8 s).
A kind names what it manages in the ids it provides for autoedges
(``file:/etc/motd``, ``svc:sshd.service``, ``pkg:nginx``, ``hostname:static``); the
exchange of exported resources already treats those ids as identities (a
collected resource whose id is taken locally is skipped), and the graph
refuses two local resources with one id in the same way.

Only the exact id is compared, and what a resource ``covers`` when the two
would fight over it (a file inside a tree removed with recurse, or copied with
force, or, on the host, a file the copied source holds too): a file inside a
directory another resource merely makes, or adds to a copied tree, is the usual
pattern (the directory first, by autoedge), not a clash.

On the host that runs the graph (``real_paths``), a file is known by its
folder's real path too: two names of one file (a symlinked folder on the way)
would fight as surely as one name twice. (The initiator of a remote run cannot
tell: the paths are the host's.)
"""

import os
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from mgmt.graph.model import ResourceSpec
from mgmt.resources.base import kind_class
from mgmt.resources.filepath import folders_above, real_path

__all__ = ["find_clash"]

Clash = Tuple[ResourceSpec, ResourceSpec, str]


def find_clash(specs: Iterable[ResourceSpec], real_paths: bool = False) -> Optional[Clash]:
    """The first pair (earlier, later) that manage one id, and that id; or None."""
    owners: Dict[str, ResourceSpec] = {}
    covering: Dict[str, ResourceSpec] = {}  # an id -> who manages what is below it
    provided: List[Tuple[ResourceSpec, str]] = []
    _real = _resolver() if real_paths else str
    for spec in specs:
        cls = kind_class(spec.kind)
        if spec.auto is None:  # cached on the spec: dependencies() reuses it
            spec.auto = cls.autoedges(spec.name, spec.params)
        for named in spec.auto[0]:
            ident = _real(named)
            first = owners.setdefault(ident, spec)
            if first is not spec:
                return first, spec, ident
            # Below a tree by its name or by where it leads: a tree at a symlinked
            # folder is its name's (its resource replaces the link), a file's folder
            # is where the link leads; either way the two meet.
            provided += [(spec, ident)] + ([(spec, named)] if named != ident else [])
        whole = cls.covers(spec.name, spec.params)
        if whole is not None:
            for cover in {whole, _real(whole), _real_dir(whole) if real_paths else whole}:
                covering.setdefault(cover, spec)
    return _inside(provided, covering, real_paths) if covering else None


def _inside(
    provided: List[Tuple[ResourceSpec, str]], covering: Dict[str, ResourceSpec], here: bool
) -> Optional[Clash]:
    """The first id below one another resource covers that the two would fight over."""
    for spec, ident in provided:
        kind, sep, path = ident.partition(":")
        for parent in folders_above(path) if sep and path.startswith("/") else ():
            cover_id = f"{kind}:{parent}"
            cover = covering.get(cover_id)
            if cover is not None and cover is not spec:
                cls = kind_class(cover.kind)
                if cls.fights(cover_id, cover.params, ident, spec.params, here):
                    first, later = sorted((cover, spec), key=lambda s: s.line or 0)
                    return first, later, ident  # the later one is where the error points
    return None


def _real_dir(ident: str) -> str:
    """A tree's id by where its own path leads (a symlinked folder followed)."""
    return "file:" + real_path(ident[5:]) if ident.startswith("file:/") else ident


def _resolver() -> Callable[[str], str]:
    """An id -> the same id with a file's folder by its real path on this machine
    (each folder resolved once: graphs hold thousands of files in a few folders)."""
    folders: Dict[str, str] = {}

    def real(ident: str) -> str:
        if not ident.startswith("file:/"):
            return ident
        folder, name = os.path.split(os.path.normpath(ident[5:]))
        if folder not in folders:
            folders[folder] = real_path(folder)
        return "file:" + os.path.join(folders[folder], name)

    return real
