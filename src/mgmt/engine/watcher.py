"""One inotify instance and one thread for every watched path in the agent.

A thread per file would make 10,000 file resources cost 10,000 threads; here a
path costs a dict entry: each is watched at its folder and events are
dispatched by name (mgmt.engine.watchfolders keeps the folders, and says how
they follow renames and removals; mgmt.engine.linkwatch follows symlinks).

A tree (:meth:`FileWatcher.watch_tree`) is its top path plus a watch on every
directory below it; a directory created or moved into the tree is watched as
it appears, so a change anywhere in it is seen at once.
"""

import os
import select
import threading
import time
from typing import Callable, ContextManager, Dict, List, Optional, Set, Tuple

from mgmt.engine.inotify import flags as F
from mgmt.engine.linkwatch import LinkedWatch
from mgmt.engine.watchfolders import WatchedFolders
from mgmt.engine.watchstate import UnwatchableLog, WatchedPath, WatchedTree, no_batch
from mgmt.log import get_logger
from mgmt.wakeup import Wakeup

log = get_logger("watcher")

# Out of inotify watches, the paths left unwatched are tried again this often:
# raising fs.inotify.max_user_watches (which tells no one) or watches freed
# elsewhere then take effect without a restart.
STARVED_RETRY = 5.0

GONE = F.IGNORED | F.DELETE_SELF | F.MOVE_SELF | F.UNMOUNT
SAVED = F.CLOSE_WRITE | F.MOVED_TO  # a writer is done: the file is whole


class FileWatcher(WatchedFolders):
    """Implements :class:`mgmt.resources.base.Watcher`; call :meth:`close` at the end."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()  # over all of WatchedFolders' state too
        self._trees: Set[WatchedTree] = set()  # every live tree, for a queue overflow
        self._closing = Wakeup()
        self._starving = Wakeup()  # a watch failed for want of watches: plan a retry
        self._closed = False
        # Whether the thread is handling a batch of events (see settle).
        self._handled = threading.Condition()
        self._busy = False
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

    def watch_target(self, path: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Like :meth:`watch_path`, and where a symlink at ``path`` leads too (a file
        read through it, as a copy's source is): the link is watched as one on the way."""
        watch = LinkedWatch(path, self._watch_resolved, self._watch_resolved, callback, whole=True)
        return watch.cancel

    def settle(self, timeout: float = 1.0) -> None:
        """Return once every event queued before this call has been handled (its
        callbacks called), or after ``timeout`` seconds. A reader of a file that
        may be rewritten as it reads (the agent's graph) learns so from the
        events of the rewrite: they are queued by the kernel as the writer
        writes, but reach the callbacks a moment later."""
        if threading.current_thread() is self._thread:
            return  # a callback's own thread: its batch is the one being handled
        deadline = time.monotonic() + timeout
        with self._handled:
            while not self._closed and (self._busy or self._inotify.pending()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._handled.wait(left)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with self._handled:  # a settle() under way returns
            self._handled.notify_all()
        self._closing.set()
        self._thread.join(timeout=5)
        self._inotify.close()
        self._closing.close()
        self._starving.close()

    # -- watches of resolved paths (linkwatch resolves them) ----------------

    def _watch_resolved(
        self,
        path: str,
        callback: Callable[[], None],
        saved: Optional[Callable[[], None]],
        eager: bool = False,
    ) -> Callable[[], None]:
        sub = WatchedPath(path, callback, saved, eager)
        with self._lock:
            self._attach(sub)

        def cancel() -> None:
            with self._lock:
                self._detach(sub)

        return cancel

    def _watch_tree_resolved(
        self,
        root: str,
        callback: Callable[[], None],
        _saved: Optional[Callable[[], None]],
        eager: bool = False,
    ) -> Callable[[], None]:
        tree = WatchedTree(root, callback)

        def on_root() -> None:
            with self._lock:  # the top may have become a directory: watch inside it
                if tree not in self._trees:
                    return  # cancelled since this event was taken
                self._add_tree_dirs(tree, tree.path)
            callback()

        cancel_root = self._watch_resolved(tree.path, on_root, None, eager)
        with self._lock:
            self._trees.add(tree)
            self._add_tree_dirs(tree, tree.path)

        def cancel() -> None:
            cancel_root()
            with self._lock:
                self._trees.discard(tree)
                # Its folders are all at or below its top (_add_tree_dirs goes down
                # from there): not every folder watched, for each tree cancelled.
                for folder in self._dirs.at_or_below(tree.path):
                    entry = self._dirs[folder]
                    if tree in entry.trees:
                        entry.trees.discard(tree)
                        self._forget_if_unused(folder, entry)

        return cancel

    def _overflowed(self, fire: Dict[int, WatchedPath]) -> None:
        """Events were lost: tell every path and tree, and watch directories made meanwhile."""
        log.warning("inotify queue overflowed; re-checking every watched path")
        for entry in self._dirs.values():
            for subs in entry.subs.values():
                fire.update((id(s), s) for s in subs)
        for tree in self._trees:
            self._tree_events.add(tree)
            self._add_tree_dirs(tree, tree.path)

    def _starve(self) -> None:
        super()._starve()
        self._starving.set()  # the thread may wait with no timeout

    def _retry_starved(self) -> List[Tuple[str, Callable[[], None]]]:
        """Attach again the paths left waiting above their folder (out of watches,
        or their folder missing); those now watched, and every tree if a folder is
        (a change there went unseen), are told: no one while none is, so that an
        agent that stays short of watches still converges."""
        fire: Dict[int, WatchedPath] = {}
        with self._lock:
            self._starved = False
            self._missing.clear()
            folders = len(self._dirs)
            waiting = list(self._unattached) + [
                sub
                for entry in self._dirs.values()
                for subs in entry.subs.values()
                for sub in subs
                if os.path.join(sub.folder, sub.name) != sub.path
            ]
            for sub in waiting:
                # Attached anew before it leaves where it waits: no moment unwatched.
                waited = sub.folder, sub.name
                self._attach(sub)
                if (sub.folder, sub.name) != waited:
                    now = sub.folder, sub.name
                    sub.folder, sub.name = waited
                    self._detach(sub)
                    sub.folder, sub.name = now
                if os.path.join(sub.folder, sub.name) == sub.path:
                    fire[id(sub)] = sub
            for tree in self._trees:
                self._add_tree_dirs(tree, tree.path)
            trees = list(self._trees) if fire or len(self._dirs) > folders else []
            if not self._starved:
                log.info("inotify watches available again: every path is watched")
                self._unwatchable = UnwatchableLog()  # a new shortage is said again
        calls = [(sub.path, sub.callback) for sub in fire.values()]
        return calls + [(tree.path, tree.callback) for tree in trees]

    # -- the thread ---------------------------------------------------------

    def _loop(self) -> None:
        retry_at: Optional[float] = None  # when to try the paths out of watches again
        while True:
            if self._starved and retry_at is None:  # however busy: not after a lull only
                retry_at = time.monotonic() + STARVED_RETRY
            timeout = None if retry_at is None else max(0.0, retry_at - time.monotonic())
            ready, _, _ = select.select(
                [self._inotify, self._closing, self._starving], [], [], timeout
            )
            if self._closing in ready:
                return
            if self._starving in ready:
                self._starving.clear()
                continue  # retry_at is set above
            with self._handled:
                self._busy = True
            try:
                if self._inotify in ready and not self._handle():
                    return
                if retry_at is not None and time.monotonic() >= retry_at:
                    retry_at = None
                    self._call(self._retry_starved())
            finally:
                with self._handled:
                    self._busy = False
                    self._handled.notify_all()

    def _handle(self) -> bool:
        """Read the events waiting and call their callbacks; False if no more can be read."""
        try:
            events = self._inotify.read(timeout=0)
        except OSError as err:  # not at close: the thread ends before the fd
            log.error("reading inotify events failed, no more changes are seen: %s", err)
            return False
        try:
            fire = self._dispatch(events)
        except Exception:  # a bug here must not silently end every watch
            log.exception("failed to handle inotify events; watching on")
            return True
        self._call(fire)
        return True

    def _call(self, fire: List[Tuple[str, Callable[[], None]]]) -> None:
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
                # were missing before and still are), that now wait on a symlink, or
                # that are eager (see linkwatch: past a link, this may be its target).
                deeper = [s for s in subs if s.path != here]
                if deeper and event.mask & (F.CREATE | F.MOVED_TO):
                    for sub in deeper:
                        self._detach(sub)
                        self._attach(sub)
                        waits_on = os.path.join(sub.folder, sub.name)
                        if sub.eager or os.path.lexists(sub.path) or os.path.islink(waits_on):
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
