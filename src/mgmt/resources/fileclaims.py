"""Which file resource manages each real path, while the agent runs.

The graph refuses two file resources that would manage one file, also through
a symlinked folder (mgmt.graph.clash). A symlink made or pointed elsewhere
while the agent runs can still lead two of them to one file, or a file into a
tree another copies or removes, and then each write is an event for the
other, for ever (10,000 writes in 5 s). So a file resource claims, at each
check, the real path it is about to manage: one whose path another holds
fails, naming it, instead of writing, and is woken (Init.wake) once the holder
lets go (the holder's check finds its path elsewhere, or it is removed).

A folder's real path is looked up once and kept until a resource there hears
of a change (:meth:`FileClaims.forget`): resolving every path at every check
cost 40% of a 10,000-file run, its lstat calls handing the GIL from worker to
worker.
"""

import os
import threading
import weakref
from typing import Any, Dict, List, Mapping, Optional, Tuple

from mgmt.resources.base import Resource, ResourceError
from mgmt.resources.filepath import folders_above, real_folder, real_path

# What a resource holds: its path's id ("file:" and the real path), and the id of
# the tree it copies or removes, if it does.
Held = Tuple[Resource, str, Optional[str]]


class FileClaims:
    """The agent's one registry (a Services item) of what its file resources hold."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: Dict[int, Held] = {}  # id(resource) -> what it holds
        self._by_ident: Dict[str, Resource] = {}
        self._covers: Dict[str, Resource] = {}
        self._waiting: Dict[int, Dict[int, Resource]] = {}  # holder -> those it holds off
        self._gone = weakref.WeakSet()  # type: ignore[var-annotated]  # released for good
        self._folders: Dict[str, str] = {}  # a folder as named -> its real path

    def claim(self, res: Resource, path: str) -> None:
        """Hold ``path`` for ``res``, letting go of what it held before; or raise the
        ResourceError that names the resource holding it. What a tree covers, and
        what it fights, the kind says (Resource.covers and .fights, as for the
        graph's clash check)."""
        params = res.params
        ident = "file:" + self._real(path)
        cover = res.covers(res.name, params)
        cover = None if cover is None else "file:" + real_folder(cover[len("file:") :])
        held = self._held.get(id(res))
        if held is not None and held[1:] == (ident, cover):
            return  # the usual case, without the lock: 8 workers queued on it cost 40%
        with self._lock:
            held = self._held.get(id(res))
            if res in self._gone or (held is not None and held[1:] == (ident, cover)):
                return  # closed (removed from the graph) as it began; or held already
            woken = self._let_go(res)
            other = self._holder(res, ident, cover, params)
            if other is None:
                self._hold(res, ident, cover)
            else:
                self._waiting.setdefault(id(other), {})[id(res)] = res
        for waiter in woken:
            waiter.init.wake()
        if other is not None:
            raise ResourceError(
                repr(res),
                f"{other!r} manages {ident[len('file:') :]} too, or a tree holding it: a "
                "symlink on the way leads them to one place since the graph was read; "
                "not applied while it does",
            )

    def forget(self, path: str) -> None:
        """Something changed at ``path``: its folder is resolved again at its next claim."""
        self._folders.pop(os.path.dirname(os.path.normpath(path)), None)

    def release(self, res: Resource) -> None:
        """``res`` is closed: what it held is free, and those it held off are woken."""
        with self._lock:
            self._gone.add(res)
            woken = self._let_go(res)
        for waiter in woken:
            waiter.init.wake()

    def _real(self, path: str) -> str:
        folder, name = os.path.split(os.path.normpath(path))
        real = self._folders.get(folder)
        if real is None:  # a race here only resolves one folder twice
            real = self._folders[folder] = real_path(folder)
        return os.path.join(real, name)

    def _hold(self, res: Resource, ident: str, cover: Optional[str]) -> None:
        self._held[id(res)] = (res, ident, cover)
        self._by_ident[ident] = res
        if cover is not None:
            self._covers[cover] = res

    def _let_go(self, res: Resource) -> List[Resource]:
        held = self._held.pop(id(res), None)
        if held is not None:
            _, ident, cover = held
            if self._by_ident.get(ident) is res:
                del self._by_ident[ident]
            if cover is not None and self._covers.get(cover) is res:
                del self._covers[cover]
        return list(self._waiting.pop(id(res), {}).values())

    def _holder(
        self, res: Resource, ident: str, cover: Optional[str], params: Mapping[str, Any]
    ) -> Optional[Resource]:
        """Another resource that holds ``ident``, a tree around it that fights it, or
        (for a tree, ``cover``) one held inside it that it fights."""
        other = self._by_ident.get(ident)
        if other is not None and other is not res:
            return other
        for folder in _folders_above(ident) if self._covers else ():
            tree = self._covers.get(folder)
            fights = tree is not None and tree is not res
            if fights and tree.fights(folder, tree.params, ident, params, True):
                return tree
        if cover is None:
            return None
        inside = cover + "/"  # a tree's: what is held below it (a scan: trees are few)
        for holder, held, _ in list(self._held.values()):
            below = held.startswith(inside) and holder is not res
            if below and res.fights(cover, params, held, holder.params, True):
                return holder
        return None


def _folders_above(ident: str) -> List[str]:
    """The ids of the folders above ``ident``'s path, nearest first (not /)."""
    return ["file:" + folder for folder in folders_above(ident[len("file:") :])]
