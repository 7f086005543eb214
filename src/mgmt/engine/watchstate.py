"""What the file watcher (mgmt.engine.watcher) keeps: per watched path, per tree,
per watched folder, and what it has said; all read and changed under the
watcher's lock."""

import contextlib
import errno
import os
from typing import Callable, Dict, Iterator, List, Optional, Set

from mgmt.log import get_logger

log = get_logger("watcher")


@contextlib.contextmanager
def no_batch() -> Iterator[None]:
    """The watcher's batch hook until one is set (FileWatcher.batch): nothing to do."""
    yield


class WatchedPath:
    __slots__ = ("callback", "eager", "folder", "name", "path", "saved")

    def __init__(
        self,
        path: str,
        callback: Callable[[], None],
        saved: Optional[Callable[[], None]] = None,
        eager: bool = False,
    ):
        self.path = path
        self.callback = callback
        self.saved = saved  # called instead when a writer is done with the file
        self.eager = eager  # told of each folder made on its way, not only at the end
        self.folder = ""  # the directory watched for it right now
        self.name = ""  # the entry in that directory that concerns it


class WatchedTree:
    __slots__ = ("callback", "path")

    def __init__(self, path: str, callback: Callable[[], None]):
        self.path = path  # the top of the tree
        self.callback = callback


class WatchedFolder:
    __slots__ = ("full", "held", "kids", "subs", "trees", "wd")

    def __init__(self, wd: int, full: bool):
        self.wd = wd
        self.full = full  # watched with DIR_MASK; else only as a guard (GUARD_MASK)
        self.kids = 0  # watched folders right below it, each holding it watched
        self.held: Optional[WatchedFolder] = None  # the folder above, which this one holds
        self.subs: Dict[str, Set[WatchedPath]] = {}
        self.trees: Set[WatchedTree] = set()  # trees this directory is inside of


class Folders(dict):  # type: ignore[type-arg]  # Dict[str, WatchedFolder]
    """The watched folders by real path, that also know the watched ones below
    each path: a removed folder with 4,000 watched ones inside found them by
    looking at every watched folder, once for each of them gone (3.2 s under
    the watcher's lock, 0.3 s for 1,000). Only ``d[f] = e`` and ``del d[f]``
    change it; the index costs each folder one entry per folder above it."""

    def __init__(self) -> None:
        super().__init__()
        self._below: Dict[str, Dict[str, None]] = {}  # dicts keep the order they were added

    def __setitem__(self, folder: str, entry: WatchedFolder) -> None:
        if folder not in self:
            for above in _above(folder):
                self._below.setdefault(above, {})[folder] = None
        super().__setitem__(folder, entry)

    def __delitem__(self, folder: str) -> None:
        super().__delitem__(folder)
        for above in _above(folder):
            below = self._below[above]
            del below[folder]
            if not below:
                del self._below[above]

    def at_or_below(self, top: str) -> List[str]:
        """``top`` (if watched) and every watched folder below it."""
        return ([top] if top in self else []) + list(self._below.get(top, ()))


def _above(folder: str) -> Iterator[str]:
    """The folders above ``folder`` but /, nearest first (/ never leaves: it is
    no one's top; and every path would be below it)."""
    above = os.path.dirname(folder)
    while above not in ("/", "", folder):
        yield above
        folder, above = above, os.path.dirname(above)


class UnwatchableLog:
    """Why a directory cannot be watched, logged once per cause (not per directory:
    10,000 paths past the watch limit are one warning)."""

    def __init__(self) -> None:
        self._causes: Set[int] = set()  # errnos already said

    def said(self, folder: str, error: OSError) -> None:
        if error.errno in self._causes:
            return
        self._causes.add(error.errno or 0)
        if error.errno == errno.ENOSPC:
            log.warning(
                "cannot watch %s: the inotify watch limit is reached; changes there"
                " are missed until fs.inotify.max_user_watches is raised (sysctl)",
                folder,
            )
        else:
            log.warning("cannot watch %s: %s", folder, error)
