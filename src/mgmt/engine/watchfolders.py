"""The folders the file watcher (mgmt.engine.watcher) watches, and the paths on each.

A path is watched at its parent directory (not the file: an atomic rename
replaces the inode, and a deleted file has nothing left to watch). A path
whose directory does not exist yet waits on its nearest existing ancestor
and moves down as directories appear; when a watched directory goes away its
paths move back up.

Every folder above a watched one (but /) has a watch of its own too, for its
own move or removal only (GUARD_MASK: no events about what is inside it): a
folder moved further up tells only itself, and the paths below it must climb.

inotify watches inodes, not names: a renamed directory keeps its watch
descriptor (wd) and tells only itself (MOVE_SELF), nothing below it. So a
directory leaving a watched folder drops every entry at or below its old
name, a wd that shows up under a new name is re-keyed, and MOVE_SELF drops a
folder only if its name no longer leads to that wd.

Every folder here is known by its real path: the symlinks on the way to a
path are followed, and watched, by mgmt.engine.linkwatch; a folder reached
through a link made later is not watched (its paths wait above the link).

:class:`WatchedFolders` owns this state; the watcher, its subclass, owns the
lock all of it is read and changed under, and the thread that reads events.
"""

import contextlib
import errno
import os
from typing import Dict, List, Optional, Set

from mgmt.engine.inotify import INotify
from mgmt.engine.inotify import flags as F
from mgmt.engine.watchstate import (
    Folders,
    UnwatchableLog,
    WatchedFolder,
    WatchedPath,
    WatchedTree,
)

DIR_MASK = (
    F.CREATE
    | F.DELETE
    | F.MODIFY
    | F.CLOSE_WRITE
    | F.MOVED_FROM
    | F.MOVED_TO
    | F.ATTRIB
    | F.DELETE_SELF
    | F.MOVE_SELF
    | F.ONLYDIR
    | F.DONT_FOLLOW
)
# A folder above watched ones; MASK_ADD keeps what a watch of the folder for what
# is inside it (DIR_MASK) asked for, on the same inode.
GUARD_MASK = F.DELETE_SELF | F.MOVE_SELF | F.ONLYDIR | F.DONT_FOLLOW | F.MASK_ADD


class WatchedFolders:
    """The watched folders, by name and by wd, and what waits on each (see the module);
    every method is called with the watcher's lock held."""

    def __init__(self) -> None:
        self._inotify = INotify()
        self._dirs = Folders()
        self._by_wd: Dict[int, str] = {}
        # Directories found missing since the last event: 10,000 paths under one
        # missing directory cost one failed add_watch, not 10,000. Any event may
        # mean one appeared, so each batch of events clears it.
        self._missing: Set[str] = set()
        # Trees with an event in the batch being dispatched (each told once).
        self._tree_events: Set[WatchedTree] = set()
        self._unwatchable = UnwatchableLog()  # why add_watch failed, said once per cause
        # An add_watch failed for want of watches (ENOSPC): the paths left waiting
        # above their folder are tried again later (see FileWatcher._retry_starved).
        self._starved = False
        # Paths with no folder at all watched on their way (all out of watches).
        self._unattached: Set[WatchedPath] = set()
        # Paths whose folder was found replaced outside an event's handling: told
        # with the next batch of events (the replaced folder's own move is queued).
        self._lost: Set[WatchedPath] = set()

    def _starve(self) -> None:
        """Out of watches (from any thread): see FileWatcher._retry_starved."""
        self._starved = True

    def _attach(self, sub: WatchedPath) -> None:
        """Watch the deepest existing directory on the way to sub.path."""
        self._unattached.discard(sub)
        folder, name = os.path.split(sub.path)
        retried: Set[str] = set()
        while True:
            entry = self._full(folder)
            if entry is None and folder not in self._missing:
                entry = self._watch_dir(folder)
                if entry is None:  # wait one level up (also when out of watches)
                    self._missing.add(folder)
            if entry is not None:
                below = os.path.join(folder, name)
                if below != sub.path and below not in retried and os.path.isdir(below):
                    # Made after it was found missing but before this watch began, so
                    # no event will tell: go down again (once: it may be unwatchable).
                    retried.add(below)
                    self._missing.discard(below)
                    folder, name = os.path.split(sub.path)
                    continue
                sub.folder, sub.name = folder, name
                entry.subs.setdefault(name, set()).add(sub)
                return
            if folder == "/":  # not even / could be watched: out of watches
                self._unattached.add(sub)  # tried again with the others (FileWatcher)
                sub.folder, sub.name = "", ""  # watched nowhere
                return
            folder, name = os.path.split(folder)

    def _detach(self, sub: WatchedPath) -> None:
        self._unattached.discard(sub)
        entry = self._dirs.get(sub.folder)
        if entry is None:
            return
        subs = entry.subs.get(sub.name)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del entry.subs[sub.name]
        self._forget_if_unused(sub.folder, entry)

    def _forget_if_unused(self, folder: str, entry: WatchedFolder) -> None:
        if not entry.subs and not entry.trees and not entry.kids:
            del self._dirs[folder]
            self._by_wd.pop(entry.wd, None)
            with contextlib.suppress(OSError):  # the directory may already be gone
                self._inotify.rm_watch(entry.wd)
            self._release(entry)

    def _release(self, entry: WatchedFolder) -> None:
        """``entry`` is no longer watched: the folder above may be unused now."""
        above, entry.held = entry.held, None
        if above is not None:
            above.kids -= 1
            folder = self._by_wd.get(above.wd)
            if folder is not None and self._dirs.get(folder) is above:
                self._forget_if_unused(folder, above)

    def _full(self, folder: str) -> Optional[WatchedFolder]:
        """The entry of ``folder``, watched for what happens inside it (a guard's
        mask widened, or a new entry if another folder took the name), or None."""
        entry = self._dirs.get(folder)
        if entry is None or entry.full:
            return entry
        return self._watch_dir(folder)

    def _watch_dir(self, folder: str, full: bool = True) -> Optional[WatchedFolder]:
        """A new entry watching ``folder`` (``full``: what happens inside it, else
        only its own move or removal), or None if it cannot be watched."""
        try:
            wd = self._add_watch(folder, DIR_MASK if full else GUARD_MASK)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None  # missing, or not ours to read: nothing to warn about
        except OSError as error:  # ENOSPC: out of watches; must not stop the thread
            self._unwatchable.said(folder, error)
            if error.errno == errno.ENOSPC:
                self._starve()
            return None
        current = self._ours(folder, wd, full)  # a guard widened
        if current is not None:
            return current
        if folder in self._dirs:
            # Another folder took the name (its move is still queued): the entries of
            # the one that left go, and their paths are told with the next events.
            self._lost.update(self._drop_below(folder))
        stale = self._by_wd.get(wd)
        if stale is not None and stale != folder:
            # The same directory under another name: it was renamed where we did
            # not see it leave (or its MOVE_SELF is still queued). Its wd is ours now.
            self._lost.update(self._drop_below(stale, keep=wd))
        current = self._ours(folder, wd, full)  # made by a path attached meanwhile
        if current is not None:
            return current
        entry = self._dirs[folder] = WatchedFolder(wd, full)
        self._by_wd[wd] = folder
        above = os.path.dirname(folder)
        if above != "/" and above != folder:  # / never moves: the top needs no guard
            held = self._dirs.get(above) or self._watch_dir(above, full=False)
            if self._dirs.get(folder) is not entry:
                # Guarding the folder above dropped this one (it was the same folder
                # under an older name, its move still queued): start again from here.
                return self._dirs.get(folder) or self._watch_dir(folder, full)
            if held is None and not self._still_named(folder, wd):
                # The folder above moved between the two watches: this name leads
                # elsewhere now. Its paths wait higher up until it is made again.
                self._drop_below(folder)
                return None
            if held is not None:
                held.kids += 1
                entry.held = held
        return entry

    def _ours(self, folder: str, wd: int, full: bool) -> Optional[WatchedFolder]:
        """``folder``'s entry if it already has the watch ``wd`` (then watched
        ``full`` too, if asked: add_watch has just set that mask), else None."""
        current = self._dirs.get(folder)
        if current is None or current.wd != wd:
            return None
        current.full = current.full or full
        return current

    def _add_tree_dirs(self, tree: WatchedTree, top: str) -> None:
        """Watch ``top`` and every directory below it for ``tree`` (symlinks not followed).

        Each directory is watched before it is listed, so one made in between
        is either listed or reported.
        """
        pending = [top]
        while pending:
            folder = pending.pop()
            entry = self._full(folder) or self._watch_dir(folder)
            if entry is None:
                continue  # gone meanwhile, not ours to read, or out of watches
            entry.trees.add(tree)
            with contextlib.suppress(OSError), os.scandir(folder) as listing:
                pending += [item.path for item in listing if item.is_dir(follow_symlinks=False)]

    def _drop_below(self, top: str, keep: int = -1) -> List[WatchedPath]:
        """``top`` left its folder (renamed or deleted), or its name leads elsewhere:
        drop every entry at or below it, unwatched (but ``keep``, a wd taken over),
        then attach their paths anew; they are returned, to be told.

        Below a renamed directory inotify says nothing, so these are found by name.
        All go before any path is attached again: a path must not settle on an
        entry about to go, nor a new entry hold one.
        """
        stale = [(f, self._dirs[f]) for f in self._dirs.at_or_below(top)]
        moved: List[WatchedPath] = []
        for folder, entry in stale:
            del self._dirs[folder]
            if self._by_wd.get(entry.wd) == folder:
                del self._by_wd[entry.wd]
            if entry.wd != keep:
                with contextlib.suppress(OSError):  # gone with its directory, maybe
                    self._inotify.rm_watch(entry.wd)
            self._tree_events.update(entry.trees)  # a directory of the tree went away
            moved += [sub for subs in entry.subs.values() for sub in subs]
        for sub in moved:
            self._attach(sub)
        for _folder, entry in stale:  # after: the paths may have climbed to a folder above
            self._release(entry)
        return moved

    def _add_watch(self, folder: str, mask: int) -> int:
        """inotify's add_watch of ``folder`` by its real name only: one reached through
        a symlink (made since its paths were resolved) is NotADirectoryError, so they
        wait above the link for linkwatch to follow it (one folder under two names
        would be one wd for two entries). The masks' DONT_FOLLOW closes the race of a
        link made at the name itself between the look and the watch."""
        if os.path.realpath(folder) != folder:
            raise NotADirectoryError(errno.ENOTDIR, "reached through a symlink", folder)
        return self._inotify.add_watch(folder, mask)

    def _still_named(self, folder: str, wd: int) -> bool:
        """Whether ``folder`` still leads to the directory watched as ``wd``.

        Asked of inotify itself (add_watch on a watched inode returns its wd), as
        a stat could race with the rename.
        """
        try:
            entry = self._dirs.get(folder)
            mask = DIR_MASK if entry is None or entry.full else GUARD_MASK
            found = self._add_watch(folder, mask)
        except OSError:
            return False
        if found != wd and found not in self._by_wd:
            with contextlib.suppress(OSError):  # another directory there: not ours
                self._inotify.rm_watch(found)
        return found == wd
