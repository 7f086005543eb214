"""Watching the --remote graph files on the initiator, to re-copy them when saved.

We watch the directories, not the files: editors save by writing a new file and
renaming it over the old one, which a watch on the old inode would miss. A graph
given as a symlink is watched in its target's folder too, and followed again
whenever its own name changes (the link re-pointed, a file replaced by a link:
``current -> release-2``), so that the new target's edits are seen.

On the initiator an edit is checked before it is sent (see :mod:`.graphcheck`):
a bad one is reported once, with the user's file:line, and not copied, so the
hosts keep the graph they run (the agent would only report it again against
its own copy of the file).
"""

import os
import select
import threading
from typing import Callable, Dict, List, Tuple

from mgmt.errors import GraphError
from mgmt.log import get_logger
from mgmt.remote.hostspec import HostSpec
from mgmt.wakeup import Wakeup

log = get_logger("remote")

BAD_EDIT = "{error} (not copied: the hosts keep the graph they run)"


class GraphWatcher:
    """Calls ``on_change(spec)`` from a thread of its own when a graph file is saved."""

    def __init__(self, specs: List[HostSpec], on_change: Callable[[HostSpec], None]):
        from mgmt.engine.inotify import INotify, flags

        self._inotify = INotify()
        self._made = flags.CREATE  # a link made where a graph was (see _loop)
        self._mask = flags.CLOSE_WRITE | flags.MOVED_TO | flags.CREATE
        self._on_change = on_change
        self._by_dir: Dict[int, Dict[str, HostSpec]] = {}
        self._watched: Dict[str, int] = {}  # a folder -> its watch
        self._real: Dict[str, str] = {}  # a graph as given -> where it led last
        for spec in specs:
            # A graph given as a symlink is saved where the link leads (an editor
            # writes the target): its folder is watched too.
            self._watch(os.path.abspath(spec.graph), spec)
            self._follow(spec)
        self._closed = threading.Event()
        # close() sets it: the thread wakes at once, not at its next poll (the
        # end of every run waited for that).
        self._closing = Wakeup()
        self._thread = threading.Thread(target=self._loop, name="graph-watch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._closed.is_set():
            try:
                ready, _, _ = select.select([self._inotify, self._closing], [], [])
                if self._closing in ready:
                    return
                events = self._inotify.read(timeout=0)
            except OSError as err:  # not at close: the thread ends before the fd
                log.error("reading inotify events failed, graph edits are no longer sent: %s", err)
                return
            changed: Dict[Tuple[int, str], int] = {}  # in order, with their events' masks
            for event in events:
                key = (event.wd, event.name)
                changed[key] = changed.get(key, 0) | event.mask
            for (wd, name), mask in changed.items():
                spec = self._by_dir.get(wd, {}).get(name)
                if spec is None or self._closed.is_set():
                    continue
                # A file made is written next (its CLOSE_WRITE comes): only a link
                # made is news at once.
                if mask == self._made and not os.path.islink(spec.graph):
                    continue
                self._follow(spec)
                try:
                    self._on_change(spec)
                except GraphError as err:  # from graphcheck: nothing was sent
                    log.error(BAD_EDIT.format(error=err))
                except Exception:  # one host's trouble must not end the watch for all
                    log.exception("%s: re-copying %s failed", spec.name, spec.graph)

    def _watch(self, path: str, spec: HostSpec) -> None:
        directory, name = os.path.split(path)
        if directory not in self._watched:
            self._watched[directory] = self._inotify.add_watch(directory, self._mask)
        self._by_dir.setdefault(self._watched[directory], {})[name] = spec

    def _follow(self, spec: HostSpec) -> None:
        """Watch where ``spec``'s graph leads now, if that changed (or is new)."""
        real = os.path.realpath(spec.graph)
        if self._real.get(spec.graph) != real:
            self._real[spec.graph] = real
            try:
                self._watch(real, spec)
            except OSError as err:  # its folder gone meanwhile: the copy says why
                log.debug("cannot watch %s: %s", real, err)

    def close(self) -> None:
        if self._closed.is_set():
            return  # closed already
        self._closed.set()
        self._closing.set()
        self._thread.join(2.0)
        self._inotify.close()
        self._closing.close()
