"""One inotify instance and one thread for every watched path in the agent.

A thread per file would make 10,000 file resources cost 10,000 threads; here a
path costs a dict entry. We watch a path's parent directory (not the file: an
atomic rename replaces the inode, and a deleted file has nothing left to
watch) and dispatch events by name. A path whose directory does not exist
yet waits on its nearest existing ancestor and moves down as directories
appear; when a watched directory goes away its paths move back up.

Every folder above a watched one (but /) has a watch of its own too, for its
own move or removal only (GUARD_MASK: no events about what is inside it): a
folder moved further up tells only itself, and the paths below it must climb.

A tree (:meth:`FileWatcher.watch_tree`) is its top path plus a watch on every
directory below it; a directory created or moved into the tree is watched as
it appears, so a change anywhere in it is seen at once.

inotify watches inodes, not names: a renamed directory keeps its watch
descriptor (wd) and tells only itself (MOVE_SELF), nothing below it. So a
directory leaving a watched folder drops every entry at or below its old
name, a wd that shows up under a new name is re-keyed, and MOVE_SELF drops a
folder only if its name no longer leads to that wd.

Every folder here is known by its real path: the symlinks on the way to a
path are followed, and watched, by mgmt.engine.linkwatch.
"""

import contextlib
import errno
import os
import select
import threading
from typing import Callable, ContextManager, Dict, List, Optional, Set, Tuple

from mgmt.engine.inotify import INotify
from mgmt.engine.inotify import flags as F
from mgmt.engine.linkwatch import LinkedWatch
from mgmt.engine.watchstate import (
    UnwatchableLog,
    WatchedFolder,
    WatchedPath,
    WatchedTree,
    no_batch,
)
from mgmt.log import get_logger
from mgmt.wakeup import Wakeup

log = get_logger("watcher")

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
)
GONE = F.IGNORED | F.DELETE_SELF | F.MOVE_SELF | F.UNMOUNT
# A folder above watched ones; MASK_ADD keeps what a watch of the folder for what
# is inside it (DIR_MASK) asked for, on the same inode.
GUARD_MASK = F.DELETE_SELF | F.MOVE_SELF | F.ONLYDIR | F.MASK_ADD
SAVED = F.CLOSE_WRITE | F.MOVED_TO  # a writer is done: the file is whole


class FileWatcher:
    """Implements :class:`mgmt.resources.base.Watcher`; call :meth:`close` at the end."""

    def __init__(self) -> None:
        self._inotify = INotify()
        self._lock = threading.RLock()
        self._dirs: Dict[str, WatchedFolder] = {}
        self._by_wd: Dict[int, str] = {}
        # Directories found missing since the last event: 10,000 paths under one
        # missing directory cost one failed add_watch, not 10,000. Any event may
        # mean one appeared, so each batch of events clears it.
        self._missing: Set[str] = set()
        # Trees with an event in the batch being dispatched (each told once).
        self._tree_events: Set[WatchedTree] = set()
        self._trees: Set[WatchedTree] = set()  # every live tree, for a queue overflow
        self._unwatchable = UnwatchableLog()  # why add_watch failed, said once per cause
        # Paths whose folder was found replaced outside an event's handling: told
        # with the next batch of events (the replaced folder's own move is queued).
        self._lost: Set[WatchedPath] = set()
        self._closing = Wakeup()
        self._closed = False
        # Wraps the callbacks of one batch of events (the agent hands the engine's
        # Engine.batched, so that events that came at once are scheduled at once).
        self.batch: Callable[[], ContextManager[None]] = no_batch
        self._thread = threading.Thread(target=self._loop, name="file watcher", daemon=True)
        self._thread.start()

    # -- public -------------------------------------------------------------

    def watch_path(
        self,
        path: str,
        callback: Callable[[], None],
        saved: Optional[Callable[[], None]] = None,
    ) -> Callable[[], None]:
        """Call ``callback`` on any change at ``path``; or ``saved``, when given, if the
        last change seen was a finished write (the writer closed the file, or a new
        file was renamed over it): then the file is whole, and nothing need wait for
        an editor's next step."""
        return LinkedWatch(path, self._watch_resolved, self._watch_resolved, callback, saved).cancel

    def watch_tree(self, root: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Like :meth:`watch_path`, and also for any change anywhere below ``root``."""
        watch = LinkedWatch(
            root, self._watch_tree_resolved, self._watch_resolved, callback, whole=True
        )
        return watch.cancel

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._closing.set()
        self._thread.join(timeout=5)
        self._inotify.close()
        self._closing.close()

    # -- watches of resolved paths (linkwatch resolves them) ----------------

    def _watch_resolved(
        self, path: str, callback: Callable[[], None], saved: Optional[Callable[[], None]]
    ) -> Callable[[], None]:
        sub = WatchedPath(path, callback, saved)
        with self._lock:
            self._attach(sub)

        def cancel() -> None:
            with self._lock:
                self._detach(sub)

        return cancel

    def _watch_tree_resolved(
        self, root: str, callback: Callable[[], None], _saved: Optional[Callable[[], None]]
    ) -> Callable[[], None]:
        tree = WatchedTree(root, callback)

        def on_root() -> None:
            with self._lock:  # the top may have become a directory: watch inside it
                if tree not in self._trees:
                    return  # cancelled since this event was taken
                self._add_tree_dirs(tree, tree.path)
            callback()

        cancel_root = self._watch_resolved(tree.path, on_root, None)
        with self._lock:
            self._trees.add(tree)
            self._add_tree_dirs(tree, tree.path)

        def cancel() -> None:
            cancel_root()
            with self._lock:
                self._trees.discard(tree)
                for folder, entry in list(self._dirs.items()):
                    if tree in entry.trees:
                        entry.trees.discard(tree)
                        self._forget_if_unused(folder, entry)

        return cancel

    # -- bookkeeping (under the lock) ---------------------------------------

    def _attach(self, sub: WatchedPath) -> None:
        """Watch the deepest existing directory on the way to sub.path."""
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
            if folder == "/":
                return  # nothing to watch at all; should not happen
            folder, name = os.path.split(folder)

    def _detach(self, sub: WatchedPath) -> None:
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
        inside = top + os.sep
        stale = [(f, e) for f, e in self._dirs.items() if f == top or f.startswith(inside)]
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
        would be one wd for two entries)."""
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

    def _overflowed(self, fire: Dict[int, WatchedPath]) -> None:
        """Events were lost: tell every path and tree, and watch directories made meanwhile."""
        log.warning("inotify queue overflowed; re-checking every watched path")
        for entry in self._dirs.values():
            for subs in entry.subs.values():
                fire.update((id(s), s) for s in subs)
        for tree in self._trees:
            self._tree_events.add(tree)
            self._add_tree_dirs(tree, tree.path)

    # -- the thread ---------------------------------------------------------

    def _loop(self) -> None:
        while True:
            ready, _, _ = select.select([self._inotify, self._closing], [], [])
            if self._closing in ready:
                return
            try:
                events = self._inotify.read(timeout=0)
            except OSError as err:  # not at close: the thread ends before the fd
                log.error("reading inotify events failed, no more changes are seen: %s", err)
                return
            try:
                fire = self._dispatch(events)
            except Exception:  # a bug here must not silently end every watch
                log.exception("failed to handle inotify events; watching on")
                continue
            try:
                with self.batch():
                    for path, callback in fire:
                        try:
                            callback()
                        except Exception:  # one bad callback must not stop every watch
                            log.exception("watch callback for %s failed", path)
            except Exception:  # nor a batch that fails to end (the engine scheduling)
                log.exception("failed to act on a batch of inotify events; watching on")

    @staticmethod
    def _fire(fire: Dict[int, WatchedPath], finished: Set[int], subs: List[WatchedPath]) -> None:
        """Tell ``subs`` of a change that is not a finished write."""
        for sub in subs:
            fire[id(sub)] = sub
            finished.discard(id(sub))

    def _dispatch(self, events) -> List[Tuple[str, Callable[[], None]]]:
        """The callbacks a batch of events calls, with the path each watches."""
        fire: Dict[int, WatchedPath] = {}
        finished: Set[int] = set()  # subs whose last event here was a finished write
        with self._lock:
            self._missing.clear()
            self._tree_events.clear()
            for event in events:
                if event.mask & F.Q_OVERFLOW:
                    self._overflowed(fire)
                    finished.clear()  # events were lost: no write is known finished
                    continue
                folder = self._by_wd.get(event.wd)
                if folder is None:
                    continue
                if event.mask & GONE:
                    if event.mask & F.MOVE_SELF and self._still_named(folder, event.wd):
                        continue  # renamed, and already known by its new name
                    # It and every folder below it are gone from where they were.
                    self._fire(fire, finished, self._drop_below(folder))
                    continue
                entry = self._dirs[folder]
                if event.mask & F.ISDIR and event.mask & (F.MOVED_FROM | F.DELETE):
                    gone = os.path.join(folder, event.name)
                    self._fire(fire, finished, self._drop_below(gone))
                if entry.trees:
                    self._tree_events.update(entry.trees)
                    if event.mask & F.ISDIR and event.mask & (F.CREATE | F.MOVED_TO):
                        for tree in list(entry.trees):
                            self._add_tree_dirs(tree, os.path.join(folder, event.name))
                subs = entry.subs.get(event.name)
                if not subs:
                    continue
                here = os.path.join(folder, event.name)
                for sub in subs:
                    if sub.path == here:
                        fire[id(sub)] = sub
                        if event.mask & SAVED:
                            finished.add(id(sub))
                        else:
                            finished.discard(id(sub))
                # A directory on the way to a deeper path appeared: move those paths
                # down, and tell only those whose path already exists (the others
                # were missing before and still are), or that now pass a symlink
                # (see linkwatch: they are to be watched where it leads).
                deeper = [s for s in subs if s.path != here]
                if deeper and event.mask & (F.CREATE | F.MOVED_TO):
                    for sub in deeper:
                        self._detach(sub)
                        self._attach(sub)
                        waits_on = os.path.join(sub.folder, sub.name)
                        if os.path.lexists(sub.path) or os.path.islink(waits_on):
                            self._fire(fire, finished, [sub])
                elif deeper and event.mask & (F.DELETE | F.MOVED_FROM):
                    # A file where their directory must be went away: they can be
                    # made now (a resource that failed on it retries on an event).
                    self._fire(fire, finished, deeper)
            lost, self._lost = list(self._lost), set()
            self._fire(fire, finished, lost)
            trees = list(self._tree_events)
        calls = [
            (s.path, s.saved if s.saved is not None and id(s) in finished else s.callback)
            for s in fire.values()
        ]
        return calls + [(tree.path, tree.callback) for tree in trees]
