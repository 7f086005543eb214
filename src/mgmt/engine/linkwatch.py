"""A watched path that passes symlinks on the way to its folder follows them.

inotify watches inodes, so the watcher keys each folder by its real path
(/lib/x is watched as /usr/lib/x). The symlinks that led there are names in
other folders, and nothing about the real folder changes when one of them is
removed or pointed elsewhere: the path now leads somewhere else, and a watch
of the old real folder alone would never say so. So each symlink passed on
the way is watched too (its own name, in its folder), and on any event the
path is resolved again; when it leads elsewhere, it is watched there.

A link may also appear later (a missing folder made as a link, a folder
replaced by one): the watcher never watches a folder through a link (its
paths wait above it) and tells a path that waits on a link, and the path is
resolved again on every event it gets.
"""

import os
import threading
from typing import Callable, List, Optional, Tuple

Cancel = Callable[[], None]
# (real path, callback, saved, eager) -> cancel: the watcher's watch of a resolved
# path; an eager one is told of each folder made on its way (see LinkedWatch.follow).
WatchAt = Callable[[str, Callable[[], None], Optional[Callable[[], None]], bool], Cancel]

MAX_LINKS = 40  # as the kernel's ELOOP limit: past it, the rest is taken as named
MAX_FOLLOWS = 5


def resolve(path: str, whole: bool = False) -> Tuple[str, Tuple[str, ...]]:
    """``path`` with its folder's real path (the last part as named, as
    :func:`mgmt.resources.filepath.real_folder`; with ``whole``, that too), and the
    symlinks passed on the way, once each, each by a name whose folder is real (so
    it is watched as it is)."""
    path = os.path.normpath(os.path.abspath(path))
    links: List[str] = []
    if whole:
        return _resolved(path, links), tuple(dict.fromkeys(links))
    folder, name = os.path.split(path)
    return os.path.join(_resolved(folder, links), name), tuple(dict.fromkeys(links))


def _resolved(path: str, links: List[str]) -> str:
    """``path`` resolved one part at a time; each symlink passed is added to ``links``.

    Not normalized first: a ".." in a link's target goes up from where the link led.
    A missing part, and all after it, are taken as named (they may appear later).
    """
    current = "/"
    parts = [part for part in path.split("/") if part and part != "."]
    for index, part in enumerate(parts):
        if part == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            target = os.readlink(candidate)
        except OSError:  # not a link (EINVAL), or missing
            current = candidate
            continue
        if len(links) >= MAX_LINKS:  # a loop: leave the rest as named, as realpath does
            return os.path.join(candidate, *parts[index + 1 :])
        links.append(candidate)
        current = _resolved(os.path.join(current, target), links)
    return current


class LinkedWatch:
    """One path's watch, moved wherever its symlinks lead it (see the module)."""

    def __init__(
        self,
        path: str,
        watch_at: WatchAt,
        watch_link: WatchAt,
        callback: Callable[[], None],
        saved: Optional[Callable[[], None]] = None,
        whole: bool = False,
    ) -> None:
        self._path = path
        self._whole = whole  # a tree's top is followed too (see resolve)
        self._watch_at = watch_at  # the path's watch (a tree's, for a tree)
        self._watch_link = watch_link  # a link's, for its own name only
        self._callback = callback
        self._saved = saved
        # Held while watches change: the watcher's thread (an event) and the
        # engine's (a cancel) may both get here. Never taken inside the watcher's
        # own lock, as the watcher calls back outside it.
        self._lock = threading.Lock()
        self._cancels: List[Cancel] = []
        self._seen: Optional[Tuple[str, Tuple[str, ...]]] = None
        self._cancelled = False
        self.follow()

    def follow(self) -> None:
        """Watch the path where it leads now (nothing to do while that is unchanged).

        Resolved again once watched: a link changed before its own watch began sent
        no event. Past MAX_FOLLOWS changes in a row, the last one's events call again.
        """
        with self._lock:
            for _ in range(MAX_FOLLOWS):
                seen = resolve(self._path, self._whole)
                if self._cancelled or seen == self._seen:
                    return
                # The old watches go first: one folder watched under two names (the
                # link's and the real one) would share one inotify watch between them.
                self._cancel_all()
                self._seen = seen
                real, links = seen
                saved = None if self._saved is None else self._on_saved
                # Past a link, a folder made on the way may be what the link led to
                # (a missing target made): the path is told, to be tried again.
                eager = bool(links)
                self._cancels.append(self._watch_at(real, self._on_change, saved, eager))
                self._cancels += [
                    self._watch_link(link, self._on_change, None, False) for link in links
                ]

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            self._cancel_all()

    def _cancel_all(self) -> None:
        cancels, self._cancels = self._cancels, []
        for cancel in cancels:
            cancel()

    def _on_change(self) -> None:
        self.follow()
        self._callback()

    def _on_saved(self) -> None:
        self.follow()
        assert self._saved is not None
        self._saved()
